// Transposing panel pack for AVX-512: dst[k * width + l] = src[l * ld + k]
// for lines l < `lines` (zeros for lines <= l < width), depths k < kc.
// It is the inner step of packing a GEMM operand whose depth runs along
// memory (op(A) row-major, op(B) transposed, im2col rows for dW): 16 lines x
// 16 depths are loaded as 16 rows, transposed in registers with the usual
// 4-stage shuffle network, and stored as 16 rows of up to 16 lanes, instead
// of one scalar store per element.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

// GCC 12 warns inside its own avx512fintrin.h (the unpack intrinsics start
// from _mm512_undefined_ps); the warning is a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "gemm/ukernel.h"

namespace pycnn::avx512 {
namespace {

// r[0..15] (rows) -> r[0..15] (columns)
void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  // r[4i + q] now holds, in each 128-bit block b, element q of rows 4i..4i+3
  // at depth 4b + q; regroup the blocks across rows.
  for (int q = 0; q < 4; ++q) {
    const __m512 a = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x88);      // blocks 0,2 of each
    const __m512 b = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xDD);      // blocks 1,3 of each
    const __m512 c = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x88);
    const __m512 d = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xDD);
    t[q] = _mm512_shuffle_f32x4(a, c, 0x88);       // depth q
    t[8 + q] = _mm512_shuffle_f32x4(a, c, 0xDD);   // depth 8 + q
    t[4 + q] = _mm512_shuffle_f32x4(b, d, 0x88);   // depth 4 + q
    t[12 + q] = _mm512_shuffle_f32x4(b, d, 0xDD);  // depth 12 + q
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace

void transpose_pack(float* PYCNN_RESTRICT dst, i64 width, const float* PYCNN_RESTRICT src, i64 ld, i64 lines,
                    i64 kc) {
  for (i64 g0 = 0; g0 < width; g0 += 16) {  // a group of 16 lanes of the panel
    const i64 group = width - g0 < 16 ? width - g0 : 16;
    const i64 real = lines - g0 < 0 ? 0 : (lines - g0 < group ? lines - g0 : group);
    const __mmask16 store_mask = static_cast<__mmask16>((1u << group) - 1u);
    for (i64 k = 0; k < kc; k += 16) {
      const i64 depth = kc - k < 16 ? kc - k : 16;
      const __mmask16 load_mask = static_cast<__mmask16>((1u << depth) - 1u);
      __m512 r[16];
      for (i64 l = 0; l < 16; ++l)
        r[l] = l < real ? _mm512_maskz_loadu_ps(load_mask, src + (g0 + l) * ld + k) : _mm512_setzero_ps();
      transpose16(r);
      for (i64 d = 0; d < depth; ++d) _mm512_mask_storeu_ps(dst + (k + d) * width + g0, store_mask, r[d]);
    }
  }
}

}  // namespace pycnn::avx512
