// Checked entries of the pooling family (kernels in csrc/pool/).
#pragma once
#include <cstdint>

#include "ops/check.h"
#include "pool/pool2d.h"

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

}  // namespace pycnn::ops
