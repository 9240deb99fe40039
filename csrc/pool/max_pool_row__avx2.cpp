// Max pooling of one output row for any window, AVX2: 8 outputs per step,
// the AVX-512 kernel's method (max_pool_row__avx512.cpp) with AVX2's tools.
// Stride 2 takes columns c..c+7 and c+7..c+14 and picks c, c+2, ..., c+14
// with one in-lane shuffle and one 64-bit permute; the steps at the row's
// ends load with VMASKMOVPS (loads only: its stores are microcoded on AMD)
// and blend -inf into the lanes outside the row; other strides gather. A
// last step shorter than 8 outputs stores through a buffer.
// Compiled with -mavx2 -mfma only; nothing here is inline or shared.
#include <immintrin.h>

#include <cstdint>

#include "pool/max_pool_row.h"

namespace pycnn::avx2 {
namespace {

constexpr i64 kLanes = 8;

__m256 minus_inf() { return _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<std::int32_t>(0xFF800000u))); }

// All-ones in the lanes whose column cols[i] lies in [0, W).
__m256i inside_row(__m256i cols, i64 W) {
  return _mm256_and_si256(_mm256_cmpgt_epi32(cols, _mm256_set1_epi32(-1)),
                          _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<std::int32_t>(W)), cols));
}

// One kernel tap of a step: lane i reads column c + stride * i. At the row's
// ends (kEdge) the loads are masked to the columns inside [0, W), -inf
// elsewhere; the masks depend on the column only, so a step computes them
// once for all its input rows.
struct Tap {
  i64 c;
  __m256i m0, m1;  // the masks of the (first, second) load
};

template <int S, bool kEdge>
Tap make_tap(i64 c, i64 W, __m256i lane_s) {
  Tap t{c, _mm256_setzero_si256(), _mm256_setzero_si256()};
  if constexpr (kEdge) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i first = _mm256_set1_epi32(static_cast<std::int32_t>(c));
    if constexpr (S == 1 || S == 2) {
      t.m0 = inside_row(_mm256_add_epi32(lane, first), W);
      t.m1 = inside_row(_mm256_add_epi32(lane, _mm256_add_epi32(first, _mm256_set1_epi32(7))), W);
    } else {
      t.m0 = inside_row(_mm256_add_epi32(lane_s, first), W);
    }
  }
  return t;
}

// The 8 inputs from column c on; with kEdge, -inf outside the mask m.
template <bool kEdge>
__m256 load8(const float* p, __m256i m) {
  if constexpr (kEdge) return _mm256_blendv_ps(minus_inf(), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  return _mm256_loadu_ps(p);
}

// The tap's 8 inputs in one input row (S: the stride; 0 = any, from lane_s = i * stride).
// Stride 2 loads columns c..c+7 and c+7..c+14 and keeps, per 128-bit half,
// the first's lanes 0, 2 and the second's lanes 1, 3 (c, c+2, c+8, c+10 |
// c+4, c+6, c+12, c+14), then puts the 64-bit pairs back in order.
template <int S, bool kEdge>
__m256 load_tap(const float* row, const Tap& t, __m256i lane_s) {
  if constexpr (S == 1) {
    return load8<kEdge>(row + t.c, t.m0);
  } else if constexpr (S == 2) {
    const __m256 even = _mm256_shuffle_ps(load8<kEdge>(row + t.c, t.m0), load8<kEdge>(row + t.c + 7, t.m1), 0xD8);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
  } else {
    const __m256i cols = _mm256_add_epi32(lane_s, _mm256_set1_epi32(static_cast<std::int32_t>(t.c)));
    if constexpr (kEdge) return _mm256_mask_i32gather_ps(minus_inf(), row, cols, _mm256_castsi256_ps(t.m0), 4);
    return _mm256_i32gather_ps(row, cols, 4);
  }
}

// The window's running maximum a, then the next element b: b if b > a or b is a NaN, else a.
__m256 fold(__m256 a, __m256 b) {
  return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

// Outputs [ow0, ow0 + n) of the row; KW as in the AVX-512 kernel (0 = any:
// the taps [jb, je) that read a real column for some output of the step).
template <int S, int KW, bool kEdge>
void step(float* y, std::int32_t* idx, const MaxPoolRowArgs& a, i64 ow0, i64 n, i64 jb, i64 je) {
  const i64 s = S ? S : a.stride;
  const i64 c0 = ow0 * s - a.pad;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i lane_s = _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<std::int32_t>(s)));
  constexpr int kTaps = KW ? KW : 1;
  Tap taps[kTaps];
  if constexpr (KW != 0) {
    jb = 0, je = KW;
    for (int j = 0; j < KW; ++j) taps[j] = make_tap<S, kEdge>(c0 + j, a.W, lane_s);
  }
  const auto tap = [&](const float* row, i64 j) {
    if constexpr (KW != 0) return load_tap<S, kEdge>(row, taps[j], lane_s);
    return load_tap<S, kEdge>(row, make_tap<S, kEdge>(c0 + j, a.W, lane_s), lane_s);
  };
  __m256 best;
  __m256i at = _mm256_setzero_si256();
  if (!idx) {
    const auto row_max = [&](i64 h) {
      const float* row = a.x + h * a.W;
      __m256 r = tap(row, jb);
      for (i64 j = jb + 1; j < je; ++j) r = fold(r, tap(row, j));
      return r;
    };
    best = row_max(a.hb);
    for (i64 h = a.hb + 1; h < a.he; ++h) best = fold(best, row_max(h));
  } else {
    // the first real element of each window is its index until a tap beats -inf
    const __m256i start = _mm256_add_epi32(lane_s, _mm256_set1_epi32(static_cast<std::int32_t>(c0)));
    best = minus_inf();
    at = _mm256_add_epi32(_mm256_max_epi32(start, _mm256_setzero_si256()),
                          _mm256_set1_epi32(static_cast<std::int32_t>(a.hb * a.W)));
    for (i64 h = a.hb; h < a.he; ++h) {
      const float* row = a.x + h * a.W;
      const __m256i here = _mm256_add_epi32(start, _mm256_set1_epi32(static_cast<std::int32_t>(h * a.W)));
      for (i64 j = jb; j < je; ++j) {
        const __m256 v = tap(row, j);
        const __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        const __m256i there = _mm256_add_epi32(here, _mm256_set1_epi32(static_cast<std::int32_t>(j)));
        best = _mm256_blendv_ps(best, v, take);
        at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(at), _mm256_castsi256_ps(there), take));
      }
    }
  }
  if (n == kLanes) {
    _mm256_storeu_ps(y + ow0, best);
    if (idx) _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + ow0), at);
    return;
  }
  alignas(32) float yb[kLanes];
  alignas(32) std::int32_t ib[kLanes];
  _mm256_store_ps(yb, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(ib), at);
  for (i64 i = 0; i < n; ++i) y[ow0 + i] = yb[i];
  if (idx)
    for (i64 i = 0; i < n; ++i) idx[ow0 + i] = ib[i];
}

template <int S, int KW>
void row(float* y, std::int32_t* idx, const MaxPoolRowArgs& a) {
  const i64 s = S ? S : a.stride;
  const auto inside = [&](i64 ow0) {  // do the 8 windows from ow0 on lie inside the row?
    const i64 c0 = ow0 * s - a.pad;
    return c0 >= 0 && c0 + (kLanes - 1) * s + a.kw <= a.W;
  };
  for (i64 ow0 = 0; ow0 < a.Wo; ow0 += kLanes) {
    i64 n = a.Wo - ow0 < kLanes ? a.Wo - ow0 : kLanes;
    if (n < kLanes && a.Wo >= kLanes && inside(a.Wo - kLanes)) ow0 = a.Wo - kLanes, n = kLanes;  // see AVX-512
    if (n == kLanes && inside(ow0)) {
      step<S, KW, false>(y, idx, a, ow0, n, 0, a.kw);
    } else {  // the taps that read a real column for at least one of the n windows
      const i64 c0 = ow0 * s - a.pad;
      const i64 jb = -(c0 + (n - 1) * s) > 0 ? -(c0 + (n - 1) * s) : 0;
      const i64 je = a.W - c0 < a.kw ? a.W - c0 : a.kw;
      step<S, KW, true>(y, idx, a, ow0, n, jb, je);
    }
  }
}

}  // namespace

void max_pool_row(float* y, std::int32_t* idx, const MaxPoolRowArgs& a) {
  if (a.stride == 2 && a.kw == 3) return row<2, 3>(y, idx, a);
  if (a.stride == 2 && a.kw == 2) return row<2, 2>(y, idx, a);
  switch (a.stride) {
    case 1: return row<1, 0>(y, idx, a);
    case 2: return row<2, 0>(y, idx, a);
    default: return row<0, 0>(y, idx, a);
  }
}

}  // namespace pycnn::avx2
