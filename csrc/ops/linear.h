// Checked entries of the fully connected layer (kernels in csrc/linear/).
#pragma once
#include "linear/linear.h"
#include "ops/check.h"

namespace pycnn::ops {

// x (N, in), w (out, in), optional bias (out,).
LinearShape linear_shape(const Shape& x, const Shape& w, const Shape* bias);
// bwd_data: dy (N, out) with w (out, in).
LinearShape linear_bwd_data_shape(const Shape& dy, const Shape& w);
// bwd_weight: dy (N, out), x (N, in), dw (out, in), optional db (out,).
LinearShape linear_bwd_weight_shape(const Shape& dy, const Shape& x, const Shape& dw, const Shape* db);
// relu: y = max(x w^T + b, 0), fused into the GEMM's output write.
void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu);
void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s);
// dw, db accumulated; neither may share memory with dy, x or each other.
void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s);

}  // namespace pycnn::ops
