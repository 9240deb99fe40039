// 3-D convolution on the 2-D kernels (conv/conv3d.h): for a chunk of output
// frames at a time, their input frames are stacked as channels, the chunk
// runs as one batch of 2-D convolutions (conv2d_fwd / _bwd_data /
// _bwd_weight: tap cropping, algorithm choice, threading as for images),
// and the frames go back to NCTHW. Chunks bound the stacked copy (kt /
// stride_t times the input) to kChunkFloats, whatever the clip's length.
#include <algorithm>
#include <atomic>
#include <optional>

#include "ops/conv.h"
#include "runtime/buffer_cache.h"
#include "runtime/parallel.h"

namespace pycnn::ops {

namespace {

// Scratch of one chunk (stacked input + output frames) at most, in floats,
// unless a single frame needs more: 16 MiB, enough frames per chunk for a
// batch split over threads on video-sized planes (28x28x64: 27 frames of
// 3 taps), small enough not to double a clip's memory.
constexpr i64 kChunkFloats = i64{1} << 22;
std::atomic<i64> chunk_floats{kChunkFloats};  // set_conv3d_chunk_floats: tests cut small clips into chunks

// Output frames per chunk.
i64 chunk_frames(const Conv3dShape& s) {
  const i64 per_frame = s.stacked_channels() * s.H * s.W + s.K * s.Ho * s.Wo;
  return std::clamp<i64>(chunk_floats.load(std::memory_order_relaxed) / std::max<i64>(1, per_frame), 1,
                         std::max<i64>(1, s.frames()));
}

// A 2-D convolution that runs on x and y themselves, without stacking copies, when the 3-D one is
// one under a reshape of their (T, H, W) axes:
//  * a kernel spanning the whole clip (or a clip of one frame), one output frame: x already is the
//    stacked input of its only frame, (N, C * T, H, W), and y the 2-D output;
//  * no spatial window (kh = kw = 1, stride 1, no padding: the temporal half of a (2+1)-D block,
//    and 1x1x1 kernels): a (kt, 1) kernel over (T, H * W) planes;
//  * no temporal and no vertical window (kt = kh = 1, stride 1, no padding): a (1, kw) kernel over
//    (T * H, W) planes (rows of different frames never meet).
std::optional<Conv2dShape> as_plane_convolution(const Conv3dShape& s) {
  const bool no_t = s.kt == 1 && s.stride_t == 1 && s.pad_front == 0 && s.To == s.T;
  const bool no_h = s.kh == 1 && s.stride_h == 1 && s.pad_top == 0 && s.Ho == s.H;
  const bool no_w = s.kw == 1 && s.stride_w == 1 && s.pad_left == 0 && s.Wo == s.W;
  if (s.To == 1 && s.kt == s.T && s.pad_front == 0 && (s.kt == 1 || s.dilation_t == 1)) return s.frames_shape(s.N);
  Conv2dShape v = s.frames_shape(s.N);
  v.C = s.C, v.kh = s.kt, v.stride_h = s.stride_t, v.pad_top = s.pad_front, v.dilation_h = s.dilation_t;
  if (no_h && no_w) {
    v.H = s.T, v.W = s.H * s.W, v.Ho = s.To, v.Wo = s.H * s.W;
    v.kw = 1, v.stride_w = 1, v.pad_left = 0, v.dilation_w = 1;
    return v;
  }
  if (no_t && no_h) {
    v = s.frames_shape(s.N);
    v.C = s.C, v.H = s.T * s.H, v.Ho = s.T * s.H;
    v.kh = 1, v.stride_h = 1, v.pad_top = 0, v.dilation_h = 1;
    return v;
  }
  return std::nullopt;
}

}  // namespace

i64 set_conv3d_chunk_floats(i64 floats) {
  return chunk_floats.exchange(floats > 0 ? floats : kChunkFloats, std::memory_order_relaxed);
}

Conv3dShape conv3d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv3dParams& p) {
  if (x.size() != 5) fail("conv3d: expected input of shape (N, C, T, H, W), got ", shape_str(x));
  if (w.size() != 5) fail("conv3d: expected weight of shape (K, C/groups, kt, kh, kw), got ", shape_str(w));
  if (p.stride_t <= 0 || p.stride_h <= 0 || p.stride_w <= 0)
    fail("conv3d: stride must be positive, got (", p.stride_t, ", ", p.stride_h, ", ", p.stride_w, ")");
  if (p.dilation_t <= 0 || p.dilation_h <= 0 || p.dilation_w <= 0)
    fail("conv3d: dilation must be positive, got (", p.dilation_t, ", ", p.dilation_h, ", ", p.dilation_w, ")");
  if (p.pad_front < 0 || p.pad_back < 0 || p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    fail("conv3d: padding must be non-negative, got (front ", p.pad_front, ", back ", p.pad_back, ", top ",
         p.pad_top, ", bottom ", p.pad_bottom, ", left ", p.pad_left, ", right ", p.pad_right, ")");
  if (p.groups <= 0) fail("conv3d: groups must be positive, got ", p.groups);
  checked_numel(x, "conv3d input");
  checked_numel(w, "conv3d weight");
  Conv3dShape s{};
  s.N = x[0], s.C = x[1], s.T = x[2], s.H = x[3], s.W = x[4];
  s.K = w[0], s.kt = w[2], s.kh = w[3], s.kw = w[4];
  s.stride_t = p.stride_t, s.stride_h = p.stride_h, s.stride_w = p.stride_w;
  s.pad_front = p.pad_front, s.pad_top = p.pad_top, s.pad_left = p.pad_left;
  s.dilation_t = p.dilation_t, s.dilation_h = p.dilation_h, s.dilation_w = p.dilation_w;
  s.groups = p.groups;
  check_conv_channels("conv3d", x, w, bias, p.groups, "T, H, W");
  s.To = window_output_size(s.T, s.kt, s.stride_t, p.pad_front, p.pad_back, s.dilation_t, "conv3d");
  s.Ho = window_output_size(s.H, s.kh, s.stride_h, p.pad_top, p.pad_bottom, s.dilation_h, "conv3d");
  s.Wo = window_output_size(s.W, s.kw, s.stride_w, p.pad_left, p.pad_right, s.dilation_w, "conv3d");
  if (s.To <= 0 || s.Ho <= 0 || s.Wo <= 0)
    fail("conv3d: kernel (", s.kt, ", ", s.kh, ", ", s.kw, ") with dilation (", s.dilation_t, ", ", s.dilation_h,
         ", ", s.dilation_w, ") is larger than the padded input (", s.T + p.pad_front + p.pad_back, ", ",
         s.H + p.pad_top + p.pad_bottom, ", ", s.W + p.pad_left + p.pad_right, "); input ", shape_str(x),
         ", weight ", shape_str(w));
  checked_numel({s.N, s.K, s.To, s.Ho, s.Wo}, "conv3d output");
  // One output frame's stacked input and the 2-D kernels' im2col buffer of one frame and group.
  checked_numel({s.C, s.kt, s.H, s.W}, "conv3d stacked frame");
  checked_numel({s.c_per_group_taps(), s.kh, s.kw, s.Ho, s.Wo}, "conv3d im2col buffer");
  return s;
}

Conv3dShape conv3d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                             const Conv3dParams& p) {
  const Conv3dShape s = conv3d_shape(x, w, bias, p);
  check_shape(dy, {s.N, s.K, s.To, s.Ho, s.Wo}, "conv3d grad_output");
  return s;
}

namespace {
// Runs pass(f0, m, stacked, frames) on each chunk of output frames [f0, f0 + m), with scratch for
// the chunk's stacked input (m * C * kt * H * W floats) and its output frames (m * K * Ho * Wo).
template <class Pass>
void for_each_chunk(const Conv3dShape& s, Pass&& pass) {
  const i64 F = s.frames(), chunk = chunk_frames(s);
  CachedFloats stacked(static_cast<std::size_t>(chunk * s.stacked_channels() * s.H * s.W)),
      frames(static_cast<std::size_t>(chunk * s.K * s.Ho * s.Wo));
  for (i64 f0 = 0; f0 < F; f0 += chunk) pass(f0, std::min(chunk, F - f0), stacked.get(), frames.get());
}
}  // namespace

void conv3d_fwd(float* y, const float* x, const float* w, const float* b, const Conv3dShape& s, ConvAlgo algo,
                bool relu) {
  if (s.frames() == 0) return;
  if (const auto v = as_plane_convolution(s)) return conv2d_fwd(y, x, w, b, *v, algo, relu);
  const int nt = get_num_threads();
  for_each_chunk(s, [&](i64 f0, i64 m, float* stacked, float* out) {
    stack_frames(stacked, x, input_stack(s), f0, m, nt);
    conv2d_fwd(out, stacked, w, b, s.frames_shape(m), algo, relu);
    unstack_frames(y, out, output_stack(s), f0, m, /*overwrite=*/true, nt);
  });
}

void conv3d_bwd_data(float* dx, const float* dy, const float* w, const Conv3dShape& s, ConvAlgo algo) {
  if (s.frames() == 0) return;
  if (const auto v = as_plane_convolution(s)) return conv2d_bwd_data(dx, dy, w, *v, algo);
  std::fill(dx, dx + s.N * s.C * s.T * s.H * s.W, 0.0f);  // frames no tap reads get no gradient
  const int nt = get_num_threads();
  for_each_chunk(s, [&](i64 f0, i64 m, float* dstacked, float* dout) {
    stack_frames(dout, dy, output_stack(s), f0, m, nt);
    conv2d_bwd_data(dstacked, dout, w, s.frames_shape(m), algo);
    unstack_frames(dx, dstacked, input_stack(s), f0, m, /*overwrite=*/false, nt);
  });
}

void conv3d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv3dShape& s, ConvAlgo algo) {
  const Span gw = floats(dw, s.K * s.c_per_group_taps() * s.kh * s.kw, "grad_weight");
  const Span gb = floats(db, s.K, "grad_bias");
  const Span g = floats(dy, s.frames() * s.K * s.Ho * s.Wo, "grad_output");
  const Span in = floats(x, s.N * s.C * s.T * s.H * s.W, "input");
  check_disjoint(gw, g), check_disjoint(gw, in);
  check_disjoint(gb, g), check_disjoint(gb, in), check_disjoint(gb, gw);
  if (s.frames() == 0) return;
  if (const auto v = as_plane_convolution(s)) return conv2d_bwd_weight(dw, db, dy, x, *v, algo);
  const int nt = get_num_threads();
  for_each_chunk(s, [&](i64 f0, i64 m, float* stacked, float* dout) {
    stack_frames(stacked, x, input_stack(s), f0, m, nt);
    stack_frames(dout, dy, output_stack(s), f0, m, nt);
    conv2d_bwd_weight(dw, db, dout, stacked, s.frames_shape(m), algo);
  });
}

}  // namespace pycnn::ops
