// im2col panel copy for AVX-512 (see im2col_panel.h): a depth row of a panel of
// up to 32 lanes is two zmm registers, each the OR of its zero-masked loads
// (masked-off lanes load as +0.0, whose bits are all zero), then two stores.
// Masked-off lanes are never read, so a load may start before or run past
// its input row without faulting.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

#include "conv/im2col_panel.h"

namespace pycnn::avx512 {

void im2col_panel_copy(float* PYCNN_RESTRICT dst, i64 width, i64 k0, i64 kc, const float* PYCNN_RESTRICT x,
                    const ColPanelPlan& p) {
  i64 c = k0 / p.taps, t = k0 % p.taps;
  const __mmask16 keep0 = static_cast<__mmask16>(width >= 16 ? 0xFFFFu : (1u << width) - 1u);
  const __mmask16 keep1 = static_cast<__mmask16>(width >= 32 ? 0xFFFFu : width > 16 ? (1u << (width - 16)) - 1u : 0u);
  for (i64 k = 0; k < kc; ++k) {
    const float* plane = x + c * p.plane_size;
    __m512i v0 = _mm512_setzero_si512(), v1 = _mm512_setzero_si512();
    const std::int32_t b = p.begin[t], m = p.split[t], e = p.begin[t + 1];
    for (std::int32_t q = b; q < m; ++q)
      v0 = _mm512_or_si512(v0, _mm512_castps_si512(_mm512_maskz_loadu_ps(
                                   static_cast<__mmask16>(p.loads[q].mask), plane + p.loads[q].offset)));
    for (std::int32_t q = m; q < e; ++q)
      v1 = _mm512_or_si512(v1, _mm512_castps_si512(_mm512_maskz_loadu_ps(
                                   static_cast<__mmask16>(p.loads[q].mask), plane + p.loads[q].offset)));
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
