#include "ops/pool.h"

#include <limits>
#include <string>

#include "runtime/parallel.h"

namespace pycnn::ops {

namespace {
// Every saved max-pool index (count of them) lies in [0, window_input) -- the
// input plane or volume, `what` -- before a backward scatters through them:
// argmax comes from Python and may have been altered, and a wrong index would
// write outside dx; the check is cheap next to the scatter.
void check_argmax(const int32_t* argmax, i64 count, i64 window_input, const char* op, const char* what) {
  for (i64 i = 0; i < count; ++i)
    if (argmax[i] < 0 || argmax[i] >= window_input)
      fail(op, ": indices hold ", argmax[i], ", outside the input ", what, " of ", window_input, " elements");
}
}  // namespace

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
  check_argmax(argmax, s.N * s.C * s.Ho * s.Wo, s.H * s.W, "max_pool2d", "plane");
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

namespace {

std::string triple_str(const Triple& t) {
  return "(" + std::to_string(t[0]) + ", " + std::to_string(t[1]) + ", " + std::to_string(t[2]) + ")";
}

// One axis of a 3-D pooling window: PyTorch's output size, floor or ceil.
i64 pool_output_size(i64 size, i64 k, i64 stride, i64 pad, i64 dil, bool ceil_mode, const char* op) {
  const i64 out = window_output_size(size, k, stride, pad, pad, dil, op);  // floor; overflow-checked
  if (out <= 0 || !ceil_mode) return out;
  const i64 span = dil * (k - 1) + 1, padded = size + 2 * pad;  // both fit: checked just above
  if ((padded - span) % stride == 0) return out;
  // ceil: one more (partial) window, unless it would start in the right padding.
  i64 start;
  if (__builtin_mul_overflow(out, stride, &start) || start >= size + pad) return out;
  return out + 1;
}

// True when window `o` along one axis has a tap on a real element.
bool window_reaches_input(i64 o, i64 k, i64 stride, i64 pad, i64 dil, i64 size) {
  const i64 start = o * stride - pad;
  const i64 skipped = start >= 0 ? 0 : (-start + dil - 1) / dil;  // taps in the left padding
  return skipped < k && start + skipped * dil < size;
}

}  // namespace

Pool3dShape pool3d_shape(const Shape& x, const Window3d& w, const char* op) {
  if (x.size() != 5) fail(op, ": expected input of shape (N, C, D, H, W), got ", shape_str(x));
  const Triple &k = w.kernel, &st = w.stride, &pad = w.padding, &dil = w.dilation;
  for (int i = 0; i < 3; ++i) {
    if (k[i] <= 0) fail(op, ": kernel_size must be positive, got ", triple_str(k));
    if (st[i] <= 0) fail(op, ": stride must be positive, got ", triple_str(st));
    if (pad[i] < 0) fail(op, ": padding must be non-negative, got ", triple_str(pad));
    if (dil[i] <= 0) fail(op, ": dilation must be positive, got ", triple_str(dil));
    // pad > k/2 rather than 2*pad > k: the product overflows for pads near 2^62.
    if (pad[i] > k[i] / 2)
      fail(op, ": padding should be at most half of the kernel size, got padding ", triple_str(pad),
           " for kernel_size ", triple_str(k));
  }
  checked_numel(x, op);
  // As in 2-D: an empty volume with padding would give windows of padding only.
  if (x[2] == 0 || x[3] == 0 || x[4] == 0) fail(op, ": input volumes must be non-empty, got ", shape_str(x));
  if (checked_mul(x[2], checked_mul(x[3], x[4], op), op) > std::numeric_limits<int32_t>::max())
    fail(op, ": an input volume of ", x[2], " x ", x[3], " x ", x[4], " elements is too large (limit 2^31 - 1)");
  Pool3dShape s{};
  s.N = x[0], s.C = x[1], s.D = x[2], s.H = x[3], s.W = x[4];
  s.kd = k[0], s.kh = k[1], s.kw = k[2];
  s.stride_d = st[0], s.stride_h = st[1], s.stride_w = st[2];
  s.pad_d = pad[0], s.pad_h = pad[1], s.pad_w = pad[2];
  s.dil_d = dil[0], s.dil_h = dil[1], s.dil_w = dil[2];
  const i64 in[3] = {s.D, s.H, s.W};
  i64 out[3];
  for (int i = 0; i < 3; ++i) {
    out[i] = pool_output_size(in[i], k[i], st[i], pad[i], dil[i], w.ceil_mode, op);
    if (out[i] <= 0)
      fail(op, ": kernel_size ", triple_str(k), " with dilation ", triple_str(dil),
           " is larger than the padded input; input ", shape_str(x), ", padding ", triple_str(pad));
    // Without dilation padding <= k/2 gives every window a real element; with it, check each
    // (out <= size + 1 here, so the loop is no longer than the input).
    if (dil[i] > 1)
      for (i64 o = 0; o < out[i]; ++o)
        if (!window_reaches_input(o, k[i], st[i], pad[i], dil[i], in[i]))
          fail(op, ": with kernel_size ", triple_str(k), ", dilation ", triple_str(dil), " and padding ",
               triple_str(pad), " a window covers only padding; input ", shape_str(x));
  }
  s.Do = out[0], s.Ho = out[1], s.Wo = out[2];
  return s;
}

Pool3dShape avg_pool3d_shape(const Shape& x, const Window3d& w) {
  if (w.dilation != Triple{1, 1, 1}) fail("avg_pool3d: dilation must be 1, got ", triple_str(w.dilation));
  const Pool3dShape s = pool3d_shape(x, w, "avg_pool3d");
  i64 window;
  if (__builtin_mul_overflow(s.kd, s.kh, &window) || __builtin_mul_overflow(window, s.kw, &window))
    throw std::overflow_error("avg_pool3d: kernel_size " + triple_str(w.kernel) +
                              " has more elements than fit in 64-bit integers (the divisor of a window)");
  return s;
}

Pool3dShape avg_pool3d_bwd_shape(const Shape& dy, const Shape& x, const Window3d& w) {
  const Pool3dShape s = avg_pool3d_shape(x, w);
  check_shape(dy, {s.N, s.C, s.Do, s.Ho, s.Wo}, "avg_pool3d grad_output");
  return s;
}

Pool3dShape max_pool3d_bwd_shape(const Shape& dy, const Shape& argmax, const Shape* relu_output, const Shape& x,
                                 const Window3d& w) {
  const Pool3dShape s = pool3d_shape(x, w, "max_pool3d");
  const Shape out{s.N, s.C, s.Do, s.Ho, s.Wo};
  check_shape(dy, out, "max_pool3d grad_output");
  check_shape(argmax, out, "max_pool3d indices");
  if (relu_output) check_shape(*relu_output, out, "max_pool3d relu_output");
  return s;
}

Pool3dShape adaptive_pool3d_shape(const Shape& x, const Triple& out) {
  const char* op = "adaptive_avg_pool3d";
  if (x.size() != 5) fail(op, ": expected input of shape (N, C, D, H, W), got ", shape_str(x));
  if (out[0] <= 0 || out[1] <= 0 || out[2] <= 0) fail(op, ": output_size must be positive, got ", triple_str(out));
  checked_numel(x, op);
  if (x[2] <= 0 || x[3] <= 0 || x[4] <= 0) fail(op, ": input volumes must be non-empty, got ", shape_str(x));
  Pool3dShape s{};
  s.N = x[0], s.C = x[1], s.D = x[2], s.H = x[3], s.W = x[4], s.Do = out[0], s.Ho = out[1], s.Wo = out[2];
  checked_numel({s.N, s.C, s.Do, s.Ho, s.Wo}, op);
  // The window arithmetic computes (i + 1) * size + out - 1 for i < out.
  for (int i = 0; i < 3; ++i) checked_add(checked_mul(out[i], x[2 + i], op), out[i], op);
  return s;
}

Pool3dShape adaptive_pool3d_bwd_shape(const Shape& dy, const Shape& x) {
  if (dy.size() != 5)
    fail("adaptive_avg_pool3d: expected grad_output of shape (N, C, Do, Ho, Wo), got ", shape_str(dy));
  const Pool3dShape s = adaptive_pool3d_shape(x, {dy[2], dy[3], dy[4]});
  check_shape(dy, {s.N, s.C, s.Do, s.Ho, s.Wo}, "adaptive_avg_pool3d grad_output");
  return s;
}

void max_pool3d_fwd(float* y, int32_t* argmax, const float* x, const Pool3dShape& s) {
  pycnn::max_pool3d_fwd(y, argmax, x, s, get_num_threads());
}

void max_pool3d_bwd(float* dx, const float* dy, const int32_t* argmax, const float* relu_output,
                    const Pool3dShape& s) {
  check_argmax(argmax, s.N * s.C * s.Do * s.Ho * s.Wo, s.D * s.H * s.W, "max_pool3d", "volume");
  pycnn::max_pool3d_bwd(dx, dy, argmax, relu_output, s, get_num_threads());
}

void avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s, bool count_include_pad) {
  pycnn::avg_pool3d_fwd(y, x, s, count_include_pad, get_num_threads());
}
void avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s, bool count_include_pad) {
  pycnn::avg_pool3d_bwd(dx, dy, s, count_include_pad, get_num_threads());
}
void adaptive_avg_pool3d_fwd(float* y, const float* x, const Pool3dShape& s) {
  pycnn::adaptive_avg_pool3d_fwd(y, x, s, get_num_threads());
}
void adaptive_avg_pool3d_bwd(float* dx, const float* dy, const Pool3dShape& s) {
  pycnn::adaptive_avg_pool3d_bwd(dx, dy, s, get_num_threads());
}

}  // namespace pycnn::ops
