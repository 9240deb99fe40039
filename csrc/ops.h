// The checked boundary: one entry per op and pass. `*_shape` functions take the
// array shapes and hyper-parameters as the user gave them, validate everything
// (ndim, agreeing shapes, positive sizes, int64 overflow) and return the shape
// struct; they throw std::invalid_argument / std::overflow_error with messages
// that quote the shapes. The run functions take a validated shape, pick the
// algorithm and call kernels. Nothing here touches Python, so the bindings
// release the GIL around the run functions.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "shapes.h"

namespace pycnn::ops {

using Shape = std::vector<i64>;

std::string shape_str(const Shape& s);
// Throws std::invalid_argument("expected <what> of shape <expected>, got <got>") on mismatch.
void check_shape(const Shape& got, const Shape& expected, const char* what);
// Product of dims; std::overflow_error when it does not fit in int64.
i64 checked_numel(const Shape& s, const char* what);

// ---------------------------------------------------------------- conv2d
enum class ConvAlgo { Auto, Im2col, Direct };
ConvAlgo parse_conv_algo(const std::string& name);  // "auto" | "im2col" | "direct"
const char* conv_algo_name(ConvAlgo a);

struct Conv2dParams {
  i64 stride_h, stride_w;
  i64 pad_top, pad_bottom, pad_left, pad_right;
  i64 dilation_h, dilation_w;
  i64 groups;
};
// x (N, C, H, W), w (K, C/groups, kh, kw), optional bias (K,).
Conv2dShape conv2d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv2dParams& p);
// The algorithm `auto` resolves to for this shape (documented in docs/architecture.md).
ConvAlgo conv2d_resolve_algo(const Conv2dShape& s, ConvAlgo requested);
// relu: y = max(conv + b, 0), fused into the output write (Conv2d followed by ReLU).
void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                ConvAlgo algo, bool relu);
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo);
void conv2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                       ConvAlgo algo);

// ---------------------------------------------------------------- pooling
Pool2dShape pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h,
                         i64 pad_w, const char* op);
// argmax holds, per output element, the flat index h*W + w of the chosen input
// element within its (n, c) plane (int32: pool2d_shape checks H*W fits).
void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s);
// relu_output: when the pooled input was a ReLU's output, pass the pooled
// output y to apply the ReLU's gradient mask (y > 0) in the same pass; null otherwise.
void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s);
void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad);
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad);
// Adaptive average pooling: Pool2dShape with kh/kw/stride/pad unused (zero).
Pool2dShape adaptive_pool2d_shape(const Shape& x, i64 out_h, i64 out_w);
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s);
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s);

// ---------------------------------------------------------------- activations
enum class Activation { ReLU, LeakyReLU, Sigmoid, Tanh };
// y = f(x); y may alias x.
void activation_fwd(Activation a, float* y, const float* x, i64 n, float negative_slope);
// dx = dy * f'(.) where `saved` is x for LeakyReLU and y = f(x) for the others; dx may alias dy.
void activation_bwd(Activation a, float* dx, const float* dy, const float* saved, i64 n,
                    float negative_slope);

// ---------------------------------------------------------------- linear
struct LinearShape {
  i64 N, in_features, out_features;
};
// x (N, in), w (out, in), optional bias (out,).
LinearShape linear_shape(const Shape& x, const Shape& w, const Shape* bias);
// relu: y = max(x w^T + b, 0), fused into the GEMM's output write.
void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu);
void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s);
void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s);

// ---------------------------------------------------------------- losses
// logits (N, classes), labels int64 (N,) in [0, classes). Saves softmax in `probs`.
void check_cross_entropy(const Shape& logits, const Shape& labels);
double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, i64 N, i64 classes);
// dlogits = scale * (probs - onehot(labels)) / N
void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, i64 N, i64 classes,
                       float scale);
double mse_fwd(const float* pred, const float* target, i64 n);
// dpred = scale * 2 * (pred - target) / n
void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale);

// ---------------------------------------------------------------- optimisers
struct SgdParams {
  float lr, momentum, dampening, weight_decay;
  bool nesterov;
};
// In place on param and momentum_buffer (null when momentum == 0). On the first
// step the buffer is initialised to the gradient, as PyTorch does.
void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p,
              bool first_step);

}  // namespace pycnn::ops

// ============================================================================
// Breadth ops: batch normalisation, ELU/GELU, dropout, Adam/AdamW.
namespace pycnn::ops {

// ---------------------------------------------------------------- batch normalisation
// x (N, C), (N, C, L) or (N, C, H, W), viewed as (N, C, L) with L = 1, L or H*W.
struct BatchNormShape {
  i64 N, C, L;
};
// weight, bias, running_mean, running_var: each (C,) when given. `op` names the
// module in messages ("batch_norm").
BatchNormShape batchnorm_shape(const Shape& x, const Shape* weight, const Shape* bias, const Shape* running_mean,
                               const Shape* running_var);
// Batch statistics; throws like PyTorch when a channel has a single value.
// running_mean/running_var (null: not tracked) updated in place with `momentum`.
void batchnorm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                         const float* x, const float* weight, const float* bias, const BatchNormShape& s,
                         double eps, double momentum, bool relu);
void batchnorm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                        const float* running_mean, const float* running_var, const BatchNormShape& s, double eps,
                        bool relu);
void batchnorm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                   const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& s);

// ---------------------------------------------------------------- ELU, GELU (elementwise)
void elu_fwd(float* y, const float* x, i64 n, float alpha);
void elu_bwd(float* dx, const float* dy, const float* x, i64 n, float alpha);
void gelu_fwd(float* y, const float* x, i64 n, bool tanh_approx);
void gelu_bwd(float* dx, const float* dy, const float* x, i64 n, bool tanh_approx);

// ---------------------------------------------------------------- dropout
// x of shape `shape`; mask holds one byte per dropped/kept unit: numel(x)
// units (elementwise) or N*C units (channel-wise: Dropout1d/2d), checked here.
// Returns the plane size each mask byte covers.
i64 dropout_plane(const Shape& x, const Shape& mask, bool channelwise);
void dropout_apply(float* out, const float* in, const uint8_t* mask, i64 units, i64 plane, float scale);

// ---------------------------------------------------------------- softmax
// x of any shape, softmax along `axis` (negative counts from the end); checked here.
struct SoftmaxShape {
  i64 outer, D, inner;
};
SoftmaxShape softmax_shape(const Shape& x, i64 axis);
void softmax_fwd(float* y, const float* x, const SoftmaxShape& s);
void softmax_bwd(float* dx, const float* dy, const float* y, const SoftmaxShape& s);

// ---------------------------------------------------------------- Adam / AdamW
struct AdamParams {
  float one_minus_beta1, beta2, one_minus_beta2, eps;  // 1 - beta computed in double by the caller
  float l2;             // Adam's weight_decay (added to the gradient); 0 for AdamW
  float decay;          // AdamW's 1 - lr * weight_decay; 1 for Adam
  float neg_step_size;  // -lr / (1 - beta1^step)
  float bc2_sqrt;       // sqrt(1 - beta2^step)
};
// In place on param and the moment buffers (max_exp_avg_sq: amsgrad only, else null).
void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p);

}  // namespace pycnn::ops
