// 2x2, stride-2 max pooling of one pair of input rows for AVX-512: 16
// outputs per step. The even and odd columns of each input row are split
// with two-source permutes, then the window's four candidates are compared
// in row-major order with masks: a strict `>` (the first maximum wins) or an
// unordered compare (every NaN wins, so the last NaN is reported) -- the
// rule of the portable loop in pool2d.cpp and of PyTorch. No branch depends on
// the data: the portable loop's scalar tail branched on every comparison,
// and after a ReLU half the values are ties at zero (3x slower in a
// training step than on positive data).
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

#include <cstdint>

#include "pool/max_pool_2x2.h"

namespace pycnn::avx512 {

void max_pool_2x2_row(float* PYCNN_RESTRICT y, std::int32_t* PYCNN_RESTRICT idx, const float* PYCNN_RESTRICT r0,
                      const float* PYCNN_RESTRICT r1, i64 Wo, std::int32_t row0, std::int32_t W) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i step = _mm512_set1_epi32(32);
  __m512i col = _mm512_add_epi32(even, _mm512_set1_epi32(row0));  // index of each window's top-left input
  const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(W), down_one = _mm512_set1_epi32(W + 1);
  for (i64 ow = 0; ow < Wo; ow += 16) {
    const i64 n = Wo - ow < 16 ? Wo - ow : 16;  // outputs this step; inputs 2n
    const __mmask16 out = static_cast<__mmask16>((1u << n) - 1u);
    const __mmask16 lo = static_cast<__mmask16>(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1u);
    const __mmask16 hi = static_cast<__mmask16>(n <= 8 ? 0u : (1u << (2 * (n - 8))) - 1u);
    const float* a0 = r0 + 2 * ow;
    const float* a1 = r1 + 2 * ow;
    const __m512 x0 = _mm512_maskz_loadu_ps(lo, a0), x1 = _mm512_maskz_loadu_ps(hi, a0 + 16);
    const __m512 z0 = _mm512_maskz_loadu_ps(lo, a1), z1 = _mm512_maskz_loadu_ps(hi, a1 + 16);
    const __m512 tl = _mm512_permutex2var_ps(x0, even, x1), tr = _mm512_permutex2var_ps(x0, odd, x1);
    const __m512 bl = _mm512_permutex2var_ps(z0, even, z1), br = _mm512_permutex2var_ps(z0, odd, z1);
    __m512 best = tl;
    __m512i at = col;
    __mmask16 take = _mm512_cmp_ps_mask(tr, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(tr, tr, _CMP_UNORD_Q);
    best = _mm512_mask_blend_ps(take, best, tr);
    at = _mm512_mask_add_epi32(at, take, col, one);
    take = _mm512_cmp_ps_mask(bl, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(bl, bl, _CMP_UNORD_Q);
    best = _mm512_mask_blend_ps(take, best, bl);
    at = _mm512_mask_add_epi32(at, take, col, down);
    take = _mm512_cmp_ps_mask(br, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(br, br, _CMP_UNORD_Q);
    best = _mm512_mask_blend_ps(take, best, br);
    at = _mm512_mask_add_epi32(at, take, col, down_one);
    _mm512_mask_storeu_ps(y + ow, out, best);
    _mm512_mask_storeu_epi32(idx + ow, out, at);
    col = _mm512_add_epi32(col, step);
  }
}


// Backward of the above for one pair of rows: writes d0[0, 2*Wo) and
// d1[0, 2*Wo) completely -- each input gets its window's gradient g (zeroed
// where the fused ReLU's output relu_y is not > 0) if it is the window's
// argmax, else 0 -- so dx needs no zero-fill pass before a scatter.
void max_pool_2x2_bwd_row(float* PYCNN_RESTRICT d0, float* PYCNN_RESTRICT d1, const float* PYCNN_RESTRICT g,
                          const std::int32_t* PYCNN_RESTRICT idx, const float* PYCNN_RESTRICT relu_y, i64 Wo,
                          std::int32_t row0, std::int32_t W) {
  const __m512i lanes2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32(W), down_one = _mm512_set1_epi32(W + 1);
  __m512i col = _mm512_add_epi32(lanes2, _mm512_set1_epi32(row0));
  const __m512i step = _mm512_set1_epi32(32);
  const __m512 zero = _mm512_setzero_ps();
  for (i64 ow = 0; ow < Wo; ow += 16) {
    const i64 n = Wo - ow < 16 ? Wo - ow : 16;
    const __mmask16 in = static_cast<__mmask16>((1u << n) - 1u);
    const __mmask16 lo = static_cast<__mmask16>(n >= 8 ? 0xFFFFu : (1u << (2 * n)) - 1u);
    const __mmask16 hi = static_cast<__mmask16>(n <= 8 ? 0u : (1u << (2 * (n - 8))) - 1u);
    __m512 v = _mm512_maskz_loadu_ps(in, g + ow);
    if (relu_y) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(in, relu_y + ow), zero, _CMP_GT_OQ), v);
    const __m512i at = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(in, idx + ow), col);  // 0, 1, W or W + 1
    const __m512 tl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, _mm512_setzero_si512()), v);
    const __m512 tr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, one), v);
    const __m512 bl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, down), v);
    const __m512 br = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(at, down_one), v);
    float* o0 = d0 + 2 * ow;
    float* o1 = d1 + 2 * ow;
    _mm512_mask_storeu_ps(o0, lo, _mm512_permutex2var_ps(tl, first, tr));
    _mm512_mask_storeu_ps(o0 + 16, hi, _mm512_permutex2var_ps(tl, second, tr));
    _mm512_mask_storeu_ps(o1, lo, _mm512_permutex2var_ps(bl, first, br));
    _mm512_mask_storeu_ps(o1 + 16, hi, _mm512_permutex2var_ps(bl, second, br));
    col = _mm512_add_epi32(col, step);
  }
}

}  // namespace pycnn::avx512
