#include "dispatch.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

// PYCNN_X86_KERNELS is set by CMake when it compiled the AVX2/AVX-512 files.
#if defined(PYCNN_X86_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#define PYCNN_X86 1
#endif

#ifdef __linux__
#include <unistd.h>
#endif

namespace pycnn {

// The per-ISA kernels (each defined in its own, separately flagged file).
namespace scalar {
void gemm_ukernel_6x16(i64, const float*, const float*, float*, i64, i64, i64, float, float, const float*, bool);
}
#ifdef PYCNN_X86
namespace avx2 {
void gemm_ukernel_6x16(i64, const float*, const float*, float*, i64, i64, i64, float, float, const float*, bool);
void col_panel_copy(float*, i64, i64, i64, const float*, const ColPanelPlan&);
void transpose_pack(float*, i64, const float*, i64, i64, i64);
void max_pool_2x2_row(float*, std::int32_t*, const float*, const float*, i64, std::int32_t, std::int32_t);
}
namespace avx512 {
void gemm_ukernel_12x32(i64, const float*, const float*, float*, i64, i64, i64, float, float, const float*, bool);
void gemm_ukernel_8x32(i64, const float*, const float*, float*, i64, i64, i64, float, float, const float*, bool);
void col_panel_copy(float*, i64, i64, i64, const float*, const ColPanelPlan&);
void transpose_pack(float*, i64, const float*, i64, i64, i64);
void max_pool_2x2_row(float*, std::int32_t*, const float*, const float*, i64, std::int32_t, std::int32_t);
void max_pool_2x2_bwd_row(float*, float*, const float*, const std::int32_t*, const float*, i64, std::int32_t,
                          std::int32_t);
}
#endif

namespace {

const KernelTable kScalarTable{Isa::Scalar, 6, 16, scalar::gemm_ukernel_6x16, 0, nullptr, nullptr, 0, nullptr, nullptr, nullptr};
#ifdef PYCNN_X86
const KernelTable kAvx2Table{Isa::Avx2, 6, 16, avx2::gemm_ukernel_6x16, 0, nullptr, avx2::col_panel_copy, 8, avx2::transpose_pack, avx2::max_pool_2x2_row, nullptr};
const KernelTable kAvx512Table{Isa::Avx512, 12, 32, avx512::gemm_ukernel_12x32, 8, avx512::gemm_ukernel_8x32, avx512::col_panel_copy, 16, avx512::transpose_pack,
                                  avx512::max_pool_2x2_row, avx512::max_pool_2x2_bwd_row};
#endif

const KernelTable& table_for(Isa isa) {
#ifdef PYCNN_X86
  if (isa == Isa::Avx512) return kAvx512Table;
  if (isa == Isa::Avx2) return kAvx2Table;
#endif
  return kScalarTable;
}

#ifdef PYCNN_X86
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
#ifdef PYCNN_X86
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
  std::atomic<const KernelTable*> table;
  std::string origin;
  State() : best(detect()), table(&table_for(best)), origin("cpu") {
    if (const char* env = std::getenv("PYCNN_ISA")) {
      Isa wanted;
      if (!isa_from_name(env, &wanted)) {
        origin = std::string("cpu (PYCNN_ISA=") + env + " not recognised: use scalar, avx2 or avx512)";
      } else if (static_cast<int>(wanted) > static_cast<int>(best)) {
        origin = std::string("cpu (PYCNN_ISA=") + env + " not supported by this CPU)";
      } else {
        table.store(&table_for(wanted));
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

const KernelTable& kernels() { return *state().table.load(std::memory_order_acquire); }
Isa active_isa() { return kernels().isa; }
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
  state().table.store(&table_for(isa), std::memory_order_release);
}

std::string isa_origin() { return state().origin; }

const CacheSizes& cache_sizes() {
  static const CacheSizes c{read_cache_size(1, 32 * 1024), read_cache_size(2, 1024 * 1024),
                            read_cache_size(3, 8 * 1024 * 1024)};
  return c;
}

}  // namespace pycnn
