// Checked entries of the activation family (kernels in csrc/activation/).
#pragma once
#include <string>

#include "activation/activation.h"
#include "ops/check.h"

namespace pycnn::ops {

// The table entry of an elementwise activation; unknown names are refused
// with the list of known ones.
const Activation& activation(const std::string& name);
// Elementwise shapes: x of any shape; the backward's dy and saved array
// agree. Returns the element count.
i64 activation_numel(const Shape& x, const std::string& name);
i64 activation_bwd_numel(const Shape& dy, const Shape& saved, const std::string& name);
// y = f(x) (may alias x); dx = dy * f'(.) from `saved` (x or y, as the entry says).
void activation_fwd(const Activation& a, float* y, const float* x, i64 n, float param);
void activation_bwd(const Activation& a, float* dx, const float* dy, const float* saved, i64 n, float param);

// a and b of one shape; returns the element count.
i64 add_numel(const Shape& a, const Shape& b);
// out = relu?(a + b); out is a, b, or disjoint from both.
void add_fwd(float* out, const float* a, const float* b, i64 n, bool relu);

// x of any shape, softmax along `axis` (negative counts from the end).
struct SoftmaxShape {
  i64 outer, D, inner;
};
SoftmaxShape softmax_shape(const Shape& x, i64 axis);
SoftmaxShape softmax_bwd_shape(const Shape& dy, const Shape& y, i64 axis);
void softmax_fwd(float* y, const float* x, const SoftmaxShape& s);
void softmax_bwd(float* dx, const float* dy, const float* y, const SoftmaxShape& s);

}  // namespace pycnn::ops
