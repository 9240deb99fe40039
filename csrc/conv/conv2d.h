// 2-D convolution, NCHW, weights (K, C/groups, kh, kw) as in PyTorch.
// Three passes per algorithm, named as oneDNN names them:
//   fwd:        y  = epilogue(conv(x, w))    y overwritten (ConvEpilogue: + bias, + residual,
//                                            then ReLU, all in the output write)
//   bwd_data:   dx = conv_transpose(dy, w)   dx overwritten
//   bwd_weight: dw += corr(x, dy), db += sum(dy)   accumulate; db may be null
// Kernels trust the shape (checked in ops/conv.cpp) and only assert.
#pragma once
#include <vector>

#include "gemm/gemm.h"
#include "runtime/common.h"
#include "runtime/window.h"

namespace pycnn {

// x (N, C, H, W) * w (K, C/groups, kh, kw) -> y (N, K, Ho, Wo).
// Padding may be asymmetric ('same' with an even kernel): kernels only need
// the top/left padding, the bottom/right padding is implied by Ho/Wo (taps
// falling outside the input read zero).
struct Conv2dShape {
  i64 N, C, H, W;
  i64 K, kh, kw;
  i64 stride_h, stride_w;
  i64 pad_top, pad_left;
  i64 dilation_h, dilation_w;
  i64 groups;
  i64 Ho, Wo;

  i64 c_per_group() const { return C / groups; }
  i64 k_per_group() const { return K / groups; }
  // Rows of the im2col matrix of one group: (C/groups) * kh * kw.
  i64 col_rows() const { return c_per_group() * kh * kw; }
  i64 out_plane() const { return Ho * Wo; }
  i64 in_plane() const { return H * W; }
};

// The rows one kernel tap (i, j) connects: output row oh reads input row ih,
// and along it output columns [lo, hi) read input columns ow * stride + off
// (the other columns, and rows whose ih is outside the input, read padding).
struct TapRow {
  i64 oh, ih, lo, hi, off, stride;
};
// Calls row(TapRow) for every output row of tap (i, j) that reads the input:
// the index arithmetic of the direct kernels and of col2im, written once.
template <class Row>
inline void for_each_tap_row(const Conv2dShape& s, i64 i, i64 j, Row&& row) {
  TapRow r{0, 0, 0, 0, j * s.dilation_w - s.pad_left, s.stride_w};
  valid_cols(r.off, s.stride_w, s.W, s.Wo, r.lo, r.hi);
  for (r.oh = 0; r.oh < s.Ho; ++r.oh) {
    r.ih = r.oh * s.stride_h - s.pad_top + i * s.dilation_h;
    if (r.ih >= 0 && r.ih < s.H) row(static_cast<const TapRow&>(r));
  }
}

// What a forward adds to the convolution in its output write, in this order:
// bias[k] (null: none), the residual (an array of y's shape, null: none; it
// may be the input x, but not y), then max(., 0) when relu. Inference fuses
// a ResNet block's shortcut add and ReLU into its last convolution this way.
struct ConvEpilogue {
  const float* bias = nullptr;
  const float* residual = nullptr;
  bool relu = false;
};

// Forward weights in the layout an algorithm's inner loop reads, built once
// for many calls (ops::PreparedConv2d) instead of once per call. Each is
// tied to the GEMM kernels (ISA) it was built for: `plan` says which, and a
// holder rebuilds it when the active ISA's plan differs
// (same_gemm_layout).
struct Im2colPackedWeights {
  GemmPlan plan;                // for_product(K/groups, col_rows())
  std::vector<PackedA> groups;  // W_g (K/groups x col_rows()) per group
};
struct WinogradPackedWeights {
  GemmPlan plan;         // for_product(K, C)
  int lanes;             // the transform kernels' lanes when built
  std::vector<float> u;  // U = G g G^T, 36 positions, in PackedA's layout (conv2d_winograd.cpp)
};
// Whether data packed under plan `a` can be read by the microkernel of plan `b`.
inline bool same_gemm_layout(const GemmPlan& a, const GemmPlan& b) {
  return a.kernels == b.kernels && a.mr == b.mr && a.kc == b.kc && a.nr == b.nr;
}

// im2col + GEMM: one image (and group) at a time, the column buffer is
// per-thread and never spans the batch. `packed` (null: w is packed per
// call) must come from conv2d_im2col_pack_weights for this shape's geometry
// and the active ISA.
void conv2d_fwd_im2col(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                       int num_threads, const Im2colPackedWeights* packed = nullptr);
Im2colPackedWeights conv2d_im2col_pack_weights(const float* w, const Conv2dShape& s, int num_threads);
GemmPlan conv2d_im2col_plan(const Conv2dShape& s);
void conv2d_bwd_data_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads);
void conv2d_bwd_weight_im2col(float* dw, float* db, const float* dy, const float* x,
                              const Conv2dShape& s, int num_threads);

// db += the sums of dy's planes, image by image (conv2d_im2col.cpp).
void conv2d_bias_grad(float* db, const float* dy, const Conv2dShape& s);

// For stride 1 (not pointwise), backward-data is the forward convolution t
// of dy with the weights flipped in both spatial axes and their two channel
// axes swapped (weights (C, K/groups, kh, kw) for groups == 1), padded by
// dilation*(k-1) - pad: fills t and returns true when every side's padding
// allows it (conv2d_im2col.cpp).
bool conv2d_bwd_data_as_forward(const Conv2dShape& s, Conv2dShape& t);

// Winograd F(4x4, 3x3) (conv2d_winograd.cpp): 3x3 kernels, stride 1,
// dilation 1, groups 1, any size and padding. conv2d_winograd_eligible says
// whether a forward shape is one of those (the kernels assert it).
// bwd_data runs the forward on the flipped-weights shape above when that
// shape is eligible, else im2col; bwd_weight computes dU = sum dM V^T per
// position and dw += G^T dU G (im2col when not eligible).
bool conv2d_winograd_eligible(const Conv2dShape& s);
void conv2d_fwd_winograd(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                         int num_threads, const WinogradPackedWeights* packed = nullptr);
WinogradPackedWeights conv2d_winograd_pack_weights(const float* w, const Conv2dShape& s, int num_threads);
// Whether `packed` was built for the active ISA's kernels and this shape's channels.
bool conv2d_winograd_packed_current(const WinogradPackedWeights& packed, const Conv2dShape& s);
void conv2d_bwd_data_winograd(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                              int num_threads);
void conv2d_bwd_weight_winograd(float* dw, float* db, const float* dy, const float* x, const Conv2dShape& s,
                                int num_threads);

// Channel-blocked direct forward (conv2d_direct_blocked.cpp, conv/direct_tile.h):
// what a Direct forward runs where it is eligible (groups 1, horizontal
// stride 1 or 2, an ISA with tile kernels: AVX-512 or AVX2); weights packed
// per block of lanes * vectors output channels, depth-major. `packed` (null:
// packed per call) must be current for the shape (same vectors and lanes).
struct DirectBlockedWeights {
  int vectors = 0, lanes = 0;
  std::vector<float> w;
};
bool conv2d_direct_blocked_eligible(const Conv2dShape& s);
int conv2d_direct_blocked_vectors(const Conv2dShape& s);
// The most outputs of one row a tile holds for shape s (14 or 7 on AVX-512, 6 on AVX2).
int conv2d_direct_blocked_row_tile(const Conv2dShape& s);
DirectBlockedWeights conv2d_direct_blocked_pack_weights(const float* w, const Conv2dShape& s, int num_threads);
bool conv2d_direct_blocked_packed_current(const DirectBlockedWeights& packed, const Conv2dShape& s);
void conv2d_fwd_direct_blocked(float* y, const float* x, const float* w, const Conv2dShape& s,
                               const ConvEpilogue& ep, int num_threads, const DirectBlockedWeights* packed = nullptr);

// Direct convolution: no column buffer, loops vectorised along the output row.
void conv2d_fwd_direct(float* y, const float* x, const float* w, const Conv2dShape& s, const ConvEpilogue& ep,
                       int num_threads);
void conv2d_bwd_data_direct(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads);
void conv2d_bwd_weight_direct(float* dw, float* db, const float* dy, const float* x,
                              const Conv2dShape& s, int num_threads);

}  // namespace pycnn
