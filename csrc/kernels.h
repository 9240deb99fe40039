// Declarations of the non-convolution kernels (pool.cpp, activation.cpp,
// loss.cpp, optim.cpp). Raw pointers and int64 sizes; shapes are trusted.
#pragma once
#include <cstdint>

#include "shapes.h"

namespace pycnn {

// pool.cpp -------------------------------------------------------------------
// y overwritten; argmax[i] = flat index h*W+w in the (n,c) plane of the maximum
// (first maximum in row-major window order; NaN wins, as in PyTorch).
void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s, int nt);
// dx overwritten (zeroed, then dy scattered to the argmax positions). With
// relu_output (the pooled output of a ReLU'd input) non-null, only outputs
// y > 0 pass their gradient: the ReLU's backward fused into this pass.
void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s, int nt);
void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad, int nt);
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad, int nt);
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, int nt);
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, int nt);

// activation.cpp -------------------------------------------------------------
// Elementwise over n floats; output may alias the input.
void relu_fwd(float* y, const float* x, i64 n, int nt);
void relu_bwd(float* dx, const float* dy, const float* y, i64 n, int nt);  // y = relu(x)
void leaky_relu_fwd(float* y, const float* x, i64 n, float slope, int nt);
void leaky_relu_bwd(float* dx, const float* dy, const float* x, i64 n, float slope, int nt);
void sigmoid_fwd(float* y, const float* x, i64 n, int nt);
void sigmoid_bwd(float* dx, const float* dy, const float* y, i64 n, int nt);  // y = sigmoid(x)
void tanh_fwd(float* y, const float* x, i64 n, int nt);
void tanh_bwd(float* dx, const float* dy, const float* y, i64 n, int nt);  // y = tanh(x)

// loss.cpp -------------------------------------------------------------------
// Mean softmax cross-entropy over N rows of `classes` logits; probs (N, classes) saved.
double softmax_cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, i64 N,
                                 i64 classes, int nt);
void softmax_cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, i64 N,
                               i64 classes, float scale, int nt);
double mse_fwd(const float* pred, const float* target, i64 n);
void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale, int nt);

// optim.cpp ------------------------------------------------------------------
void sgd_update(float* param, float* momentum_buffer, const float* grad, i64 n, float lr,
                float momentum, float dampening, float weight_decay, bool nesterov, bool first_step,
                int nt);

}  // namespace pycnn
