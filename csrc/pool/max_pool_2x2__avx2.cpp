// 2x2, stride-2 max pooling of one pair of input rows for AVX2: 8 outputs per
// step, same rule as pool__avx512.cpp (and the portable loop in pool2d.cpp):
// candidates in row-major order, a strict `>` so the first maximum wins, an
// unordered compare so every NaN wins (the last NaN is reported), selects
// instead of branches -- the portable loop's scalar tail branched on every
// comparison, 3x slower on ReLU outputs, half of them tied zeros.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include <cstdint>

#include "pool/max_pool_2x2.h"

namespace pycnn::avx2 {

void max_pool_2x2_row(float* PYCNN_RESTRICT y, std::int32_t* PYCNN_RESTRICT idx, const float* PYCNN_RESTRICT r0,
                      const float* PYCNN_RESTRICT r1, i64 Wo, std::int32_t row0, std::int32_t W) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i one = _mm256_set1_epi32(1), down = _mm256_set1_epi32(W), down_one = _mm256_set1_epi32(W + 1);
  float tail_in[4][16];
  for (i64 ow = 0; ow < Wo; ow += 8) {
    const i64 n = Wo - ow < 8 ? Wo - ow : 8;  // outputs this step; inputs 2n per row
    const float* a0 = r0 + 2 * ow;
    const float* a1 = r1 + 2 * ow;
    if (n < 8) {  // copy the last 2n inputs of each row (zero-padded) so full loads stay inside
      for (int i = 0; i < 16; ++i) {
        tail_in[0][i] = i < 2 * n ? a0[i] : 0.0f;
        tail_in[1][i] = i < 2 * n ? a1[i] : 0.0f;
      }
      a0 = tail_in[0];
      a1 = tail_in[1];
    }
    // even/odd columns: shuffle within 128-bit lanes, then restore the order of the 64-bit pairs
    const __m256 x0 = _mm256_loadu_ps(a0), x1 = _mm256_loadu_ps(a0 + 8);
    const __m256 z0 = _mm256_loadu_ps(a1), z1 = _mm256_loadu_ps(a1 + 8);
    const auto fix = [](__m256 v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)); };
    const __m256 tl = fix(_mm256_shuffle_ps(x0, x1, 0x88)), tr = fix(_mm256_shuffle_ps(x0, x1, 0xDD));
    const __m256 bl = fix(_mm256_shuffle_ps(z0, z1, 0x88)), br = fix(_mm256_shuffle_ps(z0, z1, 0xDD));
    const __m256i col = _mm256_add_epi32(_mm256_set1_epi32(row0 + static_cast<std::int32_t>(2 * ow)),
                                         _mm256_add_epi32(lane, lane));
    __m256 best = tl;
    __m256i at = col;
    __m256 take = _mm256_or_ps(_mm256_cmp_ps(tr, best, _CMP_GT_OQ), _mm256_cmp_ps(tr, tr, _CMP_UNORD_Q));
    best = _mm256_blendv_ps(best, tr, take);
    at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(_mm256_add_epi32(col, one)), take));
    take = _mm256_or_ps(_mm256_cmp_ps(bl, best, _CMP_GT_OQ), _mm256_cmp_ps(bl, bl, _CMP_UNORD_Q));
    best = _mm256_blendv_ps(best, bl, take);
    at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(_mm256_add_epi32(col, down)), take));
    take = _mm256_or_ps(_mm256_cmp_ps(br, best, _CMP_GT_OQ), _mm256_cmp_ps(br, br, _CMP_UNORD_Q));
    best = _mm256_blendv_ps(best, br, take);
    at = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(_mm256_add_epi32(col, down_one)), take));
    if (n == 8) {
      _mm256_storeu_ps(y + ow, best);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ow), at);
    } else {  // VMASKMOVPS stores are microcoded on AMD: store through a buffer
      alignas(32) float yb[8];
      alignas(32) std::int32_t ib[8];
      _mm256_store_ps(yb, best);
      _mm256_store_si256(reinterpret_cast<__m256i*>(ib), at);
      for (i64 i = 0; i < n; ++i) {
        y[ow + i] = yb[i];
        idx[ow + i] = ib[i];
      }
    }
  }
}

}  // namespace pycnn::avx2
