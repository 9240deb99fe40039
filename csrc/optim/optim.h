// Optimiser updates applied in place, one fused pass over each parameter
// (optim.cpp), with PyTorch's formulas.
#pragma once
#include "runtime/common.h"

namespace pycnn {

struct SgdParams {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};
// param and momentum_buffer (null when momentum == 0) updated in place. On
// the first step the buffer is initialised to the gradient, as PyTorch does.
void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p, bool first_step,
              int nt);

// One parameter of a multi-tensor SGD step.
struct SgdTensor {
  float* param;
  float* momentum_buffer;  // null when momentum == 0
  const float* grad;
  i64 n;
  bool first_step;
};
// sgd_step on each of `tensors` (disjoint from each other), all in one
// parallel region: threads split the concatenated elements evenly, so a
// step over a network's many small parameters (BatchNorm's vectors) costs
// one fork/join instead of one per parameter. Same per-element arithmetic.
void sgd_step_many(const SgdTensor* tensors, i64 count, const SgdParams& p, int nt);

// Zero-fill each of `count` float arrays (arrays[i] holds sizes[i] floats)
// in one parallel region, the elements split evenly over threads.
void zero_many(float* const* arrays, const i64* sizes, i64 count, int nt);

struct AdamParams {
  float one_minus_beta1, beta2, one_minus_beta2, eps;  // 1 - beta computed in double by the caller
  float l2;             // Adam's weight_decay (added to the gradient); 0 for AdamW
  float decay;          // AdamW's 1 - lr * weight_decay; 1 for Adam
  float neg_step_size;  // -lr / (1 - beta1^step)
  float bc2_sqrt;       // sqrt(1 - beta2^step)
};
// param and the moment buffers (max_exp_avg_sq: amsgrad only, else null) updated in place.
void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p, int nt);

}  // namespace pycnn
