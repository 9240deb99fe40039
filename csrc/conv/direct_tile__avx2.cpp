// Tile kernels of the channel-blocked direct forward for AVX2 + FMA (see
// direct_tile.h): 16 ymm registers hold a tile of up to 6 outputs x 16
// channels (12 accumulators), the block's two weight vectors and one
// broadcast: per depth step 2 weight loads, 6 broadcasts, 12 FMAs (0.67
// loads per FMA; the 6 x 16 GEMM microkernel's ratio). NV = 4 is not
// offered here (it would need 24+ accumulators); the driver asks for 2.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include <utility>

#include "conv/direct_tile.h"

namespace pycnn::avx2 {
namespace {

// In place: r[n] becomes column n of the 8 x 8 matrix whose rows were r[0..7].
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  // u*, per 128-bit half h: rows 0-3 (or 4-7) of column 4h + m
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20), r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20), r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20), r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20), r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

template <int T, int SW>
void tile(const DirectTile& d) {
  constexpr int NV = 2;
  __m256 acc[T][NV];
#pragma GCC unroll 8
  for (int t = 0; t < T; ++t)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[t][v] = d.first ? _mm256_setzero_ps() : _mm256_loadu_ps(d.partial + (t * NV + v) * 8);
  const float* PYCNN_RESTRICT w = d.w;
  const float* pf = d.prefetch;
  i64 pf_left = d.prefetch_count;
  const float* xc = d.x;
  for (i64 c = 0; c < d.C; ++c, xc += d.plane) {
    const float* xi = xc;
    for (i64 i = 0; i < d.kh; ++i, xi += d.row_step) {
      const float* xj = xi;
      for (i64 j = 0; j < d.kw; ++j, xj += d.col_step, w += 8 * NV) {
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        if (pf_left > 0) {
          _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
          if (--pf_left > 0) pf += d.prefetch_step;
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) {
          const __m256 a = _mm256_broadcast_ss(xj + t * SW);
          acc[t][0] = _mm256_fmadd_ps(a, w0, acc[t][0]);
          acc[t][1] = _mm256_fmadd_ps(a, w1, acc[t][1]);
        }
      }
    }
  }
  if (!d.last) {
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(d.partial + (t * NV + v) * 8, acc[t][v]);
    return;
  }
  // Per vector of 8 channels: transpose so each register holds one channel's
  // T pixels, then bias, residual, ReLU and a masked store of T lanes.
  const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(T), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    const int live = d.channels - 8 * v;
    if (live <= 0) break;
    __m256 r[8];
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) r[t] = t < T ? acc[t][v] : zero;
    transpose8(r);
    for (int l = 0; l < 8 && l < live; ++l) {
      const i64 k = 8 * v + l;
      __m256 o = r[l];
      if (d.bias) o = _mm256_add_ps(o, _mm256_set1_ps(d.bias[k]));
      if (d.residual) o = _mm256_add_ps(o, _mm256_maskload_ps(d.residual + k * d.y_plane, lanes));
      if (d.relu) o = _mm256_max_ps(zero, o);  // NaN propagates: MAXPS returns the second operand
      _mm256_maskstore_ps(d.y + k * d.y_plane, lanes, o);
    }
  }
}

// tile<T, SW> for T = 1..6, chosen at run time.
template <int SW, int... T>
void tile_of(const DirectTile& d, int pixels, std::integer_sequence<int, T...>) {
  using Kernel = void (*)(const DirectTile&);
  static constexpr Kernel kernels[] = {tile<T + 1, SW>...};
  kernels[pixels - 1](d);
}

}  // namespace

void direct_tile_s1v2(const DirectTile& t, int pixels) { tile_of<1>(t, pixels, std::make_integer_sequence<int, 6>{}); }
void direct_tile_s2v2(const DirectTile& t, int pixels) { tile_of<2>(t, pixels, std::make_integer_sequence<int, 6>{}); }

}  // namespace pycnn::avx2
