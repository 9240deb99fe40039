// Checked entries of batch normalisation (kernels in csrc/norm/).
#pragma once
#include "norm/batch_norm.h"
#include "ops/check.h"

namespace pycnn::ops {

// x (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); weight, bias, running_mean,
// running_var each (C,) when given (running stats: both or neither).
BatchNormShape batch_norm_shape(const Shape& x, const Shape* weight, const Shape* bias, const Shape* running_mean,
                                const Shape* running_var);
// Backward: dy of x's shape, save_mean/save_rstd (C,), the gradients (C,) when given.
BatchNormShape batch_norm_bwd_shape(const Shape& dy, const Shape& x, const Shape& save_mean, const Shape& save_rstd,
                                    const Shape* weight, const Shape* grad_weight, const Shape* grad_bias);
// Batch statistics; throws like PyTorch when a channel has a single value.
// running_mean/running_var (null: not tracked) updated in place with `momentum`.
void batch_norm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                          const float* x, const float* weight, const float* bias, const BatchNormShape& s,
                          double eps, double momentum, bool relu);
void batch_norm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, const BatchNormShape& s, double eps,
                         bool relu);
// dx (null: skipped) overwritten; dweight, dbias (null: skipped) accumulated.
// batch_stats false: after an eval forward (fixed statistics; see norm/batch_norm.h).
void batch_norm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                    const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& s,
                    bool batch_stats);

}  // namespace pycnn::ops
