// Checked entries of the convolution family (kernels in csrc/conv/).
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conv/conv2d.h"
#include "conv/conv3d.h"
#include "ops/check.h"

namespace pycnn::ops {

// Winograd: F(4x4, 3x3) (conv2d_winograd.cpp), all three passes of 3x3,
// stride-1, dilation-1, ungrouped convolutions; any other shape runs im2col
// even when Winograd is asked for (conv2d_resolve_algo says so), and so does
// a backward-data whose flipped-weights forward needs negative padding
// (padding > 2 on some side). Direct: the portable loops (conv2d_direct.cpp)
// for every pass, except the forward of ungrouped convolutions with
// horizontal stride 1 or 2 under an ISA with tile kernels (AVX-512, AVX2), which
// runs the channel-blocked kernel (conv2d_direct_blocked.cpp). Auto's rule:
// conv2d_resolve_algo, and conv2d_resolve_fwd_algo for the forward.
enum class ConvAlgo { Auto, Im2col, Direct, Winograd };
ConvAlgo parse_conv_algo(const std::string& name);  // "auto" | "im2col" | "direct" | "winograd"
const char* conv_algo_name(ConvAlgo a);

struct Conv2dParams {
  i64 stride_h, stride_w;
  i64 pad_top, pad_bottom, pad_left, pad_right;
  i64 dilation_h, dilation_w;
  i64 groups;
};
// x (N, C, H, W), w (K, C/groups, kh, kw), optional bias (K,).
// The channel, group and bias checks of a convolution's shapes (x: (N, C, ...spatial), w: (K, C/groups,
// ...kernel); `spatial` names x's spatial axes in the message), shared by conv2d and conv3d.
void check_conv_channels(const char* op, const Shape& x, const Shape& w, const Shape* bias, i64 groups,
                         const char* spatial);
Conv2dShape conv2d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv2dParams& p);
// The same, and dy (N, K, Ho, Wo) checked against it.
Conv2dShape conv2d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                             const Conv2dParams& p);
// The algorithm that runs the backward passes of this shape: what `auto`
// resolves to (docs/architecture.md), or the requested one, except that
// Winograd on a shape it cannot do resolves to im2col.
ConvAlgo conv2d_resolve_algo(const Conv2dShape& s, ConvAlgo requested);
// The forward's: the same, except that `auto` takes the channel-blocked
// direct kernel (Direct) where it is eligible and measured faster than
// im2col + GEMM (conv2d_direct_blocked.cpp; the rule in conv.cpp).
ConvAlgo conv2d_resolve_fwd_algo(const Conv2dShape& s, ConvAlgo requested);
// The algorithm the forward of shape s runs: every pass first crops the
// kernel window to the taps that read the input for some output (the others
// multiply padding only; conv.cpp), then resolves the algorithm on that.
ConvAlgo conv2d_algo_for(const Conv2dShape& s, ConvAlgo requested);

// y (N, K, Ho, Wo) overwritten; relu: y = max(conv + b, 0) fused into the output write.
void conv2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s, ConvAlgo algo,
                bool relu);

// A convolution for inference: its weights and bias copied once (after
// whatever the caller folded into them, e.g. a BatchNorm), and packed for
// the algorithm each call resolves to, once, on first use. Packed weights
// are tied to the ISA they were packed for and rebuilt when another ISA is
// active; they do not depend on the thread count. Thread-safe: concurrent
// forwards share the packed weights (a rebuild swaps them under a lock,
// calls already running keep the old ones alive).
class PreparedConv2d {
 public:
  PreparedConv2d(const Shape& w_shape, const float* w, const Shape* b_shape, const float* b, const Conv2dParams& p,
                 ConvAlgo algo);
  // The shape of a forward on input x (checked as conv2d_shape).
  Conv2dShape shape(const Shape& x) const;
  ConvAlgo resolve(const Conv2dShape& s) const { return conv2d_algo_for(s, algo_); }
  // y (N, K, Ho, Wo) overwritten with conv(x) + bias (+ residual, of y's
  // shape, may be x) (then ReLU when relu).
  void forward(float* y, const float* x, const Conv2dShape& s, const float* residual, bool relu) const;
  const Shape& weight_shape() const { return w_shape_; }
  bool has_bias() const { return !b_.empty(); }
  // Bytes of packed weights held now (introspection and tests).
  i64 packed_bytes() const;

 private:
  Shape w_shape_;
  std::vector<float> w_, b_;
  Conv2dParams p_;
  ConvAlgo algo_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<const Im2colPackedWeights> im2col_;
  mutable std::shared_ptr<const WinogradPackedWeights> winograd_;
  mutable std::shared_ptr<const DirectBlockedWeights> direct_;
};
// dx (N, C, H, W) overwritten.
void conv2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo);
// dw and db (null: skipped) accumulated; neither may share memory with dy, x or each other.
void conv2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                       ConvAlgo algo);

// Transposed convolution (PyTorch's conv_transpose2d): x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw),
// bias (C_out,) -> y (N, C_out, Ho, Wo), Ho = (H - 1) stride - 2 pad + dilation (kh - 1) + output_padding + 1.
// It is the adjoint of the convolution returned by conv_transpose2d_shape: input (N, C_out, Ho, Wo), weight w
// read as (K = C_in, C/groups = C_out/groups, kh, kw) (the same array: groups need no reshuffle), output
// (N, C_in, H, W) (the output_padding rows and columns are stride slack: that convolution does not reach
// them). So the forward is that convolution's backward-data, the input gradient its forward, the weight
// gradient its weight gradient with x and dy swapped; every algorithm of conv2d serves.
struct ConvTranspose2dParams {
  i64 stride_h, stride_w;
  i64 pad_h, pad_w;  // symmetric, as PyTorch's
  i64 output_padding_h, output_padding_w;
  i64 dilation_h, dilation_w;
  i64 groups;
};
Conv2dShape conv_transpose2d_shape(const Shape& x, const Shape& w, const Shape* bias, const ConvTranspose2dParams& p);
// The same, and dy (N, C_out, Ho, Wo) checked against it.
Conv2dShape conv_transpose2d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                                       const ConvTranspose2dParams& p);
// y (N, C_out, Ho, Wo) overwritten (+ b per channel when b is not null).
void conv_transpose2d_fwd(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s,
                          ConvAlgo algo);
// dx (N, C_in, H, W) overwritten.
void conv_transpose2d_bwd_data(float* dx, const float* dy, const float* w, const Conv2dShape& s, ConvAlgo algo);
// dw and db (null: skipped) accumulated; neither may share memory with dy, x or each other.
void conv_transpose2d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                                 ConvAlgo algo);

// 3-D convolution (PyTorch's conv3d): x (N, C, T, H, W), w (K, C/groups, kt, kh, kw), bias (K,) -> y (N, K,
// To, Ho, Wo). Runs on the 2-D convolution of the output frames' stacked input frames (conv/conv3d.h), a
// chunk of frames at a time (conv3d.cpp): every algorithm of conv2d serves, `algo` picks it for the planes.
struct Conv3dParams {
  i64 stride_t, stride_h, stride_w;
  i64 pad_front, pad_back, pad_top, pad_bottom, pad_left, pad_right;
  i64 dilation_t, dilation_h, dilation_w;
  i64 groups;
};
Conv3dShape conv3d_shape(const Shape& x, const Shape& w, const Shape* bias, const Conv3dParams& p);
// The same, and dy (N, K, To, Ho, Wo) checked against it.
Conv3dShape conv3d_bwd_shape(const Shape& dy, const Shape& x, const Shape& w, const Shape* bias,
                             const Conv3dParams& p);
// y overwritten; relu: y = max(conv + b, 0) fused into the output write.
void conv3d_fwd(float* y, const float* x, const float* w, const float* b, const Conv3dShape& s, ConvAlgo algo,
                bool relu);
// dx (N, C, T, H, W) overwritten.
void conv3d_bwd_data(float* dx, const float* dy, const float* w, const Conv3dShape& s, ConvAlgo algo);
// dw and db (null: skipped) accumulated; neither may share memory with dy, x or each other.
void conv3d_bwd_weight(float* dw, float* db, const float* dy, const float* x, const Conv3dShape& s, ConvAlgo algo);
// For tests: the scratch (floats) a chunk of frames may use from now on, so that small clips run in
// several chunks; <= 0 restores the default. Returns the previous value.
i64 set_conv3d_chunk_floats(i64 floats);

}  // namespace pycnn::ops
