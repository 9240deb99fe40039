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

// ============================================================================
// Breadth ops: batch normalisation, ELU/GELU, dropout, Adam.
namespace pycnn {

// batchnorm.cpp --------------------------------------------------------------
// x viewed as (N, C, L); weight/bias (C,) or null (no affine). Training
// forward overwrites y, save_mean, save_rstd and, when non-null, updates
// running_mean/running_var in place (unbiased variance, PyTorch's momentum).
// relu: y = max(bn(x), 0) written in the same pass (NaN propagates).
void batchnorm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean,
                         float* running_var, const float* x, const float* weight, const float* bias, i64 N,
                         i64 C, i64 L, double eps, double momentum, bool relu, int nt);
void batchnorm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                        const float* running_mean, const float* running_var, i64 N, i64 C, i64 L, double eps,
                        bool relu, int nt);
// dx (null: skipped) overwritten; dweight, dbias (null: skipped) accumulated.
void batchnorm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                   const float* save_mean, const float* save_rstd, const float* weight, i64 N, i64 C, i64 L,
                   int nt);

// elu_gelu.cpp ---------------------------------------------------------------
// Gradients take the input x.
void elu_fwd(float* y, const float* x, i64 n, float alpha, int nt);
void elu_bwd(float* dx, const float* dy, const float* x, i64 n, float alpha, int nt);
void gelu_fwd(float* y, const float* x, i64 n, bool tanh_approx, int nt);
void gelu_bwd(float* dx, const float* dy, const float* x, i64 n, bool tanh_approx, int nt);

// dropout.cpp ----------------------------------------------------------------
// out[i] = in[i] * (mask[i / plane] ? scale : 0) over units * plane floats.
void dropout_apply(float* out, const float* in, const uint8_t* mask, i64 units, i64 plane, float scale,
                   int nt);

// softmax.cpp ----------------------------------------------------------------
// Along the middle axis of (outer, D, inner); dx = y * (dy - sum(dy * y)).
void softmax_fwd(float* y, const float* x, i64 outer, i64 D, i64 inner, int nt);
void softmax_bwd(float* dx, const float* dy, const float* y, i64 outer, i64 D, i64 inner, int nt);

// optim.cpp ------------------------------------------------------------------
void adam_update(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad,
                 i64 n, float w1, float beta2, float w2, float eps, float l2, float decay, float neg_step_size,
                 float bc2_sqrt, int nt);  // w1 = 1 - beta1, w2 = 1 - beta2

}  // namespace pycnn
