// Tile kernels of the channel-blocked direct forward for AVX2 + FMA (see
// direct_tile.h; the loops are direct_tile.inc's): 16 ymm registers hold a
// tile of up to 6 outputs x 16 channels (12 accumulators), the block's two
// weight vectors and one broadcast: per depth step 2 weight loads, 6
// broadcasts, 12 FMAs (0.67 loads per FMA, the 6 x 16 GEMM microkernel's
// ratio). No 4-vector tiles here (they would need 24+ accumulators): the
// driver asks for 2.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include <utility>

#include "conv/direct_tile.h"

namespace pycnn::avx2 {
namespace {

struct Vec {
  using reg = __m256;
  static constexpr int kLanes = 8, kRegisters = 16;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg set1(float a) { return _mm256_set1_ps(a); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg broadcast(const float* a) { return _mm256_broadcast_ss(a); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg fma_broadcast_mem(reg acc, const float* a, reg w) { return fma(broadcast(a), w, acc); }
  static __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load_lanes(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
  static void store_lanes(float* p, __m256i m, reg v) { _mm256_maskstore_ps(p, m, v); }

  // In place: r[n] becomes column n of the 8 x 8 matrix whose rows were r[0..7].
  static void transpose(reg r[8]) {
    const reg t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const reg t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const reg t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const reg t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    // u*, per 128-bit half h: rows 0-3 (or 4-7) of column 4h + m
    const reg u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const reg u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const reg u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const reg u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
  }
};

#include "conv/direct_tile.inc"

}  // namespace

void direct_tile_s1v2(const DirectTile& t, int pixels) {
  tile_of<2, 1>(t, pixels, std::make_integer_sequence<int, 6>{});
}
void direct_tile_s2v2(const DirectTile& t, int pixels) {
  tile_of<2, 2>(t, pixels, std::make_integer_sequence<int, 6>{});
}

}  // namespace pycnn::avx2
