#include "ops/activation.h"

#include "runtime/parallel.h"

namespace pycnn::ops {

const Activation& activation(const std::string& name) {
  const Activation* a = find_activation(name);
  if (!a) fail("unknown activation '", name, "': expected one of ", activation_names());
  return *a;
}

i64 activation_numel(const Shape& x, const std::string& name) { return checked_numel(x, name.c_str()); }

i64 activation_bwd_numel(const Shape& dy, const Shape& saved, const std::string& name) {
  check_shape(dy, saved, (name + " grad_output").c_str());
  return checked_numel(saved, name.c_str());
}

void activation_fwd(const Activation& a, float* y, const float* x, i64 n, float param) {
  a.fwd(y, x, n, param, get_num_threads());
}

void activation_bwd(const Activation& a, float* dx, const float* dy, const float* saved, i64 n, float param) {
  a.bwd(dx, dy, saved, n, param, get_num_threads());
}

i64 add_numel(const Shape& a, const Shape& b) {
  check_shape(b, a, "add operand b");
  return checked_numel(a, "add operand");
}

void add_fwd(float* out, const float* a, const float* b, i64 n, bool relu) {
  // Elementwise, so writing into an operand is fine; a partial overlap is not.
  if (out != a) check_disjoint(floats(out, n, "out"), floats(a, n, "a"));
  if (out != b) check_disjoint(floats(out, n, "out"), floats(b, n, "b"));
  pycnn::add_fwd(out, a, b, n, relu, get_num_threads());
}

SoftmaxShape softmax_shape(const Shape& x, i64 axis) {
  const i64 nd = static_cast<i64>(x.size());
  if (nd == 0) fail("softmax: expected an input with at least one dimension, got a 0-d array");
  if (axis < -nd || axis >= nd) fail("softmax: axis ", axis, " is out of range for an input of shape ", shape_str(x));
  if (axis < 0) axis += nd;
  checked_numel(x, "softmax input");
  SoftmaxShape s{1, x[axis], 1};
  for (i64 i = 0; i < axis; ++i) s.outer *= x[i];
  for (i64 i = axis + 1; i < nd; ++i) s.inner *= x[i];
  return s;
}

SoftmaxShape softmax_bwd_shape(const Shape& dy, const Shape& y, i64 axis) {
  const SoftmaxShape s = softmax_shape(y, axis);
  check_shape(dy, y, "softmax grad_output");
  return s;
}

void softmax_fwd(float* y, const float* x, const SoftmaxShape& s) {
  if (s.outer * s.D * s.inner == 0) return;
  pycnn::softmax_fwd(y, x, s.outer, s.D, s.inner, get_num_threads());
}

void softmax_bwd(float* dx, const float* dy, const float* y, const SoftmaxShape& s) {
  if (s.outer * s.D * s.inner == 0) return;
  pycnn::softmax_bwd(dx, dy, y, s.outer, s.D, s.inner, get_num_threads());
}

}  // namespace pycnn::ops
