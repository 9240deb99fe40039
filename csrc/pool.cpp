// Max, average and adaptive-average pooling over NCHW planes, forward and
// backward. Every pass is split over the N*C independent planes, so backward
// scatters need no atomics. All outputs (y, dx) are overwritten.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels.h"
#include "parallel.h"

namespace pycnn {

void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
    const float* xp = x + p * s.H * s.W;
    float* yp = y + p * s.Ho * s.Wo;
    int32_t* ap = argmax + p * s.Ho * s.Wo;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 h0 = oh * s.stride_h - s.pad_h;
      const i64 hb = std::max<i64>(h0, 0), he = std::min<i64>(h0 + s.kh, s.H);
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const i64 w0 = ow * s.stride_w - s.pad_w;
        const i64 wb = std::max<i64>(w0, 0), we = std::min<i64>(w0 + s.kw, s.W);
        // padding <= kernel/2 (checked) guarantees at least one real tap
        i64 best_i = hb * s.W + wb;
        float best = -std::numeric_limits<float>::infinity();
        for (i64 h = hb; h < he; ++h)
          for (i64 w = wb; w < we; ++w) {
            const float v = xp[h * s.W + w];
            if (v > best || std::isnan(v)) {  // NaN propagates, as in PyTorch
              best = v;
              best_i = h * s.W + w;
              if (std::isnan(v)) goto done;
            }
          }
      done:
        yp[oh * s.Wo + ow] = xp[best_i];
        ap[oh * s.Wo + ow] = static_cast<int32_t>(best_i);
      }
    }
  }
}

void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
    float* dxp = dx + p * s.H * s.W;
    const float* dyp = dy + p * s.Ho * s.Wo;
    const int32_t* ap = argmax + p * s.Ho * s.Wo;
    std::fill(dxp, dxp + s.H * s.W, 0.0f);
    for (i64 i = 0; i < s.Ho * s.Wo; ++i) dxp[ap[i]] += dyp[i];
  }
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
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
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
  }
}

void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad, int nt) {
  const i64 planes = s.N * s.C;
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
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
  }
}

namespace {
// PyTorch's adaptive windows: [floor(i*in/out), ceil((i+1)*in/out)).
inline i64 adaptive_begin(i64 i, i64 in, i64 out) { return (i * in) / out; }
inline i64 adaptive_end(i64 i, i64 in, i64 out) { return ((i + 1) * in + out - 1) / out; }
}  // namespace

void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
    const float* xp = x + p * s.H * s.W;
    float* yp = y + p * s.Ho * s.Wo;
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 hb = adaptive_begin(oh, s.H, s.Ho), he = adaptive_end(oh, s.H, s.Ho);
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const i64 wb = adaptive_begin(ow, s.W, s.Wo), we = adaptive_end(ow, s.W, s.Wo);
        float sum = 0.0f;
        for (i64 h = hb; h < he; ++h)
          for (i64 w = wb; w < we; ++w) sum += xp[h * s.W + w];
        yp[oh * s.Wo + ow] = sum / static_cast<float>((he - hb) * (we - wb));
      }
    }
  }
}

void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, int nt) {
  const i64 planes = s.N * s.C;
#pragma omp parallel for num_threads(threads_for(planes, nt)) schedule(static)
  for (i64 p = 0; p < planes; ++p) {
    float* dxp = dx + p * s.H * s.W;
    const float* dyp = dy + p * s.Ho * s.Wo;
    std::fill(dxp, dxp + s.H * s.W, 0.0f);
    for (i64 oh = 0; oh < s.Ho; ++oh) {
      const i64 hb = adaptive_begin(oh, s.H, s.Ho), he = adaptive_end(oh, s.H, s.Ho);
      for (i64 ow = 0; ow < s.Wo; ++ow) {
        const i64 wb = adaptive_begin(ow, s.W, s.Wo), we = adaptive_end(ow, s.W, s.Wo);
        const float g = dyp[oh * s.Wo + ow] / static_cast<float>((he - hb) * (we - wb));
        for (i64 h = hb; h < he; ++h)
          for (i64 w = wb; w < we; ++w) dxp[h * s.W + w] += g;
      }
    }
  }
}

}  // namespace pycnn
