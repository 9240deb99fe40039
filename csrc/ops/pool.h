// Checked entries of the pooling family (kernels in csrc/pool/).
#pragma once
#include <array>
#include <cstdint>

#include "ops/check.h"
#include "pool/pool2d.h"
#include "pool/pool3d.h"

namespace pycnn::ops {

// x (N, C, H, W) with a (kh, kw) window; `op` names the op in messages.
Pool2dShape pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w,
                         const char* op);
// The same, and dy (N, C, Ho, Wo) checked against it.
Pool2dShape pool2d_bwd_shape(const Shape& dy, const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h,
                             i64 pad_w, const char* op);
// Average pooling: pool2d_shape, and the window's kh * kw (its largest
// divisor) must fit in int64 (OverflowError otherwise).
Pool2dShape avg_pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w);
Pool2dShape avg_pool2d_bwd_shape(const Shape& dy, const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w,
                                 i64 pad_h, i64 pad_w);
// Max pooling's backward: dy, the saved argmax and (when given) the pooled
// ReLU output all (N, C, Ho, Wo).
Pool2dShape max_pool2d_bwd_shape(const Shape& dy, const Shape& argmax, const Shape* relu_output, const Shape& x,
                                 i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w);
// Adaptive average pooling to (out_h, out_w): kh/kw/stride/pad unused (zero).
Pool2dShape adaptive_pool2d_shape(const Shape& x, i64 out_h, i64 out_w);
// Its backward: the output size is dy's (N, C, Ho, Wo).
Pool2dShape adaptive_pool2d_bwd_shape(const Shape& dy, const Shape& x);

// argmax holds, per output element, the flat index h*W + w of the chosen input
// element within its (n, c) plane (int32: pool2d_shape checks H*W fits).
// argmax null: values only (the inference forward; the same y).
void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s);
// argmax (N, C, Ho, Wo) comes from Python and may have been altered: every
// index is checked to lie in its plane before the scatter. relu_output: when
// the pooled input was a ReLU's output, pass the pooled output y to apply the
// ReLU's gradient mask (y > 0) in the same pass; null otherwise.
void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s);
void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad);
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad);
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s);
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s);

// 3-D pooling of x (N, C, D, H, W): one value per axis (d, h, w). Output
// sizes follow PyTorch's floor or ceil_mode rule (a ceil window must start
// inside the input or its left padding); every window must reach a real
// element (dilation can make one cover only padding: ValueError).
using Triple = std::array<i64, 3>;
struct Window3d {
  Triple kernel, stride, padding, dilation;
  bool ceil_mode;
};
Pool3dShape pool3d_shape(const Shape& x, const Window3d& w, const char* op);
// Average pooling (dilation must be 1): the window's kd*kh*kw (its largest
// divisor) must fit in int64 (OverflowError otherwise).
Pool3dShape avg_pool3d_shape(const Shape& x, const Window3d& w);
// Backward: dy (and the saved argmax, the pooled ReLU output) (N, C, Do, Ho, Wo).
Pool3dShape avg_pool3d_bwd_shape(const Shape& dy, const Shape& x, const Window3d& w);
Pool3dShape max_pool3d_bwd_shape(const Shape& dy, const Shape& argmax, const Shape* relu_output, const Shape& x,
                                 const Window3d& w);
Pool3dShape adaptive_pool3d_shape(const Shape& x, const Triple& out);
Pool3dShape adaptive_pool3d_bwd_shape(const Shape& dy, const Shape& x);

// argmax: the flat index (d*H + h)*W + w within the (n, c) volume (int32:
// pool3d_shape checks D*H*W fits); null for the values only. The backward
// checks every index lies in its volume before the scatter.
void max_pool3d_fwd(float* y, int32_t* argmax, const float* x, const Pool3dShape& s);
void max_pool3d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool3dShape& s);
void avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, bool count_include_pad);
void avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, bool count_include_pad);
void adaptive_avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s);
void adaptive_avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s);

}  // namespace pycnn::ops
