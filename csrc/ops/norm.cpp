#include "ops/norm.h"

#include <utility>

#include "runtime/parallel.h"

namespace pycnn::ops {

BatchNormShape batch_norm_shape(const Shape& x, const Shape* weight, const Shape* bias, const Shape* running_mean,
                                const Shape* running_var) {
  if (x.size() < 2 || x.size() > 5)
    fail("batch_norm: expected input of shape (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W), got ",
         shape_str(x));
  if ((running_mean == nullptr) != (running_var == nullptr))
    fail("batch_norm: running_mean and running_var must both be given or both be None");
  checked_numel(x, "batch_norm input");
  const i64 C = x[1];
  if (C <= 0) fail("batch_norm: expected at least one channel, got input ", shape_str(x));
  const Shape per_channel{C};
  const std::pair<const Shape*, const char*> params[] = {
      {weight, "weight"}, {bias, "bias"}, {running_mean, "running_mean"}, {running_var, "running_var"}};
  for (const auto& [s, name] : params)
    if (s && *s != per_channel)
      fail("batch_norm: expected ", name, " of shape (", C, ",) for input ", shape_str(x), ", got ", shape_str(*s));
  i64 L = 1;
  for (std::size_t i = 2; i < x.size(); ++i) L = checked_mul(L, x[i], "batch_norm input");
  return BatchNormShape{x[0], C, L};
}

BatchNormShape batch_norm_bwd_shape(const Shape& dy, const Shape& x, const Shape& save_mean, const Shape& save_rstd,
                                    const Shape* weight, const Shape* grad_weight, const Shape* grad_bias) {
  const BatchNormShape s = batch_norm_shape(x, weight, nullptr, nullptr, nullptr);
  check_shape(dy, x, "batch_norm grad_output");
  // Named as the caller knows them (batch_norm_shape would call them running stats).
  check_shape(save_mean, {s.C}, "batch_norm save_mean");
  check_shape(save_rstd, {s.C}, "batch_norm save_rstd");
  if (grad_weight) check_shape(*grad_weight, {s.C}, "batch_norm grad_weight");
  if (grad_bias) check_shape(*grad_bias, {s.C}, "batch_norm grad_bias");
  return s;
}

void batch_norm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                          const float* x, const float* weight, const float* bias, const BatchNormShape& s,
                          double eps, double momentum, bool relu) {
  const Span in = floats(x, s.N * s.C * s.L, "input");
  const Span rm = floats(running_mean, s.C, "running_mean"), rv = floats(running_var, s.C, "running_var");
  check_disjoint(rm, in), check_disjoint(rv, in), check_disjoint(rm, rv);
  if (s.N * s.L <= 1)
    fail("batch_norm: expected more than 1 value per channel when training, got input of ", s.N * s.L,
         " value(s) per channel (N=", s.N, ", C=", s.C, ")");
  pycnn::batch_norm_fwd_train(y, save_mean, save_rstd, running_mean, running_var, x, weight, bias, s, eps, momentum,
                              relu, get_num_threads());
}

void batch_norm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, const BatchNormShape& s, double eps,
                         bool relu) {
  if (s.N * s.L == 0) return;
  pycnn::batch_norm_fwd_eval(y, x, weight, bias, running_mean, running_var, s, eps, relu, get_num_threads());
}

void batch_norm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                    const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& s,
                    bool batch_stats) {
  const i64 n = s.N * s.C * s.L;
  const Span g = floats(dy, n, "grad_output"), in = floats(x, n, "input");
  const Span gw = floats(dweight, s.C, "grad_weight/grad_bias"), gb = floats(dbias, s.C, "grad_weight/grad_bias");
  check_disjoint(gw, g), check_disjoint(gw, in), check_disjoint(gb, g), check_disjoint(gb, in);
  check_disjoint({dweight, s.C * 4, "grad_weight"}, {dbias, s.C * 4, "grad_bias"});
  pycnn::batch_norm_bwd(dx, dweight, dbias, dy, x, save_mean, save_rstd, weight, s, batch_stats, get_num_threads());
}

}  // namespace pycnn::ops
