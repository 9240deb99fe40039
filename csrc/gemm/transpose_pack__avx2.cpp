// Transposing panel pack for AVX2 (see transpose_pack__avx512.cpp for the
// contract): 8 lines x 8 depths are loaded as 8 rows, transposed in
// registers (unpack, shuffle, 128-bit permute) and stored as 8 rows of up to
// 8 lanes. Depth tails load through VMASKMOVPS, which never touches
// masked-off elements. A panel narrower than 8 lanes (the 6-row A panels)
// is stored with full 8-lane stores that spill into the next depth row, which
// the next store then overwrites; only the panel's last row (and a narrow
// group after a full one) is stored masked (VMASKMOVPS stores are microcoded on AMD Zen: storing every row
// through them made the pack slower than the scalar loop).
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include "gemm/ukernel.h"

namespace pycnn::avx2 {
namespace {

// r[0..7] (rows) -> r[0..7] (columns)
void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[q] (rows 0-3) and u[4 + q] (rows 4-7) hold depth q in their low
  // 128 bits and depth 4 + q in their high 128 bits.
  for (int q = 0; q < 4; ++q) {
    r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
    r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
  }
}

__m256i first_lanes(i64 n) {  // all-ones in lanes [0, n)
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}

}  // namespace

void transpose_pack(float* PYCNN_RESTRICT dst, i64 width, const float* PYCNN_RESTRICT src, i64 ld, i64 lines,
                    i64 kc) {
  for (i64 g0 = 0; g0 < width; g0 += 8) {  // a group of 8 lanes of the panel
    const i64 group = width - g0 < 8 ? width - g0 : 8;
    const i64 real = lines - g0 < 0 ? 0 : (lines - g0 < group ? lines - g0 : group);
    const __m256i store_mask = first_lanes(group);
    for (i64 k = 0; k < kc; k += 8) {
      const i64 depth = kc - k < 8 ? kc - k : 8;
      const __m256i load_mask = first_lanes(depth);
      __m256 r[8];
      for (i64 l = 0; l < 8; ++l)
        r[l] = l < real ? (depth == 8 ? _mm256_loadu_ps(src + (g0 + l) * ld + k)
                                      : _mm256_maskload_ps(src + (g0 + l) * ld + k, load_mask))
                        : _mm256_setzero_ps();
      transpose8(r);
      for (i64 d = 0; d < depth; ++d) {
        float* out = dst + (k + d) * width + g0;
        // A narrow single group (width < 8) spills into the start of row
        // k + d + 1 of the same group, which is stored after this one.
        if (group == 8 || (g0 == 0 && k + d + 1 < kc))
          _mm256_storeu_ps(out, r[d]);
        else
          _mm256_maskstore_ps(out, store_mask, r[d]);
      }
    }
  }
}

}  // namespace pycnn::avx2
