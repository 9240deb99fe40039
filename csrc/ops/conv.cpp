#include "ops/conv.h"

#include <algorithm>
#include <optional>

#include "conv/channel_bias.h"
#include "runtime/buffer_cache.h"
#include "runtime/parallel.h"

namespace pycnn::ops {

ConvAlgo parse_conv_algo(const std::string& name) {
  if (name == "auto") return ConvAlgo::Auto;
  if (name == "im2col") return ConvAlgo::Im2col;
  if (name == "direct") return ConvAlgo::Direct;
  if (name == "winograd") return ConvAlgo::Winograd;
  fail("algo must be 'auto', 'im2col', 'direct' or 'winograd', got '", name, "'");
}

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Im2col: return "im2col";
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::Winograd: return "winograd";
  }
  return "?";
}

void check_conv_channels(const char* op, const Shape& x, const Shape& w, const Shape* bias, i64 groups,
                         const char* spatial) {
  const i64 C = x[1], K = w[0];
  for (const i64 d : w)
    if (d <= 0) fail(op, ": weight must have positive sizes, got ", shape_str(w));
  if (C <= 0) fail(op, ": input must have at least one channel, got ", shape_str(x));
  if (C % groups != 0) fail(op, ": groups=", groups, " must divide the input channels; input ", shape_str(x));
  if (K % groups != 0) fail(op, ": groups=", groups, " must divide the output channels; weight ", shape_str(w));
  // Name the input first: a channel mismatch is most often an NHWC array or a
  // layer fed the wrong tensor, and the weight then belongs to a module.
  if (w[1] != C / groups)
    fail(op, ": expected input of shape (N, ", checked_mul(w[1], groups, op), ", ", spatial, ") for weight ",
         shape_str(w), " and groups=", groups, ", got ", shape_str(x));
  if (bias && (*bias != Shape{K})) fail(op, ": expected bias of shape (", K, ",), got ", shape_str(*bias));
}

Conv2dShape conv2d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv2dParams& p) {
  if (x.size() != 4) fail("conv2d: expected input of shape (N, C, H, W), got ", shape_str(x));
  if (w.size() != 4) fail("conv2d: expected weight of shape (K, C/groups, kh, kw), got ", shape_str(w));
  if (p.stride_h <= 0 || p.stride_w <= 0)
    fail("conv2d: stride must be positive, got (", p.stride_h, ", ", p.stride_w, ")");
  if (p.dilation_h <= 0 || p.dilation_w <= 0)
    fail("conv2d: dilation must be positive, got (", p.dilation_h, ", ", p.dilation_w, ")");
  if (p.pad_top < 0 || p.pad_bottom < 0 || p.pad_left < 0 || p.pad_right < 0)
    fail("conv2d: padding must be non-negative, got (top ", p.pad_top, ", bottom ", p.pad_bottom, ", left ",
         p.pad_left, ", right ", p.pad_right, ")");
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
  check_conv_channels("conv2d", x, w, bias, p.groups, "H, W");
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

Conv2dShape conv2d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                             const Conv2dParams& p) {
  const Conv2dShape s = conv2d_shape(x, w, bias, p);
  check_shape(dy, {s.N, s.K, s.Ho, s.Wo}, "conv2d grad_output");
  return s;
}

ConvAlgo conv2d_resolve_algo(const Conv2dShape& s, ConvAlgo requested) {
  if (requested == ConvAlgo::Winograd) return conv2d_winograd_eligible(s) ? requested : ConvAlgo::Im2col;
  if (requested != ConvAlgo::Auto) return requested;
  // Measured on the development machine (docs/architecture.md): im2col + GEMM
  // wins everywhere except depthwise-like grouped convolutions, whose
  // per-group GEMMs have one or two rows and columns and spend their time in
  // call overhead; there the direct kernel is about 2x faster. First layers
  // (C = 1..4) also go to im2col for now: the portable direct kernel loses to
  // it by 2-5x until the vectorised small-C kernel exists.
  if (s.groups > 1 && s.c_per_group() * s.k_per_group() <= 4) return ConvAlgo::Direct;
  // Winograd F(4x4, 3x3) does 2.25x fewer multiplications per output than the
  // GEMM but pays transforms and, per call, the transformed weights (36 K C
  // floats): it lost to im2col below 8 channels and when a call has few tiles
  // for its weights (batch-1 7x7x512, 4 tiles: 0.5-0.65x; 2x7x7x512, 8 tiles:
  // 0.8x), and won 1.3-3x from 16 tiles up (batch-1 14x14x256: 1.5x at 2
  // threads; measured, docs/performance.md). Its float32 error is
  // 4-7x im2col's, far inside what training tolerates (tests/test_winograd.py).
  // A tile is 4x4 outputs for 36 products per channel pair: on planes
  // under 3x3 most of each tile is outside the plane (a 1x1 plane uses 1
  // output of 16: 4x the multiplications of im2col), so it also needs
  // Ho * Wo >= 6 * tiles per image (at most 1.5x im2col's 9 per output).
  if (conv2d_winograd_eligible(s) && s.C >= 8 && s.K >= 8) {
    const i64 per_image = ((s.Ho + 3) / 4) * ((s.Wo + 3) / 4);
    if (s.N * per_image >= 16 && s.Ho * s.Wo >= 6 * per_image) return ConvAlgo::Winograd;
  }
  return ConvAlgo::Im2col;
}

ConvAlgo conv2d_resolve_fwd_algo(const Conv2dShape& s, ConvAlgo requested) {
  const ConvAlgo algo = conv2d_resolve_algo(s, requested);
  if (requested != ConvAlgo::Auto || algo != ConvAlgo::Im2col || !conv2d_direct_blocked_eligible(s)) return algo;
  // Measured against im2col + GEMM (batch 1 and 16, 1 and 2 threads;
  // docs/performance.md): the direct kernel wins where the GEMM's 32-pixel
  // columns are poorly used or its panel copy dominates, and loses on
  // larger planes (by 10-19% on 28x28 outputs) and on 1x1 kernels (which
  // im2col runs as a plain GEMM, nothing to copy; the tile's transposed
  // write then costs more than the GEMM's):
  //  * small planes: 8x8 outputs or fewer (7x7x512: 1.19x at batch 1 and
  //    1.06x at batch 16), or 16x16 or fewer with one or two images (14x14
  //    outputs at batch 1: 1.09-1.23x);
  //  * first layers with large kernels on few channels (the 7x7 stride-2
  //    stem on RGB: 1.28x at batch 1, 1.11x at batch 16);
  // but only with output rows of 7 or more: a tile holds one row's pixels,
  // and rows of 1-4 leave most accumulators idle (a CIFAR ResNet-18's
  // stride-2 layers at batch 32, 2x2 and 1x1 outputs: 0.55-0.57x).
  // AVX2's tiles hold 6 outputs of a row (16 registers): there only the
  // first-layer case won (the stem: 1.35-1.43x at batch 1 and 16; 7x7 and
  // 14x14 planes ran at 0.81-0.91x im2col), so small planes need the
  // AVX-512 tiles of 7 or 14.
  if (s.kh * s.kw == 1 || s.Wo < 7) return algo;
  const i64 P = s.out_plane();
  const bool small_plane = (P <= 64 || (s.N <= 2 && P <= 256)) && conv2d_direct_blocked_row_tile(s) >= 7;
  const bool wide_first_layer = s.C <= 4 && s.kh * s.kw >= 25;
  return small_plane || wide_first_layer ? ConvAlgo::Direct : algo;
}

namespace {
// The forward of the Direct algorithm: the channel-blocked kernel where it
// is eligible, else the portable loops (grouped and depthwise convolutions).
void fwd_direct(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep, int nt) {
  if (conv2d_direct_blocked_eligible(s)) return conv2d_fwd_direct_blocked(y, x, w, s, ep, nt);
  conv2d_fwd_direct(y, x, w, s, ep, nt);
}

// Kernel taps that read only padding, for every output, add nothing to y and
// get nothing from dy: they cost multiplications by zero and nothing else.
// On small planes that is most of the work (a 3x3 convolution padded by 1 on
// a 1x1 plane, a CIFAR ResNet's last stage, is a 1x1 convolution doing 9x the
// multiplications), so each pass runs on the kernel window cropped to its
// live taps: the same outputs, exactly (the dead taps' products were zeros).

// Whether tap i (of an axis with input `size`, `out` outputs) reads the input
// for some output o: 0 <= o * stride + i * dilation - pad < size.
bool tap_live(i64 i, i64 size, i64 out, i64 stride, i64 pad, i64 dilation) {
  const i64 at_first_output = i * dilation - pad;
  const i64 o = at_first_output >= 0 ? 0 : (stride - 1 - at_first_output) / stride;  // first o reaching row 0
  return o < out && o * stride + at_first_output < size;
}

// The live taps of one axis as [first, last]; `first` stays 0 when cropping
// the front would need negative padding (possible with dilation > 1).
void live_tap_range(i64 k, i64 size, i64 out, i64 stride, i64& pad, i64 dilation, i64& first, i64& last) {
  first = 0, last = k - 1;
  while (first < last && !tap_live(first, size, out, stride, pad, dilation)) ++first;
  while (last > first && !tap_live(last, size, out, stride, pad, dilation)) --last;
  if (pad - first * dilation < 0) first = 0;
  pad -= first * dilation;
}

// A convolution restricted to the live taps of its kernel window: `shape`
// has the cropped kernel and the padding that keeps every output where it
// was; the window starts at tap (h0, w0) of the full kernel.
struct TapCrop {
  Conv2dShape shape;
  i64 h0, w0;
};

// The crop when some tap is dead, else nothing.
std::optional<TapCrop> crop_dead_taps(const Conv2dShape& s) {
  TapCrop c{s, 0, 0};
  i64 h1, w1;
  live_tap_range(s.kh, s.H, s.Ho, s.stride_h, c.shape.pad_top, s.dilation_h, c.h0, h1);
  live_tap_range(s.kw, s.W, s.Wo, s.stride_w, c.shape.pad_left, s.dilation_w, c.w0, w1);
  c.shape.kh = h1 - c.h0 + 1, c.shape.kw = w1 - c.w0 + 1;
  if (c.shape.kh == s.kh && c.shape.kw == s.kw) return std::nullopt;
  return c;
}

// Copies the cropped window between weights of the full kernel (K, C/groups,
// kh, kw) and of the crop (K, C/groups, kh', kw'), in either direction. The
// full weights are read whole (every cache line holds some live tap), so the
// copy runs on all threads: for 512x512x3x3 that is 9.4 MB per pass.
enum class CropCopy { FullToCrop, CropToFull };
void copy_cropped_taps(float* crop, float* full, const Conv2dShape& s, const TapCrop& c, CropCopy dir) {
  const i64 filters = s.K * s.c_per_group(), kh = c.shape.kh, kw = c.shape.kw;
  const i64 crop_size = kh * kw, full_size = s.kh * s.kw, first = c.h0 * s.kw + c.w0;
  parallel_items(filters, threads_for_work(filters, full_size, get_num_threads()), Schedule::kStatic,
                 [&](i64 f, int) {
                   float* cropped = crop + f * crop_size;
                   float* window = full + f * full_size + first;
                   for (i64 i = 0; i < kh; ++i)
                     for (i64 j = 0; j < kw; ++j) {
                       if (dir == CropCopy::FullToCrop)
                         cropped[i * kw + j] = window[i * s.kw + j];
                       else
                         window[i * s.kw + j] = cropped[i * kw + j];
                     }
                 });
}

// The crop's weights in scratch from the buffer cache (no page faults per call).
CachedFloats cropped_weights(const float* w, const Conv2dShape& s, const TapCrop& c) {
  CachedFloats out(static_cast<std::size_t>(s.K * s.c_per_group() * c.shape.kh * c.shape.kw));
  copy_cropped_taps(out.get(), const_cast<float*>(w), s, c, CropCopy::FullToCrop);
  return out;
}
}  // namespace

ConvAlgo conv2d_algo_for(const Conv2dShape& s, ConvAlgo requested) {
  const auto crop = crop_dead_taps(s);
  return conv2d_resolve_fwd_algo(crop ? crop->shape : s, requested);
}

namespace {
// The forward on weights as given (packed per call), dead taps cropped first.
void fwd_unprepared(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                    ConvAlgo algo, int nt) {
  if (const auto crop = crop_dead_taps(s))
    return fwd_unprepared(y, x, cropped_weights(w, s, *crop).get(), crop->shape, ep, algo, nt);
  switch (conv2d_resolve_fwd_algo(s, algo)) {
    case ConvAlgo::Direct: return fwd_direct(y, x, w, s, ep, nt);
    case ConvAlgo::Winograd: return conv2d_fwd_winograd(y, x, w, s, ep, nt);
    default: return conv2d_fwd_im2col(y, x, w, s, ep, nt);
  }
}
}  // namespace

void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s, ConvAlgo algo,
                bool relu) {
  if (s.N == 0) return;
  fwd_unprepared(y, x, w, s, ConvEpilogue{b, nullptr, relu}, algo, get_num_threads());
}

PreparedConv2d::PreparedConv2d(const Shape& w_shape, const float* w, const Shape* b_shape, const float* b,
                               const Conv2dParams& p, ConvAlgo algo)
    : w_shape_(w_shape), p_(p), algo_(algo) {
  // Checks the weight, bias and hyper-parameters once, on the smallest input
  // the kernel fits (conv2d_shape checks strides and dilations first).
  if (w_shape.size() != 4) fail("conv2d: expected weight of shape (K, C/groups, kh, kw), got ", shape_str(w_shape));
  checked_numel(w_shape, "conv2d weight");
  const i64 C = std::max<i64>(1, checked_mul(w_shape[1], std::max<i64>(1, p.groups), "conv2d"));
  const i64 H = checked_add(checked_mul(std::max<i64>(0, w_shape[2] - 1), std::max<i64>(1, p.dilation_h), "conv2d"),
                            1, "conv2d");
  const i64 W = checked_add(checked_mul(std::max<i64>(0, w_shape[3] - 1), std::max<i64>(1, p.dilation_w), "conv2d"),
                            1, "conv2d");
  conv2d_shape({1, C, H, W}, w_shape, b_shape, p);
  w_.assign(w, w + checked_numel(w_shape, "conv2d weight"));
  if (b) b_.assign(b, b + w_shape[0]);
}

Conv2dShape PreparedConv2d::shape(const Shape& x) const {
  const Shape bias_shape{w_shape_[0]};
  return conv2d_shape(x, w_shape_, has_bias() ? &bias_shape : nullptr, p_);
}

namespace {
// The packed weights held in `slot`, first (re)built under the lock when
// missing or no longer current; the caller keeps its copy of the pointer, so
// a later rebuild by another thread cannot free weights still being read.
template <class Packed, class IsCurrent, class Build>
std::shared_ptr<const Packed> current_packed(std::mutex& mu, std::shared_ptr<const Packed>& slot,
                                             IsCurrent is_current, Build build) {
  std::lock_guard<std::mutex> lock(mu);
  if (!slot || !is_current(*slot)) slot = std::make_shared<const Packed>(build());
  return slot;
}
}  // namespace

void PreparedConv2d::forward(float* y, const float* x, const Conv2dShape& s, const float* residual, bool relu) const {
  if (s.N == 0) return;
  const int nt = get_num_threads();
  const ConvEpilogue ep{has_bias() ? b_.data() : nullptr, residual, relu};
  // Packed weights are for the full kernel: a crop (small planes only) runs
  // unprepared on its cropped weights, still far cheaper than the dead taps.
  if (crop_dead_taps(s)) return fwd_unprepared(y, x, w_.data(), s, ep, algo_, nt);
  switch (resolve(s)) {
    case ConvAlgo::Direct: {
      if (!conv2d_direct_blocked_eligible(s)) return conv2d_fwd_direct(y, x, w_.data(), s, ep, nt);
      const auto packed = current_packed(mu_, direct_, [&](const DirectBlockedWeights& p) {
        return conv2d_direct_blocked_packed_current(p, s);
      }, [&] { return conv2d_direct_blocked_pack_weights(w_.data(), s, nt); });
      return conv2d_fwd_direct_blocked(y, x, w_.data(), s, ep, nt, packed.get());
    }
    case ConvAlgo::Winograd: {
      const auto packed = current_packed(mu_, winograd_, [&](const WinogradPackedWeights& p) {
        return conv2d_winograd_packed_current(p, s);
      }, [&] { return conv2d_winograd_pack_weights(w_.data(), s, nt); });
      return conv2d_fwd_winograd(y, x, w_.data(), s, ep, nt, packed.get());
    }
    default: {
      const auto packed = current_packed(mu_, im2col_, [&](const Im2colPackedWeights& p) {
        return same_gemm_layout(p.plan, conv2d_im2col_plan(s));
      }, [&] { return conv2d_im2col_pack_weights(w_.data(), s, nt); });
      return conv2d_fwd_im2col(y, x, w_.data(), s, ep, nt, packed.get());
    }
  }
}

i64 PreparedConv2d::packed_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  i64 bytes = 0;
  if (winograd_) bytes += static_cast<i64>(winograd_->u.size() * sizeof(float));
  if (direct_) bytes += static_cast<i64>(direct_->w.size() * sizeof(float));
  if (im2col_)
    for (const PackedA& a : im2col_->groups) bytes += a.bytes();
  return bytes;
}

void conv2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo) {
  if (s.N == 0) return;
  if (const auto crop = crop_dead_taps(s))
    return conv2d_bwd_data(dx, dy, cropped_weights(w, s, *crop).get(), crop->shape, algo);
  const int nt = get_num_threads();
  switch (conv2d_resolve_algo(s, algo)) {
    case ConvAlgo::Direct: return conv2d_bwd_data_direct(dx, dy, w, s, nt);
    // falls back to im2col itself when the flipped-weights forward is not eligible
    case ConvAlgo::Winograd: return conv2d_bwd_data_winograd(dx, dy, w, s, nt);
    default: return conv2d_bwd_data_im2col(dx, dy, w, s, nt);
  }
}

void conv2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                       ConvAlgo algo) {
  const Span gw = floats(dw, s.K * s.c_per_group() * s.kh * s.kw, "grad_weight");
  const Span gb = floats(db, s.K, "grad_bias");
  const Span g = floats(dy, s.N * s.K * s.Ho * s.Wo, "grad_output"), in = floats(x, s.N * s.C * s.H * s.W, "input");
  check_disjoint(gw, g), check_disjoint(gw, in);
  check_disjoint(gb, g), check_disjoint(gb, in), check_disjoint(gb, gw);
  if (s.N == 0) return;
  if (const auto crop = crop_dead_taps(s)) {
    // The dead taps' gradients are sums of dy times padding: they stay as they are.
    const CachedFloats dw_crop = cropped_weights(dw, s, *crop);
    conv2d_bwd_weight(dw_crop.get(), db, dy, x, crop->shape, algo);
    copy_cropped_taps(dw_crop.get(), dw, s, *crop, CropCopy::CropToFull);
    return;
  }
  const int nt = get_num_threads();
  switch (conv2d_resolve_algo(s, algo)) {
    case ConvAlgo::Direct: return conv2d_bwd_weight_direct(dw, db, dy, x, s, nt);
    case ConvAlgo::Winograd: return conv2d_bwd_weight_winograd(dw, db, dy, x, s, nt);
    default: return conv2d_bwd_weight_im2col(dw, db, dy, x, s, nt);
  }
}

namespace {
// (size - 1) stride - 2 pad + dilation (k - 1) + output_padding + 1, overflow-checked; may be <= 0.
i64 transposed_output_size(i64 size, i64 k, i64 stride, i64 pad, i64 dilation, i64 output_padding) {
  const char* what = "conv_transpose2d output";
  i64 r = checked_add(checked_mul(size - 1, stride, what), checked_mul(dilation, k - 1, what), what);
  r = checked_add(r, checked_add(output_padding, 1, what), what);
  return r - checked_mul(pad, 2, what);  // both non-negative: no overflow
}
}  // namespace

Conv2dShape conv_transpose2d_shape(const Shape& x, const Shape& w, const Shape* bias,
                                   const ConvTranspose2dParams& p) {
  const char* op = "conv_transpose2d";
  if (x.size() != 4) fail(op, ": expected input of shape (N, C_in, H, W), got ", shape_str(x));
  if (w.size() != 4) fail(op, ": expected weight of shape (C_in, C_out/groups, kh, kw), got ", shape_str(w));
  if (p.stride_h <= 0 || p.stride_w <= 0)
    fail(op, ": stride must be positive, got (", p.stride_h, ", ", p.stride_w, ")");
  if (p.dilation_h <= 0 || p.dilation_w <= 0)
    fail(op, ": dilation must be positive, got (", p.dilation_h, ", ", p.dilation_w, ")");
  if (p.pad_h < 0 || p.pad_w < 0) fail(op, ": padding must be non-negative, got (", p.pad_h, ", ", p.pad_w, ")");
  if (p.output_padding_h < 0 || p.output_padding_w < 0)
    fail(op, ": output_padding must be non-negative, got (", p.output_padding_h, ", ", p.output_padding_w, ")");
  if (p.groups <= 0) fail(op, ": groups must be positive, got ", p.groups);
  // PyTorch's rule: an output_padding row beyond the stride would be a row no input reaches
  // through any tap (unless the dilation spreads the taps that far).
  if ((p.output_padding_h >= p.stride_h && p.output_padding_h >= p.dilation_h) ||
      (p.output_padding_w >= p.stride_w && p.output_padding_w >= p.dilation_w))
    fail(op, ": output_padding must be smaller than either stride or dilation, got output_padding=(",
         p.output_padding_h, ", ", p.output_padding_w, "), stride=(", p.stride_h, ", ", p.stride_w, "), dilation=(",
         p.dilation_h, ", ", p.dilation_w, ")");
  checked_numel(x, "conv_transpose2d input");
  checked_numel(w, "conv_transpose2d weight");
  if (w[0] <= 0 || w[1] <= 0 || w[2] <= 0 || w[3] <= 0)
    fail(op, ": weight must have positive sizes, got ", shape_str(w));
  if (w[0] % p.groups != 0) fail(op, ": groups=", p.groups, " must divide the input channels; weight ", shape_str(w));
  if (x[1] != w[0])
    fail(op, ": expected input of shape (N, ", w[0], ", H, W) for weight ", shape_str(w), ", got ", shape_str(x));
  if (x[2] <= 0 || x[3] <= 0) fail(op, ": input planes must be non-empty, got ", shape_str(x));
  const i64 c_out = checked_mul(w[1], p.groups, op);
  if (bias && (*bias != Shape{c_out})) fail(op, ": expected bias of shape (", c_out, ",), got ", shape_str(*bias));
  const i64 Ho = transposed_output_size(x[2], w[2], p.stride_h, p.pad_h, p.dilation_h, p.output_padding_h);
  const i64 Wo = transposed_output_size(x[3], w[3], p.stride_w, p.pad_w, p.dilation_w, p.output_padding_w);
  if (Ho <= 0 || Wo <= 0)
    fail(op, ": output size (", Ho, ", ", Wo, ") is not positive: input ", shape_str(x), ", weight ", shape_str(w),
         ", stride (", p.stride_h, ", ", p.stride_w, "), padding (", p.pad_h, ", ", p.pad_w, "), dilation (",
         p.dilation_h, ", ", p.dilation_w, "), output_padding (", p.output_padding_h, ", ", p.output_padding_w, ")");
  // The convolution this is the adjoint of. Its output has H + output_padding / stride rows: one more
  // than x only when output_padding >= stride (allowed with a larger dilation), and the extra one is
  // the output_padding slack, which no input reaches: x is its first H rows (kernels take Ho as given).
  Conv2dShape s = conv2d_shape({x[0], c_out, Ho, Wo}, w, nullptr,
                               Conv2dParams{p.stride_h, p.stride_w, p.pad_h, p.pad_h, p.pad_w, p.pad_w, p.dilation_h,
                                            p.dilation_w, p.groups});
  assert(s.Ho >= x[2] && s.Wo >= x[3]);
  s.Ho = x[2], s.Wo = x[3];
  return s;
}

Conv2dShape conv_transpose2d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                                       const ConvTranspose2dParams& p) {
  const Conv2dShape s = conv_transpose2d_shape(x, w, bias, p);
  check_shape(dy, {s.N, s.C, s.H, s.W}, "conv_transpose2d grad_output");
  return s;
}

void conv_transpose2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                          ConvAlgo algo) {
  conv2d_bwd_data(y, x, w, s, algo);
  if (b) channel_bias_add(y, b, s.N, s.C, s.in_plane(), get_num_threads());
}

void conv_transpose2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo) {
  conv2d_fwd(dx, dy, w, nullptr, s, algo, false);
}

void conv_transpose2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                                 ConvAlgo algo) {
  // Checked here with the transposed convolution's names (conv2d_bwd_weight would call x "grad_output").
  const Span gw = floats(dw, s.K * s.c_per_group() * s.kh * s.kw, "grad_weight");
  const Span gb = floats(db, s.C, "grad_bias");
  const Span g = floats(dy, s.N * s.C * s.H * s.W, "grad_output"), in = floats(x, s.N * s.K * s.Ho * s.Wo, "input");
  check_disjoint(gw, g), check_disjoint(gw, in);
  check_disjoint(gb, g), check_disjoint(gb, in), check_disjoint(gb, gw);
  conv2d_bwd_weight(dw, nullptr, x, dy, s, algo);
  if (db) channel_bias_grad(db, dy, s.N, s.C, s.in_plane());
}

}  // namespace pycnn::ops
