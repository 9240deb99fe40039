// Winograd F(4x4, 3x3) tile transforms for AVX-512 (contracts and matrices:
// conv/winograd.h), 16 tiles per call, one per lane of a zmm register.
//   input:  V = B^T d B per channel; a patch row of four side-by-side tiles
//           is two masked loads transposed in registers, other tiles' patch
//           elements are masked gathers (elements outside the image or lanes
//           without a tile read nothing and stay zero); V overwritten as 36
//           full 16-lane stores.
//   output: Y = A^T M A (+ bias, ReLU) per output channel; the 16 results of
//           each output row are transposed in registers so that each 128-bit
//           block holds one tile's 4 columns, then one masked store per
//           (tile, row) writes exactly the outputs inside the image.
//   weights: U = G g G^T of 16 filters at a time, in float (the portable
//           version computes in double: the difference is below U's own
//           rounding in the error measurements), gathered taps.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

// GCC 12 warns inside its own avx512fintrin.h (_mm512_max_ps and
// _mm512_set1_epi32 start from _mm512_undefined_*); a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "conv/winograd.h"

namespace pycnn::avx512 {
namespace {

// out[r] = (B^T d)[r]
void bt(__m512 out[6], __m512 d0, __m512 d1, __m512 d2, __m512 d3, __m512 d4, __m512 d5) {
  const __m512 two = _mm512_set1_ps(2.0f), three = _mm512_set1_ps(3.0f), four = _mm512_set1_ps(4.0f),
               five = _mm512_set1_ps(5.0f);
  const __m512 d31 = _mm512_sub_ps(d3, d1), d24 = _mm512_sub_ps(d2, d4);
  out[0] = _mm512_fmadd_ps(two, _mm512_add_ps(d0, d4),
                           _mm512_fnmadd_ps(four, d2, _mm512_mul_ps(three, _mm512_sub_ps(d1, d3))));
  out[1] = _mm512_fmadd_ps(two, _mm512_sub_ps(d1, d4), _mm512_fmadd_ps(five, d2, d3));
  out[2] = _mm512_fmadd_ps(two, _mm512_add_ps(d1, d4), _mm512_fnmadd_ps(five, d3, d2));
  out[3] = _mm512_fnmadd_ps(two, d24, d31);
  out[4] = _mm512_fmadd_ps(two, d31, d24);
  out[5] = _mm512_fmadd_ps(two, _mm512_add_ps(d1, d5), _mm512_fnmadd_ps(four, d3, _mm512_mul_ps(three, d24)));
}

// out[r] = (A^T m)[r]
void at(__m512 out[4], __m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 m4, __m512 m5) {
  const __m512 a = _mm512_add_ps(m1, m2), b = _mm512_sub_ps(m1, m2);
  out[0] = _mm512_add_ps(_mm512_add_ps(m0, a), _mm512_add_ps(m3, m4));
  out[1] = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), m4, _mm512_fmadd_ps(_mm512_set1_ps(2.0f), m3, b));
  out[2] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), m4, _mm512_fmadd_ps(_mm512_set1_ps(4.0f), m3, a));
  out[3] = _mm512_add_ps(_mm512_fnmadd_ps(_mm512_set1_ps(0.125f), m4, _mm512_fmadd_ps(_mm512_set1_ps(8.0f), m3, b)),
                         m5);
}

// out[r * os] = (G g)[r]
void g_1d(__m512* out, int os, __m512 g0, __m512 g1, __m512 g2) {
  const __m512 half = _mm512_set1_ps(0.5f), sixth = _mm512_set1_ps(1.0f / 6);
  const __m512 g02 = _mm512_add_ps(g0, g2);
  out[0] = _mm512_mul_ps(g0, half);
  out[os] = _mm512_mul_ps(_mm512_add_ps(g02, g1), sixth);
  out[2 * os] = _mm512_mul_ps(_mm512_sub_ps(g02, g1), sixth);
  out[3 * os] = _mm512_mul_ps(
      _mm512_fmadd_ps(_mm512_set1_ps(4.0f), g2, _mm512_fmadd_ps(_mm512_set1_ps(2.0f), g1, g0)),
      _mm512_set1_ps(1.0f / 30));
  out[4 * os] = _mm512_mul_ps(
      _mm512_fmadd_ps(_mm512_set1_ps(4.0f), g2, _mm512_fmsub_ps(_mm512_set1_ps(16.0f), g0, _mm512_mul_ps(_mm512_set1_ps(8.0f), g1))),
      _mm512_set1_ps(1.0f / 15));
  out[5 * os] = _mm512_mul_ps(g2, half);
}

}  // namespace

void winograd_f4x3_weights(float* u, i64 u_p, const float* w, const std::int32_t* off, int n, bool flip) {
  for (int l0 = 0; l0 < n; l0 += 16) {
    const __mmask16 live = static_cast<__mmask16>(n - l0 >= 16 ? 0xFFFFu : (1u << (n - l0)) - 1u);
    const __m512i base = _mm512_maskz_loadu_epi32(live, off + l0);
    __m512 f[9];
    for (int q = 0; q < 9; ++q)
      f[q] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live,
                                      _mm512_add_epi32(base, _mm512_set1_epi32(flip ? 8 - q : q)), w, 4);
    __m512 t[18], r[6];  // t = G f (6 x 3), then each row of t G^T
    for (int j = 0; j < 3; ++j) g_1d(t + j, 3, f[j], f[3 + j], f[6 + j]);
    for (int i = 0; i < 6; ++i) {
      g_1d(r, 1, t[i * 3], t[i * 3 + 1], t[i * 3 + 2]);
      for (int j = 0; j < 6; ++j) _mm512_mask_storeu_ps(u + (i * 6 + j) * u_p + l0, live, r[j]);
    }
  }
}

void winograd_f4x3_input(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                         const WinogradLanes& g) {
  // Four lanes whose tiles are side by side in one tile row (a `run` block)
  // read each patch row as two masked 16-float loads -- columns 0..15 and
  // 4..19 of the block's 18 -- transposed in registers; other lanes gather.
  // Masks come from in_mask, so padding needs no special case.
  bool run[4];
  __mmask16 gather_lanes = 0;
  i64 row_off[4];
  __mmask16 lo_mask[6][4], hi_mask[6][4];  // the two loads of patch row i
  for (int blk = 0; blk < 4; ++blk) {
    const int l0 = 4 * blk;
    run[blk] = true;
    for (int h = 1; h < 4; ++h) run[blk] = run[blk] && g.in_off[l0 + h] == g.in_off[l0] + 4 * h;
    row_off[blk] = g.in_off[l0];
    if (!run[blk]) gather_lanes = static_cast<__mmask16>(gather_lanes | (0xFu << l0));
    for (int i = 0; i < 6; ++i) {
      unsigned lo = 0, hi = 0;
      for (int e = 0; e < 16; ++e) {  // element e = 4 * t + j of a load: tile l0 + t, patch column j (+ 4)
        const int t = e / 4, j = e % 4;
        if (g.in_mask[i * 6 + j] >> (l0 + t) & 1u) lo |= 1u << e;
        if (j < 2 && g.in_mask[i * 6 + 4 + j] >> (l0 + t) & 1u) hi |= 1u << e;
      }
      lo_mask[i][blk] = static_cast<__mmask16>(run[blk] ? lo : 0u);
      hi_mask[i][blk] = static_cast<__mmask16>(run[blk] ? hi : 0u);
    }
  }
  const bool any_run = run[0] || run[1] || run[2] || run[3];
  const __m512i base = _mm512_loadu_si512(g.in_off);
  __m512i idx[36];
  __mmask16 mask[36];
  for (int q = 0; q < 36; ++q) {
    idx[q] = _mm512_add_epi32(base, _mm512_set1_epi32(static_cast<int>((q / 6) * W + q % 6)));
    mask[q] = static_cast<__mmask16>(g.in_mask[q] & gather_lanes);
  }
  // element 4 * t + b of a block transpose -> lane 4 * b + t
  const __m512i to_lanes = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m512 zero = _mm512_setzero_ps();
  for (i64 c = 0; c < nc; ++c) {
    const float* xc = x + c * plane;
    __m512 t[36];  // t[i][j']: rows transformed along j
    for (int i = 0; i < 6; ++i) {
      __m512 d[6];
      if (any_run) {
        __m512 a[4], b[4];
        for (int blk = 0; blk < 4; ++blk) {
          const float* src = xc + row_off[blk] + i * W;
          a[blk] = _mm512_maskz_loadu_ps(lo_mask[i][blk], src);
          b[blk] = _mm512_maskz_loadu_ps(hi_mask[i][blk], src + 4);
        }
        // 4x4 transposes within 128-bit blocks: element 4 * t + blk of e[j] is a[blk][4 * t + j]
        const __m512 lo01 = _mm512_unpacklo_ps(a[0], a[1]), lo23 = _mm512_unpacklo_ps(a[2], a[3]);
        const __m512 hi01 = _mm512_unpackhi_ps(a[0], a[1]), hi23 = _mm512_unpackhi_ps(a[2], a[3]);
        const __m512 blo01 = _mm512_unpacklo_ps(b[0], b[1]), blo23 = _mm512_unpacklo_ps(b[2], b[3]);
        d[0] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0)));
        d[1] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2)));
        d[2] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0)));
        d[3] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2)));
        d[4] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(blo01, blo23, _MM_SHUFFLE(1, 0, 1, 0)));
        d[5] = _mm512_permutexvar_ps(to_lanes, _mm512_shuffle_ps(blo01, blo23, _MM_SHUFFLE(3, 2, 3, 2)));
      } else {
        for (int j = 0; j < 6; ++j) d[j] = zero;
      }
      if (gather_lanes)
        for (int j = 0; j < 6; ++j) d[j] = _mm512_mask_i32gather_ps(d[j], mask[i * 6 + j], idx[i * 6 + j], xc, 4);
      bt(t + i * 6, d[0], d[1], d[2], d[3], d[4], d[5]);
    }
    float* vc = v + c * v_c;
    for (int j = 0; j < 6; ++j) {
      __m512 u[6];
      bt(u, t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]);
      for (int i = 0; i < 6; ++i) _mm512_storeu_ps(vc + (i * 6 + j) * v_p, u[i]);
    }
  }
}

void winograd_f4x3_output(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                          const float* bias, const float* addend, bool relu, const WinogradLanes& g) {
  // Bias is added before the transposes below; the addend (laid out as y)
  // and then the ReLU after them, as each row is stored.
  // Lane l = 4 * blk + h ends up in block blk of register h: its store
  // starts 4 * blk floats before the tile's first output, masked to its block.
  // Four lanes whose tiles are side by side and whole in row r (most of an
  // image's) are written by one full store instead (`whole`).
  i64 off[16];
  __mmask16 keep[4][16];
  bool whole[4][4];
  for (int l = 0; l < 16; ++l) {
    const int blk = l / 4;
    off[l] = static_cast<i64>(g.out_off[l]) - 4 * blk;
    const unsigned cols = static_cast<unsigned>(((1u << g.out_cols[l]) - 1u) << (4 * blk));
    for (int r = 0; r < 4; ++r) keep[r][l] = static_cast<__mmask16>(r < g.out_rows[l] ? cols : 0u);
  }
  for (int blk = 0; blk < 4; ++blk)
    for (int r = 0; r < 4; ++r) {
      bool w = true;
      for (int h = 0; h < 4; ++h) {
        const int l = 4 * blk + h;
        w = w && g.out_cols[l] == 4 && g.out_rows[l] > r && g.out_off[l] == g.out_off[4 * blk] + 4 * h;
      }
      whole[r][blk] = w;
    }
  const __m512 zero = _mm512_setzero_ps();
  for (i64 k = 0; k < nk; ++k) {
    const float* mk = m + k * m_k;
    __m512 t[24];  // t[i][c]: rows of M transformed along j
    for (int i = 0; i < 6; ++i)
      at(t + i * 4, _mm512_loadu_ps(mk + (i * 6) * m_p), _mm512_loadu_ps(mk + (i * 6 + 1) * m_p),
         _mm512_loadu_ps(mk + (i * 6 + 2) * m_p), _mm512_loadu_ps(mk + (i * 6 + 3) * m_p),
         _mm512_loadu_ps(mk + (i * 6 + 4) * m_p), _mm512_loadu_ps(mk + (i * 6 + 5) * m_p));
    __m512 o[16];  // o[r][c]
    for (int c = 0; c < 4; ++c) {
      __m512 col[4];
      at(col, t[c], t[4 + c], t[8 + c], t[12 + c], t[16 + c], t[20 + c]);
      for (int r = 0; r < 4; ++r) o[r * 4 + c] = col[r];
    }
    const __m512 bk = _mm512_set1_ps(bias ? bias[k] : 0.0f);
    float* yk = y + k * plane;
    for (int r = 0; r < 4; ++r) {
      __m512 v[4];
      for (int c = 0; c < 4; ++c) {
        v[c] = bias ? _mm512_add_ps(o[r * 4 + c], bk) : o[r * 4 + c];
        if (relu && !addend) v[c] = _mm512_max_ps(zero, v[c]);  // max(0, v): MAXPS returns v for NaN
      }
      // 4x4 transposes within each 128-bit block: h[q] holds tile 4 * blk + q's row r in block blk
      const __m512 lo01 = _mm512_unpacklo_ps(v[0], v[1]), hi01 = _mm512_unpackhi_ps(v[0], v[1]);
      const __m512 lo23 = _mm512_unpacklo_ps(v[2], v[3]), hi23 = _mm512_unpackhi_ps(v[2], v[3]);
      __m512 h[4];
      h[0] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(1, 0, 1, 0));
      h[1] = _mm512_shuffle_ps(lo01, lo23, _MM_SHUFFLE(3, 2, 3, 2));
      h[2] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(1, 0, 1, 0));
      h[3] = _mm512_shuffle_ps(hi01, hi23, _MM_SHUFFLE(3, 2, 3, 2));
      float* yr = yk + r * Wo;
      // z[blk] = block blk of h[0..3]: tiles 4 * blk .. + 3 side by side
      const __m512 t01lo = _mm512_shuffle_f32x4(h[0], h[1], 0x44), t23lo = _mm512_shuffle_f32x4(h[2], h[3], 0x44);
      const __m512 t01hi = _mm512_shuffle_f32x4(h[0], h[1], 0xEE), t23hi = _mm512_shuffle_f32x4(h[2], h[3], 0xEE);
      const __m512 z[4] = {_mm512_shuffle_f32x4(t01lo, t23lo, 0x88), _mm512_shuffle_f32x4(t01lo, t23lo, 0xDD),
                           _mm512_shuffle_f32x4(t01hi, t23hi, 0x88), _mm512_shuffle_f32x4(t01hi, t23hi, 0xDD)};
      if (!addend) {
        for (int blk = 0; blk < 4; ++blk) {
          if (whole[r][blk]) {
            _mm512_storeu_ps(yr + g.out_off[4 * blk], z[blk]);
            continue;
          }
          for (int l = 4 * blk; l < 4 * blk + 4; ++l) _mm512_mask_storeu_ps(yr + off[l], keep[r][l], h[l % 4]);
        }
        continue;
      }
      const float* ar = addend + k * plane + r * Wo;
      const auto finish = [&](__m512 v, __m512 a) { return relu ? _mm512_max_ps(zero, _mm512_add_ps(v, a)) : _mm512_add_ps(v, a); };
      for (int blk = 0; blk < 4; ++blk) {
        if (whole[r][blk]) {
          _mm512_storeu_ps(yr + g.out_off[4 * blk], finish(z[blk], _mm512_loadu_ps(ar + g.out_off[4 * blk])));
          continue;
        }
        for (int l = 4 * blk; l < 4 * blk + 4; ++l)
          _mm512_mask_storeu_ps(yr + off[l], keep[r][l], finish(h[l % 4], _mm512_maskz_loadu_ps(keep[r][l], ar + off[l])));
      }
    }
  }
}

}  // namespace pycnn::avx512
