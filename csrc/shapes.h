// Shape structs: the complete geometry of one op call, computed and checked
// once in ops.cpp, then passed to kernels that trust it (they only assert).
#pragma once
#include "common.h"

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

// Output columns [lo, hi) of a row of Wo whose input column ow*stride + off
// lies inside [0, W): the window positions a kernel tap (or pooling tap) at
// column offset `off` reads real input for, the rest reading padding.
// (Generic kernels only: files compiled for one ISA must not include this.)
inline void valid_cols(i64 off, i64 stride, i64 W, i64 Wo, i64& lo, i64& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
  lo = lo < Wo ? lo : Wo;
  hi = hi < lo ? lo : (hi < Wo ? hi : Wo);
}

// Max and average pooling over x (N, C, H, W) -> y (N, C, Ho, Wo).
// Padding is symmetric (PyTorch's pooling has no 'same').
struct Pool2dShape {
  i64 N, C, H, W;
  i64 kh, kw;
  i64 stride_h, stride_w;
  i64 pad_h, pad_w;
  i64 Ho, Wo;
};

}  // namespace pycnn
