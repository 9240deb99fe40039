// Max, average and adaptive-average pooling over NCHW planes, forward and
// backward (pool2d.cpp). Outputs (y, argmax, dx) are overwritten. Kernels
// trust the shape (checked in ops/pool.cpp) and only assert.
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// x (N, C, H, W) -> y (N, C, Ho, Wo). Padding is symmetric (PyTorch's
// pooling has no 'same'); adaptive pooling leaves kh..pad_w zero.
struct Pool2dShape {
  i64 N, C, H, W;
  i64 kh, kw;
  i64 stride_h, stride_w;
  i64 pad_h, pad_w;
  i64 Ho, Wo;
};

// argmax[i] = flat index h*W+w in the (n,c) plane of the maximum (first
// maximum in row-major window order; NaN wins, as in PyTorch). argmax null:
// the values only (inference), bitwise the same y.
void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s, int nt);
// dx = scatter of dy to the argmax positions. With relu_output (the pooled
// output of a ReLU'd input) non-null, only outputs y > 0 pass their
// gradient: the ReLU's backward fused into this pass.
void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s, int nt);
void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad, int nt);
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad, int nt);
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, int nt);
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, int nt);

}  // namespace pycnn
