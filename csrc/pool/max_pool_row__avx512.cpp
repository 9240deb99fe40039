// Max pooling of one output row for any window, AVX-512: 16 outputs per
// step (max_pool_row.h has the rule and why both folds below follow it).
//
// Each kernel tap of an input row is one vector of 16 inputs, one per output:
// a plain load for stride 1; for stride 2 two loads, columns c..c+15 and
// c+15..c+30, whose even and odd lanes one two-source permute interleaves
// into c, c+2, ..., c+30 (no load reaches past the last column needed); a
// gather for other strides. A step whose windows all lie inside the row
// loads without masks (a short last step is moved left to end at the row's
// end when that makes it one: it recomputes a few outputs, the same values);
// the steps at the row's ends load with masks that put -inf at the padding
// and outside the row, computed once per step. Windows 2 and 3 wide with
// stride 2 (ResNet's 3x3 / stride 2 / padding 1) have unrolled taps.
//
// With indices, the taps are compared in row-major order with masks: a
// strict `>` or an unordered compare (the portable loop's rule). Without,
// each input row's taps are folded first and the rows then, with
// fold(a, b) = isnan(b) ? b : max(b, a), where VMAXPS(b, a) returns b only
// if b > a (a on ties and when a is a NaN): the same rule in three
// instructions, no index bookkeeping.
// Compiled with -mavx512f only; nothing here is inline or shared.
#include <immintrin.h>

#include <cstdint>

// GCC 12 warns inside its own avx512fintrin.h (_mm512_max_ps and the gathers
// start from _mm512_undefined_ps); the warning is a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "pool/max_pool_row.h"

namespace pycnn::avx512 {
namespace {

constexpr i64 kLanes = 16;

__m512 minus_inf() { return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<std::int32_t>(0xFF800000u))); }

// The lanes [lo, hi) of a vector, clipped to [0, 16).
__mmask16 lanes_between(i64 lo, i64 hi) {
  lo = lo < 0 ? 0 : (lo > kLanes ? kLanes : lo);
  hi = hi < lo ? lo : (hi > kLanes ? kLanes : hi);
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// One kernel tap of a step: lane i reads column c + stride * i. At the row's
// ends (kEdge) the loads are masked to the columns inside [0, W), -inf
// elsewhere; the masks depend on the column only, so a step computes them
// once for all its input rows.
struct Tap {
  i64 c;
  __mmask16 m0, m1;  // the masks of the (first, second) load
};

template <int S, bool kEdge>
Tap make_tap(i64 c, i64 W, __m512i lane_s) {
  Tap t{c, 0xFFFF, 0xFFFF};
  if constexpr (kEdge) {
    if constexpr (S == 1 || S == 2) {
      t.m0 = lanes_between(-c, W - c);
      t.m1 = lanes_between(-c - 15, W - c - 15);
    } else {
      const __m512i cols = _mm512_add_epi32(lane_s, _mm512_set1_epi32(static_cast<std::int32_t>(c)));
      t.m0 = _mm512_cmpge_epi32_mask(cols, _mm512_setzero_si512()) &
             _mm512_cmplt_epi32_mask(cols, _mm512_set1_epi32(static_cast<std::int32_t>(W)));
    }
  }
  return t;
}

// The tap's 16 inputs in one input row (S: the stride; 0 = any, from lane_s = i * stride).
// Stride 2 loads columns c..c+15 and c+15..c+30 and takes the first's even
// lanes, then the second's odd ones: no load reaches past column c+30.
template <int S, bool kEdge>
__m512 load_tap(const float* row, const Tap& t, __m512i lane_s) {
  if constexpr (S == 1) {
    if constexpr (kEdge) return _mm512_mask_loadu_ps(minus_inf(), t.m0, row + t.c);
    return _mm512_loadu_ps(row + t.c);
  } else if constexpr (S == 2) {
    const __m512i pick = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31);
    if constexpr (kEdge)
      return _mm512_permutex2var_ps(_mm512_mask_loadu_ps(minus_inf(), t.m0, row + t.c), pick,
                                    _mm512_mask_loadu_ps(minus_inf(), t.m1, row + t.c + 15));
    return _mm512_permutex2var_ps(_mm512_loadu_ps(row + t.c), pick, _mm512_loadu_ps(row + t.c + 15));
  } else {
    const __m512i cols = _mm512_add_epi32(lane_s, _mm512_set1_epi32(static_cast<std::int32_t>(t.c)));
    if constexpr (kEdge) return _mm512_mask_i32gather_ps(minus_inf(), t.m0, cols, row, 4);
    return _mm512_i32gather_ps(cols, row, 4);
  }
}

// The window's running maximum a, then the next element b: b if b > a or b is a NaN, else a.
__m512 fold(__m512 a, __m512 b) {
  return _mm512_mask_mov_ps(_mm512_max_ps(b, a), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
}

// Outputs [ow0, ow0 + n) of the row; KW: the window width (0 = any, a.kw).
// A window width known here unrolls the taps and keeps their masks in
// registers; with any other width the taps are [jb, je), those that read a
// real column for some output of the step.
template <int S, int KW, bool kEdge>
void step(float* y, std::int32_t* idx, const MaxPoolRowArgs& a, i64 ow0, i64 n, i64 jb, i64 je) {
  const i64 s = S ? S : a.stride;
  const i64 c0 = ow0 * s - a.pad;  // lane 0's window starts at this column
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lane_s = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<std::int32_t>(s)));
  const __mmask16 out = lanes_between(0, n);
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
  if (!idx) {
    const auto row_max = [&](i64 h) {
      const float* row = a.x + h * a.W;
      __m512 r = tap(row, jb);
      for (i64 j = jb + 1; j < je; ++j) r = fold(r, tap(row, j));
      return r;
    };
    __m512 acc = row_max(a.hb);
    for (i64 h = a.hb + 1; h < a.he; ++h) acc = fold(acc, row_max(h));
    _mm512_mask_storeu_ps(y + ow0, out, acc);
    return;
  }
  // Every window's first real element (hb, max(start column, 0)) is its
  // index until a tap beats -inf: that is where PyTorch's index starts.
  const __m512i start = _mm512_add_epi32(lane_s, _mm512_set1_epi32(static_cast<std::int32_t>(c0)));
  __m512 best = minus_inf();
  __m512i at = _mm512_add_epi32(_mm512_max_epi32(start, _mm512_setzero_si512()),
                                _mm512_set1_epi32(static_cast<std::int32_t>(a.hb * a.W)));
  for (i64 h = a.hb; h < a.he; ++h) {
    const float* row = a.x + h * a.W;
    const __m512i here = _mm512_add_epi32(start, _mm512_set1_epi32(static_cast<std::int32_t>(h * a.W)));
    for (i64 j = jb; j < je; ++j) {
      const __m512 v = tap(row, j);
      const __mmask16 take = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      best = _mm512_mask_mov_ps(best, take, v);
      at = _mm512_mask_add_epi32(at, take, here, _mm512_set1_epi32(static_cast<std::int32_t>(j)));
    }
  }
  _mm512_mask_storeu_ps(y + ow0, out, best);
  _mm512_mask_storeu_epi32(idx + ow0, out, at);
}

template <int S, int KW>
void row(float* y, std::int32_t* idx, const MaxPoolRowArgs& a) {
  const i64 s = S ? S : a.stride;
  const auto inside = [&](i64 ow0) {  // do the 16 windows from ow0 on lie inside the row?
    const i64 c0 = ow0 * s - a.pad;
    return c0 >= 0 && c0 + (kLanes - 1) * s + a.kw <= a.W;
  };
  for (i64 ow0 = 0; ow0 < a.Wo; ow0 += kLanes) {
    i64 n = a.Wo - ow0 < kLanes ? a.Wo - ow0 : kLanes;
    if (n < kLanes && a.Wo >= kLanes && inside(a.Wo - kLanes)) {
      // the last step, moved left to end at the row's end: it recomputes
      // some outputs (the same values) but needs no masks
      ow0 = a.Wo - kLanes, n = kLanes;
    }
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
  // Unrolled: ResNet's 3x3 / stride 2 and the 2x2 / stride 2 (values only:
  // with indices it has its own kernel); everything else loops over the taps.
  if (a.stride == 2 && a.kw == 3) return row<2, 3>(y, idx, a);
  if (a.stride == 2 && a.kw == 2) return row<2, 2>(y, idx, a);
  switch (a.stride) {
    case 1: return row<1, 0>(y, idx, a);
    case 2: return row<2, 0>(y, idx, a);
    default: return row<0, 0>(y, idx, a);
  }
}

}  // namespace pycnn::avx512
