// Max, average and adaptive-average pooling over NCDHW volumes (video clips:
// D is time), forward and backward (pool3d.cpp). Outputs (y, argmax, dx) are
// overwritten. Kernels trust the shape (checked in ops/pool.cpp) and only assert.
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// x (N, C, D, H, W) -> y (N, C, Do, Ho, Wo). Padding is symmetric; the
// output size already has ceil_mode applied (the last windows may then run
// past the padded input: they are clipped). Average pooling has no dilation
// (PyTorch's neither: dd = dh = dw = 1); adaptive pooling leaves k..dil zero.
struct Pool3dShape {
  i64 N, C, D, H, W;
  i64 kd, kh, kw;
  i64 stride_d, stride_h, stride_w;
  i64 pad_d, pad_h, pad_w;
  i64 dil_d, dil_h, dil_w;
  i64 Do, Ho, Wo;
};

// argmax[i] = flat index (d*H + h)*W + w in the (n,c) volume of the maximum:
// the first maximum in window order (d, then h, then w); a NaN wins, the
// last NaN of a window being the one reported (PyTorch's rule). argmax null:
// the values only (inference), bitwise the same y.
void max_pool3d_fwd(float* y, int32_t* argmax, const float* x, const Pool3dShape& s, int nt);
// dx = scatter of dy to the argmax positions; with relu_output (the pooled
// output of a ReLU'd input) non-null only outputs y > 0 pass their gradient.
void max_pool3d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool3dShape& s, int nt);
void avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, bool count_include_pad, int nt);
void avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, bool count_include_pad, int nt);
void adaptive_avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, int nt);
void adaptive_avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, int nt);

}  // namespace pycnn
