// Sliding-window geometry shared by the convolution and pooling kernels.
// (Generic kernels only: files compiled for one ISA must not include this.)
#pragma once
#include <cstddef>
#include <vector>

#include "runtime/common.h"

namespace pycnn {

// Output columns [lo, hi) of a row of Wo whose input column ow*stride + off
// lies inside [0, W): the window positions a kernel tap (or pooling tap) at
// column offset `off` reads real input for, the rest reading padding.
inline void valid_cols(i64 off, i64 stride, i64 W, i64 Wo, i64& lo, i64& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / stride + 1;
  lo = lo < Wo ? lo : Wo;
  hi = hi < lo ? lo : (hi < Wo ? hi : Wo);
}

// PyTorch's adaptive-pooling windows along one axis: output i averages
// [floor(i*in/out), ceil((i+1)*in/out)). Computed once per call instead of
// once per plane (their integer divisions cost more than a small plane's
// sums: 32x512 planes of 1x1 took 0.35 ms).
struct AdaptiveWindows {
  std::vector<i64> begin, end;
  AdaptiveWindows(i64 in, i64 out) : begin(static_cast<std::size_t>(out)), end(static_cast<std::size_t>(out)) {
    for (i64 i = 0; i < out; ++i) begin[i] = (i * in) / out, end[i] = ((i + 1) * in + out - 1) / out;
  }
};

}  // namespace pycnn
