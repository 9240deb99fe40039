// Winograd F(4x4, 3x3) tile transforms for AVX2 (contracts and matrices:
// conv/winograd.h), 8 tiles per call, one per lane of a ymm register.
//   input:  V = B^T d B per channel; the 36 patch elements are masked gathers
//           (lanes outside the image or without a tile read nothing and
//           stay zero), V overwritten as 36 full 8-lane stores.
//   output: Y = A^T M A (+ bias, ReLU) per output channel; the 8 results of
//           each output row are transposed in registers so that each 128-bit
//           half holds one tile's 4 columns, then one masked 4-float store per
//           (tile, row) writes exactly the outputs inside the image.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include "conv/winograd.h"

namespace pycnn::avx2 {
namespace {

// out[r] = (B^T d)[r]
void bt(__m256 out[6], __m256 d0, __m256 d1, __m256 d2, __m256 d3, __m256 d4, __m256 d5) {
  const __m256 two = _mm256_set1_ps(2.0f), three = _mm256_set1_ps(3.0f), four = _mm256_set1_ps(4.0f),
               five = _mm256_set1_ps(5.0f);
  const __m256 d31 = _mm256_sub_ps(d3, d1), d24 = _mm256_sub_ps(d2, d4);
  out[0] = _mm256_fmadd_ps(two, _mm256_add_ps(d0, d4),
                           _mm256_fnmadd_ps(four, d2, _mm256_mul_ps(three, _mm256_sub_ps(d1, d3))));
  out[1] = _mm256_fmadd_ps(two, _mm256_sub_ps(d1, d4), _mm256_fmadd_ps(five, d2, d3));
  out[2] = _mm256_fmadd_ps(two, _mm256_add_ps(d1, d4), _mm256_fnmadd_ps(five, d3, d2));
  out[3] = _mm256_fnmadd_ps(two, d24, d31);
  out[4] = _mm256_fmadd_ps(two, d31, d24);
  out[5] = _mm256_fmadd_ps(two, _mm256_add_ps(d1, d5), _mm256_fnmadd_ps(four, d3, _mm256_mul_ps(three, d24)));
}

// out[r] = (A^T m)[r]
void at(__m256 out[4], __m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 m4, __m256 m5) {
  const __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2);
  out[0] = _mm256_add_ps(_mm256_add_ps(m0, a), _mm256_add_ps(m3, m4));
  out[1] = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), m4, _mm256_fmadd_ps(_mm256_set1_ps(2.0f), m3, b));
  out[2] = _mm256_fmadd_ps(_mm256_set1_ps(0.25f), m4, _mm256_fmadd_ps(_mm256_set1_ps(4.0f), m3, a));
  out[3] = _mm256_add_ps(_mm256_fnmadd_ps(_mm256_set1_ps(0.125f), m4, _mm256_fmadd_ps(_mm256_set1_ps(8.0f), m3, b)),
                         m5);
}

}  // namespace

void winograd_f4x3_input(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                         const WinogradLanes& g) {
  const __m256i base = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.in_off));
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256i idx[36];
  __m256 mask[36];
  for (int q = 0; q < 36; ++q) {
    idx[q] = _mm256_add_epi32(base, _mm256_set1_epi32(static_cast<int>((q / 6) * W + q % 6)));
    const __m256i bits = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(g.in_mask[q])), lane_bit);
    mask[q] = _mm256_castsi256_ps(_mm256_cmpeq_epi32(bits, lane_bit));
  }
  const __m256 zero = _mm256_setzero_ps();
  for (i64 c = 0; c < nc; ++c) {
    const float* xc = x + c * plane;
    __m256 t[36];  // t[i][j']: rows transformed along j
    for (int i = 0; i < 6; ++i) {
      __m256 d[6];
      for (int j = 0; j < 6; ++j) d[j] = _mm256_mask_i32gather_ps(zero, xc, idx[i * 6 + j], mask[i * 6 + j], 4);
      bt(t + i * 6, d[0], d[1], d[2], d[3], d[4], d[5]);
    }
    float* vc = v + c * v_c;
    for (int j = 0; j < 6; ++j) {
      __m256 u[6];
      bt(u, t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]);
      for (int i = 0; i < 6; ++i) _mm256_storeu_ps(vc + (i * 6 + j) * v_p, u[i]);
    }
  }
}

void winograd_f4x3_output(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                          const float* bias, const float* addend, bool relu, const WinogradLanes& g) {
  // Lane l = 4 * half + q ends up in 128-bit half `half` of register q.
  // Bias is added before the transposes; the addend (laid out as y) and the
  // ReLU after them, on each tile row as it is stored.
  __m128i keep[4][8];
  const __m128i col_index = _mm_setr_epi32(0, 1, 2, 3);
  for (int l = 0; l < 8; ++l) {
    const __m128i cols = _mm_cmpgt_epi32(_mm_set1_epi32(g.out_cols[l]), col_index);
    for (int r = 0; r < 4; ++r) keep[r][l] = r < g.out_rows[l] ? cols : _mm_setzero_si128();
  }
  const __m256 zero = _mm256_setzero_ps();
  for (i64 k = 0; k < nk; ++k) {
    const float* mk = m + k * m_k;
    __m256 t[24];  // t[i][c]: rows of M transformed along j
    for (int i = 0; i < 6; ++i)
      at(t + i * 4, _mm256_loadu_ps(mk + (i * 6) * m_p), _mm256_loadu_ps(mk + (i * 6 + 1) * m_p),
         _mm256_loadu_ps(mk + (i * 6 + 2) * m_p), _mm256_loadu_ps(mk + (i * 6 + 3) * m_p),
         _mm256_loadu_ps(mk + (i * 6 + 4) * m_p), _mm256_loadu_ps(mk + (i * 6 + 5) * m_p));
    __m256 o[16];  // o[r][c]
    for (int c = 0; c < 4; ++c) {
      __m256 col[4];
      at(col, t[c], t[4 + c], t[8 + c], t[12 + c], t[16 + c], t[20 + c]);
      for (int r = 0; r < 4; ++r) o[r * 4 + c] = col[r];
    }
    const __m256 bk = _mm256_set1_ps(bias ? bias[k] : 0.0f);
    float* yk = y + k * plane;
    for (int r = 0; r < 4; ++r) {
      __m256 v[4];
      for (int c = 0; c < 4; ++c) {
        v[c] = bias ? _mm256_add_ps(o[r * 4 + c], bk) : o[r * 4 + c];
        if (relu && !addend) v[c] = _mm256_max_ps(zero, v[c]);  // max(0, v): MAXPS returns v for NaN
      }
      const __m256 lo01 = _mm256_unpacklo_ps(v[0], v[1]), hi01 = _mm256_unpackhi_ps(v[0], v[1]);
      const __m256 lo23 = _mm256_unpacklo_ps(v[2], v[3]), hi23 = _mm256_unpackhi_ps(v[2], v[3]);
      __m256 h[4];
      h[0] = _mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0));
      h[1] = _mm256_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2));
      h[2] = _mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0));
      h[3] = _mm256_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2));
      float* yr = yk + r * Wo;
      const float* ar = addend ? addend + k * plane + r * Wo : nullptr;
      for (int l = 0; l < g.lanes; ++l) {
        __m128 part = l < 4 ? _mm256_castps256_ps128(h[l % 4]) : _mm256_extractf128_ps(h[l % 4], 1);
        if (ar) {
          part = _mm_add_ps(part, _mm_maskload_ps(ar + g.out_off[l], keep[r][l]));
          if (relu) part = _mm_max_ps(_mm256_castps256_ps128(zero), part);
        }
        _mm_maskstore_ps(yr + g.out_off[l], keep[r][l], part);
      }
    }
  }
}

}  // namespace pycnn::avx2
