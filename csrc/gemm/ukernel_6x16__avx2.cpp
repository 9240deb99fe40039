// GEMM microkernel for AVX2 + FMA: a 6 x 16 tile of C in 12 ymm accumulators
// (the classic Haswell shape: 12 accumulators + 2 B vectors + 1 broadcast fill
// the 16 registers). Edge tiles use masked loads/stores.
// Compiled with -mavx2 -mfma only; nothing here is shared with other ISA files.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace pycnn::avx2 {

namespace {
// Lane mask for the first n (0..8) lanes of a ymm register.
__m256i lane_mask(i64 n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}
}  // namespace

void gemm_ukernel_6x16(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b,
                       float* PYCNN_RESTRICT c, i64 ldc, i64 mr, i64 nr, float alpha, float beta,
                       const float* PYCNN_RESTRICT row_bias, bool relu) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
#define PYCNN_ROW(r, acc0, acc1)                   \
  {                                                \
    const __m256 ar = _mm256_broadcast_ss(a + r);  \
    acc0 = _mm256_fmadd_ps(ar, b0, acc0);          \
    acc1 = _mm256_fmadd_ps(ar, b1, acc1);          \
  }
  for (i64 k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    PYCNN_ROW(0, c00, c01)
    PYCNN_ROW(1, c10, c11)
    PYCNN_ROW(2, c20, c21)
    PYCNN_ROW(3, c30, c31)
    PYCNN_ROW(4, c40, c41)
    PYCNN_ROW(5, c50, c51)
    a += 6;
    b += 16;
  }
#undef PYCNN_ROW

  const __m256i m0 = lane_mask(nr < 8 ? nr : 8);
  const __m256i m1 = lane_mask(nr > 8 ? (nr < 16 ? nr - 8 : 8) : 0);
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta), zero = _mm256_setzero_ps();
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (i64 r = 0; r < mr; ++r) {
    float* cr = c + r * ldc;
    __m256 v0 = _mm256_mul_ps(acc[r][0], va), v1 = _mm256_mul_ps(acc[r][1], va);
    if (beta != 0.0f) {
      v0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, m0), v0);
      v1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, m1), v1);
    }
    if (row_bias) {
      const __m256 br = _mm256_set1_ps(row_bias[r]);
      v0 = _mm256_add_ps(v0, br);
      v1 = _mm256_add_ps(v1, br);
    }
    if (relu) {  // max(0, v) with v second: MAXPS returns the second operand for NaN, so NaN propagates
      v0 = _mm256_max_ps(zero, v0);
      v1 = _mm256_max_ps(zero, v1);
    }
    _mm256_maskstore_ps(cr, m0, v0);
    _mm256_maskstore_ps(cr + 8, m1, v1);
  }
}

}  // namespace pycnn::avx2
