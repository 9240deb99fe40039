#!/usr/bin/env bash
# valgrind memcheck over a short forward/backward run of every op
# (tools/memcheck_workload.py), with the normal release build of pycnn._core.
#
#   tools/valgrind.sh            # uses the pycnn importable by $PYTHON (default python3)
#
# Python's small-object allocator is switched off (PYTHONMALLOC=malloc) so
# memcheck sees every allocation. The run fails if memcheck reports any
# error (invalid read/write, use of uninitialised values, bad free) with a
# frame in pycnn's extension; errors inside CPython or NumPy alone are
# listed but not counted. AVX-512 is skipped: valgrind cannot execute it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The interpreter itself, not a wrapper script (pyenv shims are shell scripts).
python="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"
log="$(mktemp /tmp/pycnn-valgrind.XXXXXX.log)"
export PYTHONMALLOC=malloc
export PYCNN_ISA="${PYCNN_ISA:-avx2}"
start=$(date +%s)
status=0
valgrind --tool=memcheck --error-limit=no --track-origins=yes --num-callers=30 --log-file="$log" \
  "$python" "$@" "$root/tools/memcheck_workload.py" --valgrind || status=$?
end=$(date +%s)
# An error block starts at "==pid== <description>" and runs to the next blank "==pid== " line.
pycnn_errors="$("$python" - "$log" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r"\n==\d+== \n", text)
bad = [b for b in blocks if re.search(r"(Invalid (read|write)|uninitialised|Mismatched free|Invalid free|overlap)", b)
       and re.search(r"_core\.cpython|_core\..*\.so|pycnn::", b)]
print(len(bad))
for b in bad[:20]:
    print(b, file=sys.stderr)
PY
)"
grep -E "ERROR SUMMARY|definitely lost" "$log" || true
echo "valgrind.sh: $pycnn_errors memcheck error(s) in pycnn code, $((end - start)) s, full log: $log"
[ "$status" -eq 0 ] || { echo "valgrind.sh: the workload failed (status $status)"; exit "$status"; }
[ "$pycnn_errors" -eq 0 ]
