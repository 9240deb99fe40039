// Max, average and adaptive-average pooling over NCHW planes, forward and
// backward. Every pass is split over the N*C independent planes, so backward
// scatters need no atomics. All outputs (y, dx) are overwritten.
#include "pool/pool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "pool/max_pool_2x2.h"
#include "pool/max_pool_row.h"
#include "runtime/dispatch.h"
#include "runtime/parallel.h"
#include "runtime/window.h"

namespace pycnn {
namespace {

// The row kernels of each ISA, by name.
MaxPool2x2Kernels make_max_pool_2x2_kernels(Isa isa) {
  MaxPool2x2Kernels k{};
#if PYCNN_X86
  if (isa >= Isa::Avx2) k.fwd_row = avx2::max_pool_2x2_row;
  if (isa >= Isa::Avx512) k.fwd_row = avx512::max_pool_2x2_row, k.bwd_row = avx512::max_pool_2x2_bwd_row;
#else
  (void)isa;
#endif
  return k;
}

}  // namespace

const MaxPool2x2Kernels& max_pool_2x2_kernels() {
  static const auto tables = per_isa<MaxPool2x2Kernels>(make_max_pool_2x2_kernels);
  return for_active_isa(tables);
}

namespace {
MaxPoolRowKernels make_max_pool_row_kernels(Isa isa) {
  MaxPoolRowKernels k{};
#if PYCNN_X86
  if (isa >= Isa::Avx2) k.fwd_row = avx2::max_pool_row;
  if (isa >= Isa::Avx512) k.fwd_row = avx512::max_pool_row;
#else
  (void)isa;
#endif
  return k;
}
}  // namespace

const MaxPoolRowKernels& max_pool_row_kernels() {
  static const auto tables = per_isa<MaxPoolRowKernels>(make_max_pool_row_kernels);
  return for_active_isa(tables);
}

namespace {
// The common 2x2, stride-2, unpadded case: one pass over each pair of input
// rows, same tie and NaN rule as the general loop below.
void max_pool2d_fwd_2x2(float* y, int32_t* argmax, const float* x, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
  const MaxPool2x2Row row_kernel = max_pool_2x2_kernels().fwd_row;  // vectorised rows, if the ISA has them
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * s.H * s.W;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const float* PYCNN_RESTRICT r0 = xp + 2 * oh * s.W;
      const float* PYCNN_RESTRICT r1 = r0 + s.W;
      float* PYCNN_RESTRICT yr = y + (p * s.Ho + oh) * s.Wo;
      int32_t* PYCNN_RESTRICT ar = argmax + (p * s.Ho + oh) * s.Wo;
      const int32_t row0 = static_cast<int32_t>(2 * oh * s.W), row1 = row0 + static_cast<int32_t>(s.W);
      if (row_kernel) {
        row_kernel(yr, ar, r0, r1, s.Wo, row0, static_cast<int32_t>(s.W));
        continue;
      }
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const int32_t c = static_cast<int32_t>(2 * ow);
        float best = r0[2 * ow];
        int32_t idx = row0 + c;
        const float b = r0[2 * ow + 1], d = r1[2 * ow], e = r1[2 * ow + 1];
        bool take = (b > best) | (b != b);
        best = take ? b : best;
        idx = take ? row0 + c + 1 : idx;
        take = (d > best) | (d != d);
        best = take ? d : best;
        idx = take ? row1 + c : idx;
        take = (e > best) | (e != e);
        best = take ? e : best;
        idx = take ? row1 + c + 1 : idx;
        yr[ow] = best;
        ar[ow] = idx;
      }
    }
  });
}
}  // namespace

// Max pooling's rule, which every path below follows bit for bit: each
// window is scanned in row-major order, an element taken when it is > the
// running maximum (strict: the first maximum wins) or when it is a NaN
// (`v != v`: the last NaN of a window is the one reported), exactly
// PyTorch's rule (val > max || isnan(val)); the output is the taken element.
namespace {
// Any window with the ISA's row kernel (max_pool_row.h): one call per output row.
void max_pool2d_fwd_rows(MaxPoolRow row_kernel, float* y, int32_t* argmax, const float* x, const Pool2dShape& s,
                         int nt) {
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    MaxPoolRowArgs a{x + p * s.H * s.W, s.W, s.Wo, s.kw, s.stride_w, s.pad_w, 0, 0};
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 h0 = oh * s.stride_h - s.pad_h;
      a.hb = std::max<i64>(h0, 0), a.he = std::min<i64>(h0 + s.kh, s.H);
      const i64 o = (p * s.Ho + oh) * s.Wo;
      row_kernel(y + o, argmax ? argmax + o : nullptr, a);
    }
  });
}

// The portable loop, values only: the indexed loop below without its index
// (a running maximum from -inf, which only a greater element or a NaN replaces).
void max_pool2d_fwd_values(float* y, const float* x, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * s.H * s.W;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      float* PYCNN_RESTRICT yr = y + (p * s.Ho + oh) * s.Wo;
      const i64 h0 = oh * s.stride_h - s.pad_h;
      const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
      std::fill(yr, yr + s.Wo, -std::numeric_limits<float>::infinity());
      for (i64 h = hb; h < he; ++h) {
        const float* xr = xp + h * s.W;
        for (i64 j = 0; j < s.kw; ++j) {
          const i64 off = j - s.pad_w;
          i64 lo, hi;
          valid_cols(off, s.stride_w, s.W, s.Wo, lo, hi);
          for (i64 ow = lo; ow < hi; ++ow) {
            const float v = xr[ow * s.stride_w + off];
            yr[ow] = (v > yr[ow]) | (v != v) ? v : yr[ow];
          }
        }
      }
    }
  });
}
}  // namespace

void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s, int nt) {
  if (argmax && s.kh == 2 && s.kw == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0)
    return max_pool2d_fwd_2x2(y, argmax, x, s, nt);
  // The row kernels compute lane columns in int32 (max_pool_row.h).
  const MaxPoolRow row_kernel = max_pool_row_kernels().fwd_row;
  const i64 int32_room = i64{1} << 30;
  if (row_kernel && s.stride_w < int32_room && s.kw < int32_room && s.Wo < int32_room &&
      (s.Wo + 16) * s.stride_w + s.kw + s.W < int32_room)
    return max_pool2d_fwd_rows(row_kernel, y, argmax, x, s, nt);
  if (!argmax) return max_pool2d_fwd_values(y, x, s, nt);
  // The portable loop, vectorised along the output row: for each kernel tap,
  // one branch-free pass over the whole row of outputs (a running max and its
  // index, updated with selects).
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * s.H * s.W;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      float* PYCNN_RESTRICT yr = y + (p * s.Ho + oh) * s.Wo;
      int32_t* PYCNN_RESTRICT ar = argmax + (p * s.Ho + oh) * s.Wo;
      const i64 h0 = oh * s.stride_h - s.pad_h;
      const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
      // padding <= kernel/2 (checked) guarantees every window a real tap;
      // its first one is where PyTorch starts the index.
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        yr[ow] = -std::numeric_limits<float>::infinity();
        ar[ow] = static_cast<int32_t>(hb * s.W + std::max<i64>(ow * s.stride_w - s.pad_w, 0));
      }
      for (i64 h = hb; h < he; ++h) {
        const float* xr = xp + h * s.W;
        for (i64 j = 0; j < s.kw; ++j) {
          const i64 off = j - s.pad_w;
          i64 lo, hi;
          valid_cols(off, s.stride_w, s.W, s.Wo, lo, hi);
          const int32_t base = static_cast<int32_t>(h * s.W + off);
          const int32_t sw = static_cast<int32_t>(s.stride_w);
          for (i64 ow = lo; ow < hi; ++ow) {
            const float v = xr[ow * s.stride_w + off];
            const bool take = (v > yr[ow]) | (v != v);
            yr[ow] = take ? v : yr[ow];
            ar[ow] = take ? base + static_cast<int32_t>(ow) * sw : ar[ow];
          }
        }
      }
    }
  });
}

namespace {
// 2x2 / stride-2 windows tile the input without overlap, so with the ISA's
// row kernel dx is written once, row pair by row pair (each input gets its
// window's gradient if it is the window's argmax, else 0), instead of
// zero-filled and then scattered into: one pass over dx instead of two.
void max_pool2d_bwd_2x2(const MaxPool2x2BwdRow row_kernel, float* dx, const float* dy, const int32_t* argmax,
                        const float* relu_output, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * s.H * s.W;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 o = (p * s.Ho + oh) * s.Wo;
      const float* PYCNN_RESTRICT g = dy + o;
      const int32_t* PYCNN_RESTRICT a = argmax + o;
      const float* PYCNN_RESTRICT yr = relu_output ? relu_output + o : nullptr;
      float* PYCNN_RESTRICT d0 = dxp + 2 * oh * s.W;
      float* PYCNN_RESTRICT d1 = d0 + s.W;
      row_kernel(d0, d1, g, a, yr, s.Wo, static_cast<int32_t>(2 * oh * s.W), static_cast<int32_t>(s.W));
      for (i64 w = 2 * s.Wo; w < s.W; ++w) d0[w] = d1[w] = 0.0f;  // odd W: a column no window covers
    }
    std::fill(dxp + 2 * s.Ho * s.W, dxp + s.H * s.W, 0.0f);  // odd H: a row no window covers
  });
}
}  // namespace

void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s, int nt) {
  const MaxPool2x2BwdRow row_kernel = max_pool_2x2_kernels().bwd_row;
  if (row_kernel && s.kh == 2 && s.kw == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0)
    return max_pool2d_bwd_2x2(row_kernel, dx, dy, argmax, relu_output, s, nt);
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * s.H * s.W;
    const float* dyp = dy + p * s.Ho * s.Wo;
    const int32_t* ap = argmax + p * s.Ho * s.Wo;
    std::fill(dxp, dxp + s.H * s.W, 0.0f);
    if (relu_output) {
      const float* yp = relu_output + p * s.Ho * s.Wo;
      for (i64 i = 0; i < s.Ho * s.Wo; ++i) {  // a select, not a branch on random signs
        const float g = dyp[i];
        dxp[ap[i]] += yp[i] > 0.0f ? g : 0.0f;
      }
    } else {
      for (i64 i = 0; i < s.Ho * s.Wo; ++i) dxp[ap[i]] += dyp[i];
    }
  });
}

namespace {
// PyTorch's divisor: the window clipped to the padded input (count_include_pad)
// or to the real input.
inline i64 avg_divisor(const Pool2dShape& s, i64 h0, i64 w0, bool count_include_pad) {
  if (count_include_pad) {
    const i64 hp = std::min<i64>(h0 + s.kh, s.H + s.pad_h) - h0;
    const i64 wp = std::min<i64>(w0 + s.kw, s.W + s.pad_w) - w0;
    return hp * wp;
  }
  const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
  const i64 wb = std::max<i64>(w0, 0), we = std::min<i64>(w0 + s.kw, s.W);
  return (he - hb) * (we - wb);
}
}  // namespace

void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad, int nt) {
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * s.H * s.W;
    float* yp = y + p * s.Ho * s.Wo;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 h0 = oh * s.stride_h - s.pad_h;
      const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const i64 w0 = ow * s.stride_w - s.pad_w;
        const i64 wb = std::max<i64>(w0, 0), we = std::min<i64>(w0 + s.kw, s.W);
        float sum = 0.0f;
        for (i64 h = hb; h < he; ++h)
          for (i64 w = wb; w < we; ++w) sum += xp[h * s.W + w];
        yp[oh * s.Wo + ow] = sum / static_cast<float>(avg_divisor(s, h0, w0, count_include_pad));
      }
    }
  });
}

void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad, int nt) {
  const i64 planes = s.N * s.C;
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * s.H * s.W;
    const float* dyp = dy + p * s.Ho * s.Wo;
    std::fill(dxp, dxp + s.H * s.W, 0.0f);
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 h0 = oh * s.stride_h - s.pad_h;
      const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const i64 w0 = ow * s.stride_w - s.pad_w;
        const i64 wb = std::max<i64>(w0, 0), we = std::min<i64>(w0 + s.kw, s.W);
        const float g =
            dyp[oh * s.Wo + ow] / static_cast<float>(avg_divisor(s, h0, w0, count_include_pad));
        for (i64 h = hb; h < he; ++h)
          for (i64 w = wb; w < we; ++w) dxp[h * s.W + w] += g;
      }
    }
  });
}

void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
  if (s.Ho == 1 && s.Wo == 1) {  // global average pooling: the same sums, without the window loops
    const i64 hw = s.H * s.W;
    const float count = static_cast<float>(hw);
    parallel_items(planes, threads_for_work(planes, hw + 1, nt), Schedule::kStatic, [&](i64 p, int) {
      const float* xp = x + p * hw;
      float sum = 0.0f;
      for (i64 i = 0; i < hw; ++i) sum += xp[i];
      y[p] = sum / count;
    });
    return;
  }
  const AdaptiveWindows rows(s.H, s.Ho), cols(s.W, s.Wo);
  const i64* hb = rows.begin.data();
  const i64* he = rows.end.data();
  const i64* wb = cols.begin.data();
  const i64* we = cols.end.data();
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * s.H * s.W;
    float* yp = y + p * s.Ho * s.Wo;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        float sum = 0.0f;
        for (i64 h = hb[oh]; h < he[oh]; ++h)
          for (i64 w = wb[ow]; w < we[ow]; ++w) sum += xp[h * s.W + w];
        yp[oh * s.Wo + ow] = sum / static_cast<float>((he[oh] - hb[oh]) * (we[ow] - wb[ow]));
      }
    }
  });
}

void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
  if (s.Ho == 1 && s.Wo == 1) {  // global average pooling: every input gets dy / (H*W)
    const i64 hw = s.H * s.W;
    const float count = static_cast<float>(hw);
    parallel_items(planes, threads_for_work(planes, hw + 1, nt), Schedule::kStatic, [&](i64 p, int) {
      std::fill(dx + p * hw, dx + (p + 1) * hw, dy[p] / count);
    });
    return;
  }
  const AdaptiveWindows rows(s.H, s.Ho), cols(s.W, s.Wo);
  const i64* hb = rows.begin.data();
  const i64* he = rows.end.data();
  const i64* wb = cols.begin.data();
  const i64* we = cols.end.data();
  parallel_items(planes, threads_for_work(planes, s.H * s.W + s.Ho * s.Wo, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * s.H * s.W;
    const float* dyp = dy + p * s.Ho * s.Wo;
    std::fill(dxp, dxp + s.H * s.W, 0.0f);
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const float g = dyp[oh * s.Wo + ow] / static_cast<float>((he[oh] - hb[oh]) * (we[ow] - wb[ow]));
        for (i64 h = hb[oh]; h < he[oh]; ++h)
          for (i64 w = wb[ow]; w < we[ow]; ++w) dxp[h * s.W + w] += g;
      }
    }
  });
}

}  // namespace pycnn
