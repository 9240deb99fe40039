#include "ops/optim.h"

#include "runtime/parallel.h"

namespace pycnn::ops {

i64 sgd_numel(const Shape& param, const Shape& grad, const Shape* momentum_buffer, float momentum) {
  check_shape(grad, param, "sgd gradient");
  if (momentum != 0.0f && !momentum_buffer) fail("sgd_step: momentum needs a momentum buffer");
  if (momentum_buffer) check_shape(*momentum_buffer, param, "sgd momentum buffer");
  return checked_numel(param, "sgd parameter");
}

void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p, bool first_step) {
  const Span pa = floats(param, n, "param"), g = floats(grad, n, "grad"), b = floats(momentum_buffer, n, "momentum_buffer");
  check_disjoint(pa, g), check_disjoint(b, g), check_disjoint(b, pa);
  pycnn::sgd_step(param, momentum_buffer, grad, n, p, first_step, get_num_threads());
}

i64 adam_numel(const Shape& param, const Shape& grad, const Shape& exp_avg, const Shape& exp_avg_sq,
               const Shape* max_exp_avg_sq) {
  check_shape(grad, param, "adam gradient");
  check_shape(exp_avg, param, "adam exp_avg");
  check_shape(exp_avg_sq, param, "adam exp_avg_sq");
  if (max_exp_avg_sq) check_shape(*max_exp_avg_sq, param, "adam max_exp_avg_sq");
  return checked_numel(param, "adam parameter");
}

void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p) {
  check_all_disjoint({floats(param, n, "param"), floats(grad, n, "grad"), floats(exp_avg, n, "exp_avg"),
                      floats(exp_avg_sq, n, "exp_avg_sq"), floats(max_exp_avg_sq, n, "max_exp_avg_sq")});
  pycnn::adam_step(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, p, get_num_threads());
}

}  // namespace pycnn::ops
