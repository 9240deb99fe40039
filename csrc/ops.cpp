// The checked boundary between the bindings and the kernels (see ops.h).
// Messages follow PyTorch's style and always quote the shapes involved.
#include "ops.h"

#include <limits>
#include <sstream>
#include <stdexcept>

#include "conv/conv2d.h"
#include "gemm/gemm.h"
#include "kernels.h"
#include "parallel.h"

namespace pycnn::ops {
namespace {

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw std::invalid_argument(os.str());
}

i64 checked_mul(i64 a, i64 b, const char* what) {
  i64 r;
  if (__builtin_mul_overflow(a, b, &r))
    throw std::overflow_error(std::string(what) + ": size does not fit in 64-bit integers");
  return r;
}

// (size + pad_begin + pad_end - dilation*(k-1) - 1) / stride + 1, overflow-checked.
i64 window_output_size(i64 size, i64 k, i64 stride, i64 pad_begin, i64 pad_end, i64 dilation,
                       const char* what) {
  i64 span;
  if (__builtin_add_overflow(checked_mul(dilation, k - 1, what), i64{1}, &span))
    throw std::overflow_error(std::string(what) + ": kernel span does not fit in 64-bit integers");
  i64 padded;
  if (__builtin_add_overflow(size, pad_begin, &padded) || __builtin_add_overflow(padded, pad_end, &padded))
    throw std::overflow_error(std::string(what) + ": padded size does not fit in 64-bit integers");
  if (padded < span) return 0;
  return (padded - span) / stride + 1;
}

}  // namespace

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << (s.size() == 1 ? ",)" : ")");
  return os.str();
}

void check_shape(const Shape& got, const Shape& expected, const char* what) {
  if (got != expected) fail("expected ", what, " of shape ", shape_str(expected), ", got ", shape_str(got));
}

i64 checked_numel(const Shape& s, const char* what) {
  i64 n = 1;
  for (i64 d : s) {
    if (d < 0) fail(what, " has a negative dimension: ", shape_str(s));
    n = checked_mul(n, d, what);
  }
  // Every element must also be addressable in bytes.
  checked_mul(n, static_cast<i64>(sizeof(float)), what);
  return n;
}

// ---------------------------------------------------------------- conv2d

ConvAlgo parse_conv_algo(const std::string& name) {
  if (name == "auto") return ConvAlgo::Auto;
  if (name == "im2col") return ConvAlgo::Im2col;
  if (name == "direct") return ConvAlgo::Direct;
  fail("algo must be 'auto', 'im2col' or 'direct', got '", name, "'");
}

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Im2col: return "im2col";
    case ConvAlgo::Direct: return "direct";
  }
  return "?";
}

Conv2dShape conv2d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv2dParams& p) {
  if (x.size() != 4) fail("conv2d: expected input of shape (N, C, H, W), got ", shape_str(x));
  if (w.size() != 4) fail("conv2d: expected weight of shape (K, C/groups, kh, kw), got ", shape_str(w));
  if (p.stride_h <= 0 || p.stride_w <= 0)
    fail("conv2d: stride must be positive, got (", p.stride_h, ", ", p.stride_w, ")");
  if (p.dilation_h <= 0 || p.dilation_w <= 0)
    fail("conv2d: dilation must be positive, got (", p.dilation_h, ", ", p.dilation_w, ")");
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    fail("conv2d: padding must be non-negative, got (top ", p.pad_top, ", bottom ", p.pad_bottom,
         ", left ", p.pad_left, ", right ", p.pad_right, ")");
  if (p.groups <= 0) fail("conv2d: groups must be positive, got ", p.groups);
  checked_numel(x, "conv2d input");
  checked_numel(w, "conv2d weight");
  Conv2dShape s{};
  s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.K = w[0], s.kh = w[2], s.kw = w[3];
  s.stride_h = p.stride_h, s.stride_w = p.stride_w;
  s.pad_top = p.pad_top, s.pad_left = p.pad_left;
  s.dilation_h = p.dilation_h, s.dilation_w = p.dilation_w;
  s.groups = p.groups;
  if (s.K <= 0 || s.kh <= 0 || s.kw <= 0 || w[1] <= 0)
    fail("conv2d: weight must have positive sizes, got ", shape_str(w));
  if (s.C <= 0) fail("conv2d: input must have at least one channel, got ", shape_str(x));
  if (s.C % p.groups != 0)
    fail("conv2d: groups=", p.groups, " must divide the input channels; input ", shape_str(x));
  if (s.K % p.groups != 0)
    fail("conv2d: groups=", p.groups, " must divide the output channels; weight ", shape_str(w));
  // Name the input first: a channel mismatch is most often an NHWC array or a
  // layer fed the wrong tensor, and the weight then belongs to a module.
  if (w[1] != s.C / p.groups)
    fail("conv2d: expected input of shape (N, ", checked_mul(w[1], p.groups, "conv2d"),
         ", H, W) for weight ", shape_str(w), " and groups=", p.groups, ", got ", shape_str(x));
  if (bias && (*bias != Shape{s.K}))
    fail("conv2d: expected bias of shape (", s.K, ",), got ", shape_str(*bias));
  s.Ho = window_output_size(s.H, s.kh, s.stride_h, p.pad_top, p.pad_bottom, s.dilation_h, "conv2d");
  s.Wo = window_output_size(s.W, s.kw, s.stride_w, p.pad_left, p.pad_right, s.dilation_w, "conv2d");
  if (s.Ho <= 0 || s.Wo <= 0)
    fail("conv2d: kernel (", s.kh, ", ", s.kw, ") with dilation (", s.dilation_h, ", ", s.dilation_w,
         ") is larger than the padded input (", s.H + p.pad_top + p.pad_bottom, ", ",
         s.W + p.pad_left + p.pad_right, "); input ", shape_str(x), ", weight ", shape_str(w));
  checked_numel({s.N, s.K, s.Ho, s.Wo}, "conv2d output");
  // The im2col buffer of one image and group.
  checked_numel({s.col_rows(), s.Ho, s.Wo}, "conv2d im2col buffer");
  return s;
}

ConvAlgo conv2d_resolve_algo(const Conv2dShape& s, ConvAlgo requested) {
  if (requested != ConvAlgo::Auto) return requested;
  // Measured on the development machine (docs/architecture.md): im2col + GEMM
  // wins everywhere except depthwise-like grouped convolutions, whose
  // per-group GEMMs have one or two rows and columns and spend their time in
  // call overhead; there the direct kernel is about 2x faster. First layers
  // (C = 1..4) also go to im2col for now: the portable direct kernel loses to
  // it by 2-5x until the vectorised small-C kernel exists.
  if (s.groups > 1 && s.c_per_group() * s.k_per_group() <= 4) return ConvAlgo::Direct;
  return ConvAlgo::Im2col;
}

void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                ConvAlgo algo, bool relu) {
  if (s.N == 0) return;
  const int nt = get_num_threads();
  if (conv2d_resolve_algo(s, algo) == ConvAlgo::Direct)
    conv2d_fwd_direct(y, x, w, b, s, relu, nt);
  else
    conv2d_fwd_im2col(y, x, w, b, s, relu, nt);
}

void conv2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo) {
  if (s.N == 0) return;
  const int nt = get_num_threads();
  if (conv2d_resolve_algo(s, algo) == ConvAlgo::Direct)
    conv2d_bwd_data_direct(dx, dy, w, s, nt);
  else
    conv2d_bwd_data_im2col(dx, dy, w, s, nt);
}

void conv2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                       ConvAlgo algo) {
  if (s.N == 0) return;
  const int nt = get_num_threads();
  if (conv2d_resolve_algo(s, algo) == ConvAlgo::Direct)
    conv2d_bwd_weight_direct(dw, db, dy, x, s, nt);
  else
    conv2d_bwd_weight_im2col(dw, db, dy, x, s, nt);
}

// ---------------------------------------------------------------- pooling

Pool2dShape pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h,
                         i64 pad_w, const char* op) {
  if (x.size() != 4) fail(op, ": expected input of shape (N, C, H, W), got ", shape_str(x));
  if (kh <= 0 || kw <= 0) fail(op, ": kernel_size must be positive, got (", kh, ", ", kw, ")");
  if (stride_h <= 0 || stride_w <= 0)
    fail(op, ": stride must be positive, got (", stride_h, ", ", stride_w, ")");
  if (pad_h < 0 || pad_w < 0) fail(op, ": padding must be non-negative, got (", pad_h, ", ", pad_w, ")");
  // pad > k/2 rather than 2*pad > k: the product overflows for pads near 2^62.
  if (pad_h > kh / 2 || pad_w > kw / 2)
    fail(op, ": padding should be at most half of the kernel size, got padding (", pad_h, ", ", pad_w,
         ") for kernel_size (", kh, ", ", kw, ")");
  checked_numel(x, op);
  // An empty plane with padding would give windows of padding only: -inf with
  // an index into nothing (max), 0/0 (average without the padding). PyTorch
  // refuses such input too; empty batches and channel counts stay valid.
  if (x[2] == 0 || x[3] == 0) fail(op, ": input planes must be non-empty, got ", shape_str(x));
  Pool2dShape s{};
  s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3];
  s.kh = kh, s.kw = kw, s.stride_h = stride_h, s.stride_w = stride_w, s.pad_h = pad_h, s.pad_w = pad_w;
  if (s.H > std::numeric_limits<int32_t>::max() / (s.W > 0 ? s.W : 1))
    fail(op, ": an input plane of ", s.H, " x ", s.W, " elements is too large (limit 2^31 - 1)");
  s.Ho = window_output_size(s.H, kh, stride_h, pad_h, pad_h, 1, op);
  s.Wo = window_output_size(s.W, kw, stride_w, pad_w, pad_w, 1, op);
  if (s.Ho <= 0 || s.Wo <= 0)
    fail(op, ": kernel_size (", kh, ", ", kw, ") is larger than the padded input (", s.H + 2 * pad_h,
         ", ", s.W + 2 * pad_w, "); input ", shape_str(x));
  return s;
}

void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s) {
  pycnn::max_pool2d_fwd(y, argmax, x, s, get_num_threads());
}
void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s) {
  pycnn::max_pool2d_bwd(dx, dy, argmax, relu_output, s, get_num_threads());
}
void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad) {
  pycnn::avg_pool2d_fwd(y, x, s, count_include_pad, get_num_threads());
}
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad) {
  pycnn::avg_pool2d_bwd(dx, dy, s, count_include_pad, get_num_threads());
}

Pool2dShape adaptive_pool2d_shape(const Shape& x, i64 out_h, i64 out_w) {
  const char* op = "adaptive_avg_pool2d";
  if (x.size() != 4) fail(op, ": expected input of shape (N, C, H, W), got ", shape_str(x));
  if (out_h <= 0 || out_w <= 0) fail(op, ": output_size must be positive, got (", out_h, ", ", out_w, ")");
  checked_numel(x, op);
  if (x[2] <= 0 || x[3] <= 0) fail(op, ": input planes must be non-empty, got ", shape_str(x));
  Pool2dShape s{};
  s.N = x[0], s.C = x[1], s.H = x[2], s.W = x[3], s.Ho = out_h, s.Wo = out_w;
  checked_numel({s.N, s.C, s.Ho, s.Wo}, op);
  checked_mul(out_h, s.H, op);  // the window arithmetic multiplies index by size
  checked_mul(out_w, s.W, op);
  return s;
}
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s) {
  pycnn::adaptive_avg_pool2d_fwd(y, x, s, get_num_threads());
}
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s) {
  pycnn::adaptive_avg_pool2d_bwd(dx, dy, s, get_num_threads());
}

// ---------------------------------------------------------------- activations

void activation_fwd(Activation a, float* y, const float* x, i64 n, float slope) {
  const int nt = get_num_threads();
  switch (a) {
    case Activation::ReLU: return relu_fwd(y, x, n, nt);
    case Activation::LeakyReLU: return leaky_relu_fwd(y, x, n, slope, nt);
    case Activation::Sigmoid: return sigmoid_fwd(y, x, n, nt);
    case Activation::Tanh: return tanh_fwd(y, x, n, nt);
  }
}

void activation_bwd(Activation a, float* dx, const float* dy, const float* saved, i64 n, float slope) {
  const int nt = get_num_threads();
  switch (a) {
    case Activation::ReLU: return relu_bwd(dx, dy, saved, n, nt);
    case Activation::LeakyReLU: return leaky_relu_bwd(dx, dy, saved, n, slope, nt);
    case Activation::Sigmoid: return sigmoid_bwd(dx, dy, saved, n, nt);
    case Activation::Tanh: return tanh_bwd(dx, dy, saved, n, nt);
  }
}

// ---------------------------------------------------------------- linear

LinearShape linear_shape(const Shape& x, const Shape& w, const Shape* bias) {
  if (w.size() != 2) fail("linear: expected weight of shape (out_features, in_features), got ", shape_str(w));
  if (x.size() != 2)
    fail("linear: expected input of shape (N, ", w[1], "), got ", shape_str(x));
  if (x[1] != w[1])
    fail("linear: expected input of shape (N, ", w[1], ") for weight ", shape_str(w), ", got ", shape_str(x));
  if (bias && (*bias != Shape{w[0]}))
    fail("linear: expected bias of shape (", w[0], ",), got ", shape_str(*bias));
  checked_numel(x, "linear input");
  checked_numel(w, "linear weight");
  checked_numel({x[0], w[0]}, "linear output");
  return LinearShape{x[0], w[1], w[0]};
}

void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu) {
  if (s.N == 0 || s.out_features == 0) return;
  // y = x w^T (+ b): bias is broadcast into y first so the GEMM accumulates onto it.
  float beta = 0.0f;
  if (b) {
    for (i64 n = 0; n < s.N; ++n)
      for (i64 o = 0; o < s.out_features; ++o) y[n * s.out_features + o] = b[o];
    beta = 1.0f;
  }
  sgemm(false, true, s.N, s.out_features, s.in_features, 1.0f, x, s.in_features, w, s.in_features,
        beta, y, s.out_features, get_num_threads(), relu);
}

void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s) {
  if (s.N == 0 || s.in_features == 0) return;
  sgemm(false, false, s.N, s.in_features, s.out_features, 1.0f, dy, s.out_features, w, s.in_features,
        0.0f, dx, s.in_features, get_num_threads());
}

void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s) {
  if (s.N == 0) return;
  sgemm(true, false, s.out_features, s.in_features, s.N, 1.0f, dy, s.out_features, x, s.in_features,
        1.0f, dw, s.in_features, get_num_threads());
  if (db)
    for (i64 n = 0; n < s.N; ++n)
      for (i64 o = 0; o < s.out_features; ++o) db[o] += dy[n * s.out_features + o];
}

// ---------------------------------------------------------------- losses

void check_cross_entropy(const Shape& logits, const Shape& labels) {
  if (logits.size() != 2)
    fail("cross_entropy: expected logits of shape (N, classes), got ", shape_str(logits));
  if (logits[1] <= 0) fail("cross_entropy: expected at least one class, got logits ", shape_str(logits));
  if (labels.size() != 1 || labels[0] != logits[0])
    fail("cross_entropy: expected labels of shape (", logits[0], ",) for logits ", shape_str(logits),
         ", got ", shape_str(labels));
  checked_numel(logits, "cross_entropy logits");
}

namespace {
void check_labels(const int64_t* labels, i64 N, i64 classes) {
  for (i64 n = 0; n < N; ++n)
    if (labels[n] < 0 || labels[n] >= classes)
      fail("cross_entropy: label ", labels[n], " at index ", n, " is out of range [0, ", classes, ")");
}
}  // namespace

double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, i64 N, i64 classes) {
  check_labels(labels, N, classes);
  if (N == 0) return std::numeric_limits<double>::quiet_NaN();  // mean of nothing, as PyTorch
  return softmax_cross_entropy_fwd(probs, logits, labels, N, classes, get_num_threads());
}

void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, i64 N, i64 classes,
                       float scale) {
  check_labels(labels, N, classes);
  if (N == 0) return;
  softmax_cross_entropy_bwd(dlogits, probs, labels, N, classes, scale, get_num_threads());
}

double mse_fwd(const float* pred, const float* target, i64 n) {
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return pycnn::mse_fwd(pred, target, n);
}

void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale) {
  if (n == 0) return;
  pycnn::mse_bwd(dpred, pred, target, n, scale, get_num_threads());
}

// ---------------------------------------------------------------- optimisers

void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p,
              bool first_step) {
  sgd_update(param, momentum_buffer, grad, n, p.lr, p.momentum, p.dampening, p.weight_decay, p.nesterov,
             first_step, get_num_threads());
}

}  // namespace pycnn::ops

// ============================================================================
// Breadth ops: batch normalisation, ELU/GELU, dropout, Adam/AdamW.
namespace pycnn::ops {

BatchNormShape batchnorm_shape(const Shape& x, const Shape* weight, const Shape* bias, const Shape* running_mean,
                               const Shape* running_var) {
  if (x.size() < 2 || x.size() > 4)
    fail("batch_norm: expected input of shape (N, C), (N, C, L) or (N, C, H, W), got ", shape_str(x));
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
  for (std::size_t i = 2; i < x.size(); ++i) L *= x[i];
  return BatchNormShape{x[0], C, L};
}

void batchnorm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                         const float* x, const float* weight, const float* bias, const BatchNormShape& s,
                         double eps, double momentum, bool relu) {
  if (s.N * s.L <= 1)
    fail("batch_norm: expected more than 1 value per channel when training, got input of ", s.N * s.L,
         " value(s) per channel (N=", s.N, ", C=", s.C, ")");
  pycnn::batchnorm_fwd_train(y, save_mean, save_rstd, running_mean, running_var, x, weight, bias, s.N, s.C, s.L,
                             eps, momentum, relu, get_num_threads());
}

void batchnorm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                        const float* running_mean, const float* running_var, const BatchNormShape& s, double eps,
                        bool relu) {
  if (s.N * s.L == 0) return;
  pycnn::batchnorm_fwd_eval(y, x, weight, bias, running_mean, running_var, s.N, s.C, s.L, eps, relu,
                            get_num_threads());
}

void batchnorm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                   const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& s) {
  pycnn::batchnorm_bwd(dx, dweight, dbias, dy, x, save_mean, save_rstd, weight, s.N, s.C, s.L, get_num_threads());
}

void elu_fwd(float* y, const float* x, i64 n, float alpha) { pycnn::elu_fwd(y, x, n, alpha, get_num_threads()); }
void elu_bwd(float* dx, const float* dy, const float* x, i64 n, float alpha) {
  pycnn::elu_bwd(dx, dy, x, n, alpha, get_num_threads());
}
void gelu_fwd(float* y, const float* x, i64 n, bool tanh_approx) {
  pycnn::gelu_fwd(y, x, n, tanh_approx, get_num_threads());
}
void gelu_bwd(float* dx, const float* dy, const float* x, i64 n, bool tanh_approx) {
  pycnn::gelu_bwd(dx, dy, x, n, tanh_approx, get_num_threads());
}

i64 dropout_plane(const Shape& x, const Shape& mask, bool channelwise) {
  const i64 n = checked_numel(x, "dropout input");
  if (!channelwise) {
    check_shape(mask, x, "dropout mask");
    return 1;
  }
  if (x.size() < 2) fail("dropout: channel-wise dropout expects input of shape (N, C, ...), got ", shape_str(x));
  check_shape(mask, {x[0], x[1]}, "dropout mask");
  const i64 units = x[0] * x[1];
  return units > 0 ? n / units : 0;
}

void dropout_apply(float* out, const float* in, const uint8_t* mask, i64 units, i64 plane, float scale) {
  pycnn::dropout_apply(out, in, mask, units, plane, scale, get_num_threads());
}

SoftmaxShape softmax_shape(const Shape& x, i64 axis) {
  const i64 nd = static_cast<i64>(x.size());
  if (nd == 0) fail("softmax: expected an input with at least one dimension, got a 0-d array");
  if (axis < -nd || axis >= nd)
    fail("softmax: axis ", axis, " is out of range for an input of shape ", shape_str(x));
  if (axis < 0) axis += nd;
  checked_numel(x, "softmax input");
  SoftmaxShape s{1, x[axis], 1};
  for (i64 i = 0; i < axis; ++i) s.outer *= x[i];
  for (i64 i = axis + 1; i < nd; ++i) s.inner *= x[i];
  return s;
}

void softmax_fwd(float* y, const float* x, const SoftmaxShape& s) {
  if (s.outer * s.D * s.inner == 0) return;
  pycnn::softmax_fwd(y, x, s.outer, s.D, s.inner, get_num_threads());
}

void softmax_bwd(float* dx, const float* dy, const float* y, const SoftmaxShape& s) {
  if (s.outer * s.D * s.inner == 0) return;
  pycnn::softmax_bwd(dx, dy, y, s.outer, s.D, s.inner, get_num_threads());
}

void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p) {
  pycnn::adam_update(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, p.one_minus_beta1, p.beta2,
                     p.one_minus_beta2, p.eps, p.l2, p.decay,
                     p.neg_step_size, p.bc2_sqrt, get_num_threads());
}

}  // namespace pycnn::ops
