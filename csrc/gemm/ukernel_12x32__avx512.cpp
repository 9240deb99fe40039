// GEMM microkernels for AVX-512: an MR x 32 tile of C in 2*MR zmm
// accumulators, MR = 12 or 8. Per k step: two 16-float loads of the packed B
// row, MR broadcasts of packed A, 2*MR FMAs. 12 rows give the most FMAs per
// load; 8 rows waste no tile rows when M is a multiple of 8 but not of 12
// (64 output channels: 11% of a 12-row tile's work is padding there), so the
// GEMM picks the height per product (GemmPlan::for_product, which says when).
// Edge tiles (mr < MR rows, nr < 32 columns) are written with masked stores;
// packed panels are zero-padded so the arithmetic itself never branches.
// Compiled with -mavx512f only (see CMakeLists.txt); the template is
// instantiated only here, inside this ISA's namespace.
#include <immintrin.h>

// GCC 12 warns inside its own avx512fintrin.h (_mm512_max_ps starts from
// _mm512_undefined_ps); the warning is a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "gemm/ukernel.h"

namespace pycnn::avx512 {
namespace {

// NV = 2: the full 32 columns; NV = 1: an edge tile of at most 16 columns
// (the packed B panel is still 32 wide), half the FMAs -- a 196-pixel
// plane's last panel holds 4 columns.
template <int MR, int NV>
void ukernel(i64 kc, const float* PYCNN_RESTRICT a, const float* PYCNN_RESTRICT b, float* PYCNN_RESTRICT c,
             i64 ldc, i64 mr, i64 nr, float alpha, float beta, const float* PYCNN_RESTRICT row_bias, bool relu) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (i64 k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = NV == 2 ? _mm512_loadu_ps(b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(ar, b0, acc0[r]);
      if (NV == 2) acc1[r] = _mm512_fmadd_ps(ar, b1, acc1[r]);
    }
    a += MR;
    b += 32;
  }

  const __mmask16 m0 = nr >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << nr) - 1u);
  const __mmask16 m1 = nr >= 32   ? static_cast<__mmask16>(0xFFFF)
                       : nr > 16 ? static_cast<__mmask16>((1u << (nr - 16)) - 1u)
                                 : static_cast<__mmask16>(0);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta), zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    if (r >= mr) break;
    float* cr = c + r * ldc;
    __m512 v0 = acc0[r], v1 = acc1[r];
    if (alpha != 1.0f) {  // convolution and Linear never scale: skip 2*MR multiplies per tile (K = 9 for a first layer)
      v0 = _mm512_mul_ps(v0, va);
      v1 = _mm512_mul_ps(v1, va);
    }
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

}  // namespace

void gemm_ukernel_12x32(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                        float beta, const float* row_bias, bool relu) {
  if (nr <= 16) return ukernel<12, 1>(kc, a, b, c, ldc, mr, nr, alpha, beta, row_bias, relu);
  ukernel<12, 2>(kc, a, b, c, ldc, mr, nr, alpha, beta, row_bias, relu);
}

void gemm_ukernel_8x32(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                       float beta, const float* row_bias, bool relu) {
  if (nr <= 16) return ukernel<8, 1>(kc, a, b, c, ldc, mr, nr, alpha, beta, row_bias, relu);
  ukernel<8, 2>(kc, a, b, c, ldc, mr, nr, alpha, beta, row_bias, relu);
}

}  // namespace pycnn::avx512
