// Checked entries of the optimiser updates (kernels in csrc/optim/).
#pragma once
#include "ops/check.h"
#include <vector>

#include "optim/optim.h"

namespace pycnn::ops {

// param, grad and the momentum buffer (when given) of one shape; the buffer
// is required when momentum != 0. Returns the element count.
i64 sgd_numel(const Shape& param, const Shape& grad, const Shape* momentum_buffer, float momentum);
// In place; no two of param, grad, momentum_buffer may share memory.
void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p, bool first_step);

// Multi-tensor SGD: each tensor checked as sgd_step (shapes by the caller
// with sgd_numel); a parameter or buffer sharing memory with another
// tensor's arrays (two Parameters over one array) makes the tensors run one
// after another, in order, as separate sgd_step calls would.
void sgd_step_many(const std::vector<SgdTensor>& tensors, const SgdParams& p);
// Zero-fills every array (arrays[i]: sizes[i] floats).
void zero_many(const std::vector<float*>& arrays, const std::vector<i64>& sizes);

// param, grad, exp_avg, exp_avg_sq and max_exp_avg_sq (amsgrad) of one shape.
i64 adam_numel(const Shape& param, const Shape& grad, const Shape& exp_avg, const Shape& exp_avg_sq,
               const Shape* max_exp_avg_sq);
// In place; no two of the arrays may share memory.
void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p);

}  // namespace pycnn::ops
