// Batch normalisation over x viewed as (N, C, L) (batch_norm.cpp).
#pragma once
#include "runtime/common.h"

namespace pycnn {

// x (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W) seen as (N, C, L) with L = 1, L, H*W or D*H*W.
struct BatchNormShape {
  i64 N, C, L;
};

// weight/bias (C,) or null (no affine). Training forward overwrites y,
// save_mean, save_rstd and, when non-null, updates running_mean/running_var
// in place (unbiased variance, PyTorch's momentum).
// relu: y = max(bn(x), 0) written in the same pass (NaN propagates).
void batch_norm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                          const float* x, const float* weight, const float* bias, const BatchNormShape& s,
                          double eps, double momentum, bool relu, int nt);
void batch_norm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, const BatchNormShape& s, double eps,
                         bool relu, int nt);
// dx (null: skipped) overwritten; dweight, dbias (null: skipped) accumulated.
// batch_stats: the forward normalised with the batch's own statistics
// (training), so dx has their terms; false: with fixed statistics (eval mode,
// save_mean/save_rstd the running mean and 1/sqrt(running_var + eps)), an
// affine map whose dx is dy * weight * rstd.
void batch_norm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                    const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& s,
                    bool batch_stats, int nt);

}  // namespace pycnn
