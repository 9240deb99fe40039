// Checked entries of the losses (kernels in csrc/loss/).
#pragma once
#include <cstdint>

#include "loss/loss.h"
#include "ops/check.h"

namespace pycnn::ops {

// logits (N, classes), labels int64 (N,); returns N. Labels are checked to be
// in [0, classes) by the run functions (they are data, not shapes).
struct CrossEntropyShape {
  i64 N, classes;
};
CrossEntropyShape cross_entropy_shape(const Shape& logits, const Shape& labels);
// Mean over the batch (NaN for an empty batch, as PyTorch); saves softmax in `probs`.
double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, const CrossEntropyShape& s);
// dlogits = scale * (probs - onehot(labels)) / N
void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, const CrossEntropyShape& s,
                       float scale);

// pred and target of one shape; returns the element count.
i64 mse_numel(const Shape& pred, const Shape& target);
double mse_fwd(const float* pred, const float* target, i64 n);  // NaN for n == 0
// dpred = scale * 2 * (pred - target) / n
void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale);

}  // namespace pycnn::ops
