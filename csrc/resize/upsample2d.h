// Resizing NCHW planes: PyTorch's F.interpolate on 4-D input with mode 'nearest', 'nearest-exact' or
// 'bilinear' (align_corners false or true), forward and backward (upsample2d.cpp).
//   fwd: y  (N, C, Ho, Wo) overwritten
//   bwd: dx (N, C, H, W)   overwritten: each output's gradient added to the inputs it read, with their weights
// Source coordinates follow PyTorch's formulas in float32 arithmetic, so the indices and the weights are
// PyTorch's. Threads split the N*C planes and a plane's scatter runs on one thread in a fixed order, so
// results are bitwise the same for every thread count. Kernels trust the shape (ops/resize.cpp).
#pragma once
#include "runtime/common.h"

namespace pycnn {

enum class UpsampleMode { Nearest, NearestExact, Bilinear };

struct Upsample2dShape {
  i64 N, C, H, W;
  i64 Ho, Wo;
  // PyTorch's `scales`: the scale factor the caller gave for the axis, or 0 when the output size was
  // given. The coordinate map uses 1/scale when there is one and in/out otherwise; the two differ when
  // in * scale is not an integer (5 * 1.5 -> 7 outputs, mapped with 1/1.5, not 5/7).
  double scale_h, scale_w;
  UpsampleMode mode;
  bool align_corners;  // bilinear only: the centres of the corner pixels of input and output coincide
};

void upsample2d_fwd(float* y, const float* x, const Upsample2dShape& s, int num_threads);
void upsample2d_bwd(float* dx, const float* dy, const Upsample2dShape& s, int num_threads);

}  // namespace pycnn
