// Max, average and adaptive-average pooling over NCDHW volumes, forward and
// backward, with the 2-D kernels' rules (pool2d.cpp) extended by one axis,
// plus dilation and ceil_mode for max pooling. Every pass is split over the
// N*C independent volumes, so backward scatters need no atomics. All outputs
// (y, argmax, dx) are overwritten.
#include "pool/pool3d.h"

#include <algorithm>
#include <limits>

#include "runtime/parallel.h"
#include "runtime/window.h"

namespace pycnn {
namespace {

// The first real position start + i*dilation (i >= 0) of a window starting
// at `start` (possibly in the padding); ops/pool.cpp checks that every
// window has one, so the result lies in [0, size).
inline i64 first_tap(i64 start, i64 dilation) {
  return start >= 0 ? start : start + (-start + dilation - 1) / dilation * dilation;
}

// The portable loop, vectorised along the output row: for each kernel tap,
// one branch-free pass over the whole row of outputs (a running max and, with
// kIndex, its index, updated with selects). Taps are visited in (d, h, w)
// order, so `>` keeps the first maximum and `v != v` the last NaN.
template <bool kIndex>
void max_pool3d_plane(float* PYCNN_RESTRICT yp, int32_t* PYCNN_RESTRICT ap, const float* xp, const Pool3dShape& s) {
  for (i64 od = 0; od < s.Do; ++od) {
    const i64 d0 = od * s.stride_d - s.pad_d;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 h0 = oh * s.stride_h - s.pad_h;
      float* PYCNN_RESTRICT yr = yp + (od * s.Ho + oh) * s.Wo;
      int32_t* PYCNN_RESTRICT ar = kIndex ? ap + (od * s.Ho + oh) * s.Wo : nullptr;
      std::fill(yr, yr + s.Wo, -std::numeric_limits<float>::infinity());
      if (kIndex) {
        // Where PyTorch starts the index: the window's first real tap (kept if every value is -inf).
        const i64 row = (first_tap(d0, s.dil_d) * s.H + first_tap(h0, s.dil_h)) * s.W;
        for (i64 ow = 0; ow < s.Wo; ++ow)
          ar[ow] = static_cast<int32_t>(row + first_tap(ow * s.stride_w - s.pad_w, s.dil_w));
      }
      for (i64 i = 0; i < s.kd; ++i) {
        const i64 d = d0 + i * s.dil_d;
        if (d < 0) continue;
        if (d >= s.D) break;
        for (i64 j = 0; j < s.kh; ++j) {
          const i64 h = h0 + j * s.dil_h;
          if (h < 0) continue;
          if (h >= s.H) break;
          const i64 row = (d * s.H + h) * s.W;
          const float* xr = xp + row;
          for (i64 l = 0; l < s.kw; ++l) {
            const i64 off = l * s.dil_w - s.pad_w;
            i64 lo, hi;
            valid_cols(off, s.stride_w, s.W, s.Wo, lo, hi);
            for (i64 ow = lo; ow < hi; ++ow) {
              const i64 w = ow * s.stride_w + off;
              const float v = xr[w];
              const bool take = (v > yr[ow]) | (v != v);
              yr[ow] = take ? v : yr[ow];
              if (kIndex) ar[ow] = take ? static_cast<int32_t>(row + w) : ar[ow];
            }
          }
        }
      }
    }
  }
}

// Threads for a pass over `planes` volumes of s (input plus output elements each).
int volume_threads(const Pool3dShape& s, int nt) {
  return threads_for_work(s.N * s.C, s.D * s.H * s.W + s.Do * s.Ho * s.Wo, nt);
}

// Average pooling's window along one axis: the real input [begin, end) and
// PyTorch's divisor count (the window clipped to the padded input with
// count_include_pad, else to the real input).
struct AvgSpan {
  i64 begin, end, count;
};
inline AvgSpan avg_span(i64 o, i64 k, i64 stride, i64 pad, i64 size, bool count_include_pad) {
  const i64 start = o * stride - pad;
  const i64 b = std::max<i64>(start, 0), e = std::min<i64>(start + k, size);
  return {b, e, count_include_pad ? std::min<i64>(start + k, size + pad) - start : e - b};
}

}  // namespace

void max_pool3d_fwd(float* y, int32_t* argmax, const float* x, const Pool3dShape& s, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    if (argmax)
      max_pool3d_plane<true>(y + p * ovol, argmax + p * ovol, x + p * vol, s);
    else
      max_pool3d_plane<false>(y + p * ovol, nullptr, x + p * vol, s);
  });
}

void max_pool3d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool3dShape& s, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * vol;
    const float* dyp = dy + p * ovol;
    const int32_t* ap = argmax + p * ovol;
    std::fill(dxp, dxp + vol, 0.0f);
    if (relu_output) {
      const float* yp = relu_output + p * ovol;
      for (i64 i = 0; i < ovol; ++i) dxp[ap[i]] += yp[i] > 0.0f ? dyp[i] : 0.0f;  // a select, not a branch
    } else {
      for (i64 i = 0; i < ovol; ++i) dxp[ap[i]] += dyp[i];
    }
  });
}

namespace {
// Calls body(o, d, h, w) for every output o of one volume, with the windows
// (real input spans and divisor counts) along each axis.
template <class Body>
void for_each_avg_window(const Pool3dShape& s, bool count_include_pad, Body&& body) {
  for (i64 od = 0; od < s.Do; ++od) {
    const AvgSpan sd = avg_span(od, s.kd, s.stride_d, s.pad_d, s.D, count_include_pad);
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const AvgSpan sh = avg_span(oh, s.kh, s.stride_h, s.pad_h, s.H, count_include_pad);
      for (i64 ow = 0; ow < s.Wo; ++ow)
        body((od * s.Ho + oh) * s.Wo + ow, sd, sh, avg_span(ow, s.kw, s.stride_w, s.pad_w, s.W, count_include_pad));
    }
  }
}
}  // namespace

void avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, bool count_include_pad, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * vol;
    float* yp = y + p * ovol;
    for_each_avg_window(s, count_include_pad, [&](i64 o, const AvgSpan& sd, const AvgSpan& sh, const AvgSpan& sw) {
      float sum = 0.0f;
      for (i64 d = sd.begin; d < sd.end; ++d)
        for (i64 h = sh.begin; h < sh.end; ++h)
          for (i64 w = sw.begin; w < sw.end; ++w) sum += xp[(d * s.H + h) * s.W + w];
      yp[o] = sum / static_cast<float>(sd.count * sh.count * sw.count);
    });
  });
}

void avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, bool count_include_pad, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * vol;
    const float* dyp = dy + p * ovol;
    std::fill(dxp, dxp + vol, 0.0f);
    for_each_avg_window(s, count_include_pad, [&](i64 o, const AvgSpan& sd, const AvgSpan& sh, const AvgSpan& sw) {
      const float g = dyp[o] / static_cast<float>(sd.count * sh.count * sw.count);
      for (i64 d = sd.begin; d < sd.end; ++d)
        for (i64 h = sh.begin; h < sh.end; ++h)
          for (i64 w = sw.begin; w < sw.end; ++w) dxp[(d * s.H + h) * s.W + w] += g;
    });
  });
}

void adaptive_avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  const AdaptiveWindows dw(s.D, s.Do), hw(s.H, s.Ho), ww(s.W, s.Wo);
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    const float* xp = x + p * vol;
    float* yp = y + p * ovol;
    for (i64 od = 0; od < s.Do; ++od)
      for (i64 oh = 0; oh < s.Ho; ++oh)
        for (i64 ow = 0; ow < s.Wo; ++ow) {
          float sum = 0.0f;
          for (i64 d = dw.begin[od]; d < dw.end[od]; ++d)
            for (i64 h = hw.begin[oh]; h < hw.end[oh]; ++h)
              for (i64 w = ww.begin[ow]; w < ww.end[ow]; ++w) sum += xp[(d * s.H + h) * s.W + w];
          const i64 count = (dw.end[od] - dw.begin[od]) * (hw.end[oh] - hw.begin[oh]) * (ww.end[ow] - ww.begin[ow]);
          yp[(od * s.Ho + oh) * s.Wo + ow] = sum / static_cast<float>(count);
        }
  });
}

void adaptive_avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, int nt) {
  const i64 vol = s.D * s.H * s.W, ovol = s.Do * s.Ho * s.Wo;
  const AdaptiveWindows dw(s.D, s.Do), hw(s.H, s.Ho), ww(s.W, s.Wo);
  parallel_items(s.N * s.C, volume_threads(s, nt), Schedule::kStatic, [&](i64 p, int) {
    float* dxp = dx + p * vol;
    const float* dyp = dy + p * ovol;
    std::fill(dxp, dxp + vol, 0.0f);
    for (i64 od = 0; od < s.Do; ++od)
      for (i64 oh = 0; oh < s.Ho; ++oh)
        for (i64 ow = 0; ow < s.Wo; ++ow) {
          const i64 count = (dw.end[od] - dw.begin[od]) * (hw.end[oh] - hw.begin[oh]) * (ww.end[ow] - ww.begin[ow]);
          const float g = dyp[(od * s.Ho + oh) * s.Wo + ow] / static_cast<float>(count);
          for (i64 d = dw.begin[od]; d < dw.end[od]; ++d)
            for (i64 h = hw.begin[oh]; h < hw.end[oh]; ++h)
              for (i64 w = ww.begin[ow]; w < ww.end[ow]; ++w) dxp[(d * s.H + h) * s.W + w] += g;
        }
  });
}

}  // namespace pycnn
