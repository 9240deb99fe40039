// Checked entries of the resize family (kernels in csrc/resize/).
#pragma once
#include <string>

#include "ops/check.h"
#include "resize/upsample2d.h"

namespace pycnn::ops {

UpsampleMode parse_upsample_mode(const std::string& name);  // "nearest" | "nearest-exact" | "bilinear"

// x (N, C, H, W) resized to (out_h, out_w). scale_h, scale_w: the caller's scale factors, finite and
// positive, or 0 when the output size was given (Upsample2dShape says what they change).
// align_corners only with bilinear.
Upsample2dShape upsample2d_shape(const Shape& x, i64 out_h, i64 out_w, double scale_h, double scale_w,
                                 UpsampleMode mode, bool align_corners);
// The same, and dy checked to be (N, C, out_h, out_w).
Upsample2dShape upsample2d_bwd_shape(const Shape& dy, const Shape& x, i64 out_h, i64 out_w, double scale_h,
                                     double scale_w, UpsampleMode mode, bool align_corners);

// y (N, C, Ho, Wo) overwritten.
void upsample2d_fwd(float* y, const float* x, const Upsample2dShape& s);
// dx (N, C, H, W) overwritten; must not share memory with dy.
void upsample2d_bwd(float* dx, const float* dy, const Upsample2dShape& s);

}  // namespace pycnn::ops
