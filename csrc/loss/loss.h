// Losses with mean reduction (loss.cpp). Gradients overwrite their output.
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// Mean softmax cross-entropy over N rows of `classes` logits; the softmax
// probabilities (N, classes) are saved in probs for the backward.
double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, i64 N, i64 classes, int nt);
// dlogits = scale * (probs - onehot(labels)) / N
void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, i64 N, i64 classes, float scale,
                       int nt);
// mean((pred - target)^2) over n floats; dpred = scale * 2 * (pred - target) / n
double mse_fwd(const float* pred, const float* target, i64 n);
void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale, int nt);

}  // namespace pycnn
