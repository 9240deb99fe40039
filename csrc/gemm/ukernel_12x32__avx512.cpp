// GEMM microkernel for AVX-512: a 12 x 32 tile of C in 24 zmm accumulators.
// Per k step: two 16-float loads of the packed B row, twelve broadcasts of
// packed A, 24 FMAs, so loads never limit the two FMA pipes. Edge tiles
// (mr < 12 rows, nr < 32 columns) are written with masked stores; packed
// panels are zero-padded so the arithmetic itself never branches.
// Compiled with -mavx512f only (see CMakeLists.txt); nothing here is inline
// or a template shared with other ISA files.
#include <immintrin.h>

// GCC 12 warns inside its own avx512fintrin.h (_mm512_max_ps starts from
// _mm512_undefined_ps); the warning is a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "common.h"

namespace pycnn::avx512 {

void gemm_ukernel_12x32(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b,
                        float* PYCNN_RESTRICT c, i64 ldc, i64 mr, i64 nr, float alpha, float beta,
                        const float* PYCNN_RESTRICT row_bias, bool relu) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps();
  __m512 c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
  __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps();
  __m512 c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
  __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps();
  __m512 c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
  __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps();
  __m512 c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
  __m512 c80 = _mm512_setzero_ps(), c81 = _mm512_setzero_ps();
  __m512 c90 = _mm512_setzero_ps(), c91 = _mm512_setzero_ps();
  __m512 ca0 = _mm512_setzero_ps(), ca1 = _mm512_setzero_ps();
  __m512 cb0 = _mm512_setzero_ps(), cb1 = _mm512_setzero_ps();
#define PYCNN_ROW(r, acc0, acc1)                 \
  {                                              \
    const __m512 ar = _mm512_set1_ps(a[r]);      \
    acc0 = _mm512_fmadd_ps(ar, b0, acc0);        \
    acc1 = _mm512_fmadd_ps(ar, b1, acc1);        \
  }
  for (i64 k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    PYCNN_ROW(0, c00, c01)
    PYCNN_ROW(1, c10, c11)
    PYCNN_ROW(2, c20, c21)
    PYCNN_ROW(3, c30, c31)
    PYCNN_ROW(4, c40, c41)
    PYCNN_ROW(5, c50, c51)
    PYCNN_ROW(6, c60, c61)
    PYCNN_ROW(7, c70, c71)
    PYCNN_ROW(8, c80, c81)
    PYCNN_ROW(9, c90, c91)
    PYCNN_ROW(10, ca0, ca1)
    PYCNN_ROW(11, cb0, cb1)
    a += 12;
    b += 32;
  }
#undef PYCNN_ROW

  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32   ? static_cast<__mmask16>(0xFFFF)
                       : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1u)
                                 : static_cast<__mmask16>(0);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
  const __m512 acc[12][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                             {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {ca0, ca1}, {cb0, cb1}};
  for (i64 r = 0; r < mr; ++r) {
    float* cr = c + r * ldc;
    __m512 v0 = _mm512_mul_ps(acc[r][0], va), v1 = _mm512_mul_ps(acc[r][1], va);
    if (beta != 0.0f) {
      v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
      v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
    }
    if (row_bias) {
      const __m512 br = _mm512_set1_ps(row_bias[r]);
      v0 = _mm512_add_ps(v0, br);
      v1 = _mm512_add_ps(v1, br);
    }
    if (relu) {  // max(0, v) with v second: MAXPS returns the second operand for NaN, so NaN propagates
      v0 = _mm512_max_ps(zero, v0);
      v1 = _mm512_max_ps(zero, v1);
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
}

}  // namespace pycnn::avx512
