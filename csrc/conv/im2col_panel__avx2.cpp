// im2col panel copy for AVX2 (see im2col_panel.h): a depth row of a panel of up
// to 16 lanes is two ymm registers, each the OR of its zero-masked loads
// (masked-off lanes load as +0.0, whose bits are all zero), then two stores.
// VMASKMOVPS never touches masked-off lanes, so a load may start outside
// its input row without faulting.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include "conv/im2col_panel.h"

namespace pycnn::avx2 {

void im2col_panel_copy(float* PYCNN_RESTRICT dst, i64 width, i64 k0, i64 kc, const float* PYCNN_RESTRICT x,
                    const ColPanelPlan& p) {
  i64 c = k0 / p.taps, t = k0 % p.taps;
  // lane bit L of a mask -> all-ones in lane L's int32
  const __m256i bits = _mm256_setr_epi32(1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7);
  const auto lanes = [&](std::uint32_t m) {
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(m)), bits), bits);
  };
  const __m256i keep0 = lanes(width >= 8 ? 0xFFu : (1u << width) - 1u);
  const __m256i keep1 = lanes(width >= 16 ? 0xFFu : width > 8 ? (1u << (width - 8)) - 1u : 0u);
  for (i64 k = 0; k < kc; ++k) {
    const float* plane = x + c * p.plane_size;
    __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
    const std::int32_t b = p.begin[t], m = p.split[t], e = p.begin[t + 1];
    for (std::int32_t q = b; q < m; ++q)
      v0 = _mm256_or_ps(v0, _mm256_maskload_ps(plane + p.loads[q].offset, lanes(p.loads[q].mask)));
    for (std::int32_t q = m; q < e; ++q)
      v1 = _mm256_or_ps(v1, _mm256_maskload_ps(plane + p.loads[q].offset, lanes(p.loads[q].mask)));
    float* d = dst + k * width;
    if (width == 16) {
      _mm256_storeu_ps(d, v0);
      _mm256_storeu_ps(d + 8, v1);
    } else {
      _mm256_maskstore_ps(d, keep0, v0);
      _mm256_maskstore_ps(d + 8, keep1, v1);
    }
    if (++t == p.taps) {
      t = 0;
      ++c;
    }
  }
}

}  // namespace pycnn::avx2
