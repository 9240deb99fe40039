#include "ops/pool.h"

#include <limits>

#include "runtime/parallel.h"

namespace pycnn::ops {

Pool2dShape pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w,
                         const char* op) {
  if (x.size() != 4) fail(op, ": expected input of shape (N, C, H, W), got ", shape_str(x));
  if (kh <= 0 || kw <= 0) fail(op, ": kernel_size must be positive, got (", kh, ", ", kw, ")");
  if (stride_h <= 0 || stride_w <= 0) fail(op, ": stride must be positive, got (", stride_h, ", ", stride_w, ")");
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
    fail(op, ": kernel_size (", kh, ", ", kw, ") is larger than the padded input (", s.H + 2 * pad_h, ", ",
         s.W + 2 * pad_w, "); input ", shape_str(x));
  return s;
}

Pool2dShape avg_pool2d_shape(const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w) {
  const Pool2dShape s = pool2d_shape(x, kh, kw, stride_h, stride_w, pad_h, pad_w, "avg_pool2d");
  // The divisor of a window (count_include_pad) is up to kh * kw.
  i64 window;
  if (__builtin_mul_overflow(kh, kw, &window))
    throw std::overflow_error("avg_pool2d: kernel_size (" + std::to_string(kh) + ", " + std::to_string(kw) +
                              ") has more elements than fit in 64-bit integers (the divisor of a window)");
  return s;
}

Pool2dShape avg_pool2d_bwd_shape(const Shape& dy, const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w,
                                 i64 pad_h, i64 pad_w) {
  const Pool2dShape s = avg_pool2d_shape(x, kh, kw, stride_h, stride_w, pad_h, pad_w);
  check_shape(dy, {s.N, s.C, s.Ho, s.Wo}, "avg_pool2d grad_output");
  return s;
}

Pool2dShape pool2d_bwd_shape(const Shape& dy, const Shape& x, i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h,
                             i64 pad_w, const char* op) {
  const Pool2dShape s = pool2d_shape(x, kh, kw, stride_h, stride_w, pad_h, pad_w, op);
  check_shape(dy, {s.N, s.C, s.Ho, s.Wo}, (std::string(op) + " grad_output").c_str());
  return s;
}

Pool2dShape max_pool2d_bwd_shape(const Shape& dy, const Shape& argmax, const Shape* relu_output, const Shape& x,
                                 i64 kh, i64 kw, i64 stride_h, i64 stride_w, i64 pad_h, i64 pad_w) {
  const Pool2dShape s = pool2d_bwd_shape(dy, x, kh, kw, stride_h, stride_w, pad_h, pad_w, "max_pool2d");
  check_shape(argmax, {s.N, s.C, s.Ho, s.Wo}, "max_pool2d indices");
  if (relu_output) check_shape(*relu_output, {s.N, s.C, s.Ho, s.Wo}, "max_pool2d relu_output");
  return s;
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
  // The window arithmetic computes (i + 1) * size + out - 1 for i < out.
  checked_add(checked_mul(out_h, s.H, op), out_h, op);
  checked_add(checked_mul(out_w, s.W, op), out_w, op);
  return s;
}

Pool2dShape adaptive_pool2d_bwd_shape(const Shape& dy, const Shape& x) {
  if (dy.size() != 4)
    fail("adaptive_avg_pool2d: expected grad_output of shape (N, C, Ho, Wo), got ", shape_str(dy));
  const Pool2dShape s = adaptive_pool2d_shape(x, dy[2], dy[3]);
  check_shape(dy, {s.N, s.C, s.Ho, s.Wo}, "adaptive_avg_pool2d grad_output");
  return s;
}

void max_pool2d_fwd(float* y, int32_t* argmax, const float* x, const Pool2dShape& s) {
  pycnn::max_pool2d_fwd(y, argmax, x, s, get_num_threads());
}

void max_pool2d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool2dShape& s) {
  // A wrong index would write outside dx; the check is cheap next to the scatter.
  const i64 plane = s.H * s.W, count = s.N * s.C * s.Ho * s.Wo;
  for (i64 i = 0; i < count; ++i)
    if (argmax[i] < 0 || argmax[i] >= plane)
      fail("max_pool2d: indices hold ", argmax[i], ", outside the input plane of ", plane, " elements");
  pycnn::max_pool2d_bwd(dx, dy, argmax, relu_output, s, get_num_threads());
}

void avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s, bool count_include_pad) {
  pycnn::avg_pool2d_fwd(y, x, s, count_include_pad, get_num_threads());
}
void avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s, bool count_include_pad) {
  pycnn::avg_pool2d_bwd(dx, dy, s, count_include_pad, get_num_threads());
}
void adaptive_avg_pool2d_fwd(float* y, const float* x, const Pool2dShape& s) {
  pycnn::adaptive_avg_pool2d_fwd(y, x, s, get_num_threads());
}
void adaptive_avg_pool2d_bwd(float* dx, const float* dy, const Pool2dShape& s) {
  pycnn::adaptive_avg_pool2d_bwd(dx, dy, s, get_num_threads());
}

}  // namespace pycnn::ops
