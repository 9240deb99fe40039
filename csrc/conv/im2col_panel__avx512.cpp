// im2col panel copy for AVX-512 (see im2col_panel.h): a depth row of a panel of
// up to 32 lanes is two zmm registers, each the OR of its zero-masked loads
// (masked-off lanes load as +0.0, whose bits are all zero), then two stores.
// Stride 2: each load is two 16-float loads whose even elements one
// permute gathers.
// Masked-off lanes are never read, so a load may start before or run past
// its input row without faulting.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

#include "conv/im2col_panel.h"

namespace pycnn::avx512 {

namespace {

// One register of a stride-2 depth row: lane L = element 2L of the 32 floats
// from each load's offset (its mask marks the even elements it reads).
inline __m512i stride2_register(const float* plane, const ColPanelPlan::Load* q, const ColPanelPlan::Load* end) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  __m512i v = _mm512_setzero_si512();
  for (; q < end; ++q) {
    const __m512 lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(q->mask), plane + q->offset);
    const __m512 hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(q->mask >> 16), plane + q->offset + 16);
    v = _mm512_or_si512(v, _mm512_castps_si512(_mm512_permutex2var_ps(lo, even, hi)));
  }
  return v;
}

}  // namespace

void im2col_panel_copy(float* PYCNN_RESTRICT dst, i64 width, i64 k0, i64 kc, const float* PYCNN_RESTRICT x,
                    const ColPanelPlan& p) {
  i64 c = k0 / p.taps, t = k0 % p.taps;
  const __mmask16 keep0 = static_cast<__mmask16>(width >= 16 ? 0xFFFFu : (1u << width) - 1u);
  const __mmask16 keep1 = static_cast<__mmask16>(width >= 32 ? 0xFFFFu : width > 16 ? (1u << (width - 16)) - 1u : 0u);
  for (i64 k = 0; k < kc; ++k) {
    const float* plane = x + c * p.plane_size;
    __m512i v0 = _mm512_setzero_si512(), v1 = _mm512_setzero_si512();
    const std::int32_t b = p.begin[t], m = p.split[t], e = p.begin[t + 1];
    if (p.stride == 2) {
      v0 = stride2_register(plane, p.loads + b, p.loads + m);
      v1 = stride2_register(plane, p.loads + m, p.loads + e);
    } else {
      for (std::int32_t q = b; q < m; ++q)
        v0 = _mm512_or_si512(v0, _mm512_castps_si512(_mm512_maskz_loadu_ps(
                                     static_cast<__mmask16>(p.loads[q].mask), plane + p.loads[q].offset)));
      for (std::int32_t q = m; q < e; ++q)
        v1 = _mm512_or_si512(v1, _mm512_castps_si512(_mm512_maskz_loadu_ps(
                                     static_cast<__mmask16>(p.loads[q].mask), plane + p.loads[q].offset)));
    }
    float* d = dst + k * width;
    if (width == 32) {
      _mm512_storeu_si512(d, v0);
      _mm512_storeu_si512(d + 16, v1);
    } else {
      _mm512_mask_storeu_epi32(d, keep0, v0);
      _mm512_mask_storeu_epi32(d + 16, keep1, v1);
    }
    if (++t == p.taps) {
      t = 0;
      ++c;
    }
  }
}

}  // namespace pycnn::avx512
