// Nearest and bilinear resizing of NCHW planes, forward and backward (see upsample2d.h). Layout: one
// (n, c) plane per work item; per axis, a table of source indices (and weights) computed once per call.
#include "resize/upsample2d.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/parallel.h"

namespace pycnn {
namespace {

// PyTorch's compute_scales_value: 1/scale when a scale factor was given, else in/out; in float.
float coordinate_scale(i64 in, i64 out, double scale) {
  return scale > 0 ? static_cast<float>(1.0 / scale) : static_cast<float>(in) / static_cast<float>(out);
}

// floor(f) as an index, at most in - 1 (f >= 0). Compared in float first, so a huge f (a tiny scale
// factor from a caller) never converts out of int64's range: any float below float(in - 1) is <= in - 1.
i64 clamped_floor(float f, i64 in) {
  const float v = std::floor(f);
  return v < static_cast<float>(in - 1) ? static_cast<i64>(v) : in - 1;
}

// The input index each output index reads, along one axis. 'nearest' is PyTorch's nearest_idx:
// floor(o * scale), taking out == in and out == 2 in exactly (as it does, also when a scale factor
// close to 1 or 2 gave those sizes); 'nearest-exact' is floor((o + 0.5) * scale), the pixel centres.
std::vector<i64> nearest_sources(i64 in, i64 out, double scale, bool exact) {
  std::vector<i64> src(static_cast<std::size_t>(out));
  const float sc = coordinate_scale(in, out, scale);
  for (i64 o = 0; o < out; ++o) {
    i64 i;
    if (exact)
      i = clamped_floor(static_cast<float>((static_cast<double>(o) + 0.5) * sc), in);
    else if (out == in)
      i = o;
    else if (out == 2 * in)
      i = o >> 1;
    else
      i = clamped_floor(static_cast<float>(o) * sc, in);
    src[static_cast<std::size_t>(o)] = i;
  }
  return src;
}

// Bilinear taps along one axis: output o reads inputs i0[o] and i1[o] with weights l0[o] and l1[o]
// (PyTorch's compute_source_index_and_lambda; out == in copies).
struct LinearTaps {
  std::vector<i64> i0, i1;
  std::vector<float> l0, l1;
};

LinearTaps linear_taps(i64 in, i64 out, double scale, bool align_corners) {
  const auto n = static_cast<std::size_t>(out);
  LinearTaps t{std::vector<i64>(n), std::vector<i64>(n), std::vector<float>(n), std::vector<float>(n)};
  float ratio;  // area_pixel_compute_scale
  if (align_corners)
    ratio = out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
  else
    ratio = coordinate_scale(in, out, scale);
  for (i64 o = 0; o < out; ++o) {
    const auto k = static_cast<std::size_t>(o);
    if (out == in) {
      t.i0[k] = t.i1[k] = o, t.l0[k] = 1.0f, t.l1[k] = 0.0f;
      continue;
    }
    const float of = static_cast<float>(o);
    // align_corners: o * ratio; else the pixel centre (o + 0.5) * ratio - 0.5, clamped at 0.
    const float real = align_corners ? ratio * of : std::max(ratio * (of + 0.5f) - 0.5f, 0.0f);
    const i64 i = clamped_floor(real, in);
    const float lambda = std::min(std::max(real - static_cast<float>(i), 0.0f), 1.0f);
    t.i0[k] = i, t.i1[k] = i + (i < in - 1 ? 1 : 0);
    t.l1[k] = lambda, t.l0[k] = 1.0f - lambda;
  }
  return t;
}

struct ResizeScratch;

// Two rows of `width` floats, by input row index: the bilinear passes keep the (at most two) input
// rows the current output row reads, interpolated along W.
class TwoRows {
 public:
  TwoRows(float* scratch, i64 width) : buf_{scratch, scratch + width} {}
  // Row h's slot. If h is absent, a slot is taken (never the one holding row `keep`, the other tap of
  // the same output row) after take(h, previous row there or -1, slot) has run. Vertical taps only move
  // down as the output row does, so when h is absent both rows held lie above every row still to
  // be read: what a slot held is never needed again.
  template <class Take>
  float* get(i64 h, i64 keep, Take&& take) {
    for (int i = 0; i < 2; ++i)
      if (row_[i] == h) return buf_[i];
    const int slot = row_[0] < 0 ? 0 : row_[1] < 0 ? 1 : row_[0] == keep ? 1 : 0;
    take(h, row_[slot], buf_[slot]);
    row_[slot] = h;
    return buf_[slot];
  }
  // f(row, slot) for each row held.
  template <class F>
  void for_each(F&& f) {
    for (int i = 0; i < 2; ++i)
      if (row_[i] >= 0) f(row_[i], buf_[i]);
  }

 private:
  float* buf_[2];
  i64 row_[2] = {-1, -1};
};

template <class Body>
void for_each_plane(const Upsample2dShape& s, int num_threads, Body&& body) {
  const i64 planes = s.N * s.C, cost = s.Ho * s.Wo + s.H * s.W;
  parallel_items(planes, threads_for_work(planes, cost, num_threads), Schedule::kStatic,
                 [&](i64 p, int) { body(p); });
}

}  // namespace

void upsample2d_fwd(float* y, const float* x, const Upsample2dShape& s, int num_threads) {
  const i64 in_plane = s.H * s.W, out_plane = s.Ho * s.Wo;
  if (s.mode == UpsampleMode::Bilinear) {
    const LinearTaps th = linear_taps(s.H, s.Ho, s.scale_h, s.align_corners);
    const LinearTaps tw = linear_taps(s.W, s.Wo, s.scale_w, s.align_corners);
    for_each_plane(s, num_threads, [&](i64 p) {
      // Separable: each input row a vertical tap reads is interpolated along W once (rows that
      // serve consecutive output rows are kept), then output rows blend two of them. The same
      // expression as PyTorch's, (r0[w0] b0 + r0[w1] b1) a0 + (r1[w0] b0 + r1[w1] b1) a1, with the
      // gathers done once per input row instead of once per output row, and a contiguous blend.
      TwoRows rows(thread_scratch<ResizeScratch>(2 * s.Wo), s.Wo);
      const float* xp = x + p * in_plane;
      float* yp = y + p * out_plane;
      const auto along_w = [&](i64 h, i64, float* out) {
        const float* src = xp + h * s.W;
        for (i64 ow = 0; ow < s.Wo; ++ow) out[ow] = src[tw.i0[ow]] * tw.l0[ow] + src[tw.i1[ow]] * tw.l1[ow];
      };
      for (i64 oh = 0; oh < s.Ho; ++oh) {
        const float* t0 = rows.get(th.i0[oh], -1, along_w);
        const float* t1 = rows.get(th.i1[oh], th.i0[oh], along_w);
        const float a0 = th.l0[oh], a1 = th.l1[oh];
        float* PYCNN_RESTRICT row = yp + oh * s.Wo;
        for (i64 ow = 0; ow < s.Wo; ++ow) row[ow] = t0[ow] * a0 + t1[ow] * a1;
      }
    });
    return;
  }
  const bool exact = s.mode == UpsampleMode::NearestExact;
  const std::vector<i64> sh = nearest_sources(s.H, s.Ho, s.scale_h, exact);
  const std::vector<i64> sw = nearest_sources(s.W, s.Wo, s.scale_w, exact);
  for_each_plane(s, num_threads, [&](i64 p) {
    const float* xp = x + p * in_plane;
    float* yp = y + p * out_plane;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      float* row = yp + oh * s.Wo;
      if (oh > 0 && sh[oh] == sh[oh - 1]) {  // upsampling repeats rows: copy the one just written
        std::memcpy(row, row - s.Wo, static_cast<std::size_t>(s.Wo) * sizeof(float));
        continue;
      }
      const float* src = xp + sh[oh] * s.W;
      for (i64 ow = 0; ow < s.Wo; ++ow) row[ow] = src[sw[ow]];
    }
  });
}

void upsample2d_bwd(float* dx, const float* dy, const Upsample2dShape& s, int num_threads) {
  const i64 in_plane = s.H * s.W, out_plane = s.Ho * s.Wo;
  if (s.mode == UpsampleMode::Bilinear) {
    const LinearTaps th = linear_taps(s.H, s.Ho, s.scale_h, s.align_corners);
    const LinearTaps tw = linear_taps(s.W, s.Wo, s.scale_w, s.align_corners);
    for_each_plane(s, num_threads, [&](i64 p) {
      // The forward's adjoint, separable the same way: output rows are blended into per-input-row
      // sums along W (contiguous), and a row's sum is scattered to its input row (two taps per
      // column) once no later output row reads that input row.
      float* dxp = dx + p * in_plane;
      const float* dyp = dy + p * out_plane;
      std::fill(dxp, dxp + in_plane, 0.0f);
      const auto scatter = [&](i64 h, const float* t) {
        float* dst = dxp + h * s.W;
        for (i64 ow = 0; ow < s.Wo; ++ow) {
          dst[tw.i0[ow]] += tw.l0[ow] * t[ow];
          dst[tw.i1[ow]] += tw.l1[ow] * t[ow];
        }
      };
      // A slot taken for a new row first scatters the sums of the row it held, then starts at zero.
      const auto flush_and_zero = [&](i64, i64 previous, float* t) {
        if (previous >= 0) scatter(previous, t);
        std::fill(t, t + s.Wo, 0.0f);
      };
      TwoRows sums(thread_scratch<ResizeScratch>(2 * s.Wo), s.Wo);
      for (i64 oh = 0; oh < s.Ho; ++oh) {
        float* t0 = sums.get(th.i0[oh], -1, flush_and_zero);
        float* t1 = sums.get(th.i1[oh], th.i0[oh], flush_and_zero);
        const float a0 = th.l0[oh], a1 = th.l1[oh];
        const float* g = dyp + oh * s.Wo;
        if (t0 == t1) {  // both taps on one row (the last row, or out == in along H)
          for (i64 ow = 0; ow < s.Wo; ++ow) t0[ow] += (a0 + a1) * g[ow];
        } else {
          for (i64 ow = 0; ow < s.Wo; ++ow) t0[ow] += a0 * g[ow], t1[ow] += a1 * g[ow];
        }
      }
      sums.for_each(scatter);
    });
    return;
  }
  const bool exact = s.mode == UpsampleMode::NearestExact;
  const std::vector<i64> sh = nearest_sources(s.H, s.Ho, s.scale_h, exact);
  const std::vector<i64> sw = nearest_sources(s.W, s.Wo, s.scale_w, exact);
  for_each_plane(s, num_threads, [&](i64 p) {
    float* dxp = dx + p * in_plane;
    const float* dyp = dy + p * out_plane;
    std::fill(dxp, dxp + in_plane, 0.0f);
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      float* dst = dxp + sh[oh] * s.W;
      const float* g = dyp + oh * s.Wo;
      for (i64 ow = 0; ow < s.Wo; ++ow) dst[sw[ow]] += g[ow];
    }
  });
}

}  // namespace pycnn
