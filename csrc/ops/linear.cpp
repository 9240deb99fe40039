#include "ops/linear.h"

#include "runtime/parallel.h"

namespace pycnn::ops {

LinearShape linear_shape(const Shape& x, const Shape& w, const Shape* bias) {
  if (w.size() != 2) fail("linear: expected weight of shape (out_features, in_features), got ", shape_str(w));
  if (x.size() != 2) fail("linear: expected input of shape (N, ", w[1], "), got ", shape_str(x));
  if (x[1] != w[1])
    fail("linear: expected input of shape (N, ", w[1], ") for weight ", shape_str(w), ", got ", shape_str(x));
  if (bias && (*bias != Shape{w[0]})) fail("linear: expected bias of shape (", w[0], ",), got ", shape_str(*bias));
  checked_numel(x, "linear input");
  checked_numel(w, "linear weight");
  checked_numel({x[0], w[0]}, "linear output");
  return LinearShape{x[0], w[1], w[0]};
}

LinearShape linear_bwd_data_shape(const Shape& dy, const Shape& w) {
  if (w.size() != 2) fail("linear: expected weight of shape (out_features, in_features), got ", shape_str(w));
  if (dy.size() != 2 || dy[1] != w[0])
    fail("linear: expected grad_output of shape (N, ", w[0], "), got ", shape_str(dy));
  return linear_shape({dy[0], w[1]}, w, nullptr);
}

LinearShape linear_bwd_weight_shape(const Shape& dy, const Shape& x, const Shape& dw, const Shape* db) {
  const LinearShape s = linear_shape(x, dw, db);
  check_shape(dy, {s.N, s.out_features}, "linear grad_output");
  return s;
}

void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu) {
  pycnn::linear_fwd(y, x, w, b, s, relu, get_num_threads());
}

void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s) {
  pycnn::linear_bwd_data(dx, dy, w, s, get_num_threads());
}

void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s) {
  const Span gw = floats(dw, s.out_features * s.in_features, "grad_weight"), gb = floats(db, s.out_features, "grad_bias");
  const Span g = floats(dy, s.N * s.out_features, "grad_output"), in = floats(x, s.N * s.in_features, "input");
  check_disjoint(gw, g), check_disjoint(gw, in);
  check_disjoint(gb, g), check_disjoint(gb, in), check_disjoint(gb, gw);
  pycnn::linear_bwd_weight(dw, db, dy, x, s, get_num_threads());
}

}  // namespace pycnn::ops
