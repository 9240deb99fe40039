#include "runtime/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#ifdef __linux__
#include <unistd.h>
#endif

namespace pycnn {

namespace {

#if PYCNN_X86
// The OS must save the wider registers on context switches, or using them
// corrupts state: XCR0 bits 1-2 (SSE, AVX) and 5-7 (opmask, ZMM_Hi256, Hi16_ZMM).
unsigned long long read_xcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
bool os_has_osxsave() {
  unsigned eax, ebx, ecx, edx;
  __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(1), "c"(0));
  return (ecx >> 27) & 1u;
}
#endif

Isa detect() {
#if PYCNN_X86
  __builtin_cpu_init();
  if (!os_has_osxsave()) return Isa::Scalar;
  const unsigned long long xcr0 = read_xcr0();
  const bool avx_state = (xcr0 & 0x6) == 0x6;
  const bool avx512_state = avx_state && (xcr0 & 0xE0) == 0xE0;
  if (avx512_state && __builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (avx_state && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Scalar;
}

struct State {
  Isa best;
  std::atomic<Isa> active;
  std::string origin;
  State() : best(detect()), active(best), origin("cpu") {
    if (const char* env = std::getenv("PYCNN_ISA")) {
      Isa wanted;
      if (!isa_from_name(env, &wanted)) {
        origin = std::string("cpu (PYCNN_ISA=") + env + " not recognised: use scalar, avx2 or avx512)";
      } else if (static_cast<int>(wanted) > static_cast<int>(best)) {
        origin = std::string("cpu (PYCNN_ISA=") + env + " not supported by this CPU)";
      } else {
        active.store(wanted);
        origin = std::string("PYCNN_ISA=") + env;
      }
    }
  }
};

State& state() {
  static State s;
  return s;
}

// Virtual machines sometimes report nonsense (this one: an L3 of 320 MiB from
// sysconf next to 32 MiB in sysfs), so each source must give a plausible size.
bool plausible_cache(int level, i64 v) { return v >= 16 * 1024 && v <= (level == 1 ? (i64{1} << 20) : (i64{1} << 28)); }

i64 read_cache_size(int level, i64 fallback) {
#if defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE)
  long r = -1;
  if (level == 1) r = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  if (level == 2) r = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (level == 3) r = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (plausible_cache(level, r)) return r;
#endif
  // sysfs: index0 is L1d, index1 L1i, index2 L2, index3 L3; e.g. "1024K"
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(level == 1 ? 0 : level) + "/size");
  long long n = 0;
  char unit = 0;
  if (f >> n) {
    f >> unit;
    const i64 v = n * (unit == 'K' ? 1024 : unit == 'M' ? 1024 * 1024 : 1);
    if (plausible_cache(level, v)) return v;
  }
  return fallback;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

bool isa_from_name(const std::string& name, Isa* out) {
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512})
    if (name == isa_name(i)) {
      *out = i;
      return true;
    }
  return false;
}

Isa active_isa() { return state().active.load(std::memory_order_acquire); }
Isa best_supported_isa() { return state().best; }

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (int i = 0; i <= static_cast<int>(state().best); ++i) v.push_back(static_cast<Isa>(i));
  return v;
}

void set_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(state().best))
    throw std::invalid_argument(std::string("ISA '") + isa_name(isa) + "' is not supported by this CPU (best: " +
                                isa_name(state().best) + ")");
  state().active.store(isa, std::memory_order_release);
}

std::string isa_origin() { return state().origin; }

const CacheSizes& cache_sizes() {
  static const CacheSizes c{read_cache_size(1, 32 * 1024), read_cache_size(2, 1024 * 1024),
                            read_cache_size(3, 8 * 1024 * 1024)};
  return c;
}

}  // namespace pycnn
