#!/usr/bin/env bash
# Build pycnn._core with AddressSanitizer + UndefinedBehaviorSanitizer and run
# the kernel tests under it with a stock CPython (docs/reliability.md).
#
#   tools/sanitize.sh                  # build into build-asan/, run the default subset
#   tools/sanitize.sh tests/test_conv.py -k direct    # any pytest arguments instead
#
# How it works: CMake builds the extension with -DPYCNN_SANITIZE=ON
# (-fsanitize=address,undefined, everything else as in a release build) into
# build-asan/. The Python sources and that .so are staged in
# build-asan/stage/pycnn, so the checkout's own pycnn/ (and any installed
# pycnn) stays untouched. CPython itself is not instrumented, so libasan is
# LD_PRELOADed (it must be the first library loaded) and leak detection is off
# (the interpreter keeps objects alive at exit by design). PYTHONMALLOC=malloc
# routes Python's small objects through malloc too; NumPy allocates array
# data with malloc, so every array gets red zones and a kernel that writes
# one element past an output array stops the run with a report.
# Any report exits non-zero (halt_on_error for both sanitizers).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build-asan"
python="${PYTHON:-python3}"
cxx="${CXX:-g++}"

pybind11_dir="$("$python" -c 'import pybind11; print(pybind11.get_cmake_dir())')"

start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
  -DPYCNN_SANITIZE=ON -Dpybind11_DIR="$pybind11_dir" \
  -DPython_EXECUTABLE="$(command -v "$python")" >/dev/null
cmake --build "$build"
built=$(date +%s)

stage="$build/stage"
rm -rf "$stage"
mkdir -p "$stage"
cp -r "$root/pycnn" "$stage/pycnn"
find "$stage/pycnn" \( -name '_core*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
cp "$build"/_core*.so "$stage/pycnn/"

libasan="$("$cxx" -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
  echo "sanitize.sh: $cxx has no libasan.so ($libasan); install the compiler's ASan runtime" >&2
  exit 2
fi
# python -S skips site.py, so no .pth file (an editable install's import hook)
# can put another pycnn first; site-packages is added back explicitly for
# NumPy, pytest and hypothesis.
site="$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# Test paths given relative to the caller's directory still work after the cd below.
args=()
for a in "$@"; do
  path="${a%%::*}"
  if [ -e "$path" ]; then a="$(realpath "$path")${a#"$path"}"; fi
  args+=("$a")
done
set -- ${args[@]+"${args[@]}"}
if [ "$#" -eq 0 ]; then
  # The kernel tests (every op, pass and ISA), bad inputs, files and threads.
  set -- "$root/tests/test_conv.py" "$root/tests/test_functional.py" "$root/tests/test_gemm.py" \
         "$root/tests/test_errors.py" "$root/tests/test_nn.py" "$root/tests/test_properties.py" \
         "$root/tests/test_files.py" "$root/tests/test_threads.py" "$root/tests/test_winograd.py" \
         "$root/tests/test_fused.py"
fi

cd "$stage"  # python -m pytest puts the working directory, i.e. the staged pycnn, first
# libstdc++ is preloaded too: CPython does not link it, and ASan resolves the
# real __cxa_throw when it starts, so without it the first C++ exception
# (every ValueError pycnn raises from C++) stops the run in an ASan CHECK.
libstdcxx="$(realpath "$("$cxx" -print-file-name=libstdc++.so)")"
export LD_PRELOAD="$libasan $libstdcxx"
# Reports go to files as well as stderr: pytest captures the test's stderr,
# and a process stopped by a report never prints what it captured.
reports="$build/reports"
rm -rf "$reports"
mkdir -p "$reports"
# allocator_may_return_null: tests ask for impossible allocations on purpose and
# expect MemoryError, as an uninstrumented malloc returning NULL gives.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:exitcode=86:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$reports/ubsan"
export PYTHONMALLOC=malloc
export PYTHONPATH="$stage:$site"
export PYCNN_SANITIZED_RUN=1  # tests that cannot run under ASan (RSS bounds, forks) skip themselves
status=0
"$python" -S -m pytest -q -p no:cacheprovider --rootdir "$root" "$@" || status=$?
end=$(date +%s)
if compgen -G "$reports/*" >/dev/null; then
  echo "sanitize.sh: sanitizer output:" >&2
  cat "$reports"/* >&2
  # Warnings (e.g. "failed to allocate" for a test's impossible allocation,
  # which becomes MemoryError) are shown; errors fail the run.
  if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$reports"/*; then
    [ "$status" -ne 0 ] || status=1
  fi
fi
echo "sanitize.sh: build $((built - start)) s, tests $((end - built)) s, exit status $status"
exit "$status"
