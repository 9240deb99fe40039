// The plan of one im2col panel for convolutions of horizontal stride 1 (or 2,
// when the ISA's copy supports it), shared between the
// generic packer (conv2d_im2col.cpp) and the per-ISA copy kernels
// (im2col_panel__avx2.cpp, im2col_panel__avx512.cpp), their prototypes and
// the table the packer picks them from.
//
// A panel holds `width` consecutive output pixels (the GEMM's NR columns) for
// kc depth rows r = (c, i, j), tap = (i, j). Its pixels are cut into runs
// along output rows; within a run, every depth row reads one input row
// contiguously. The panel's lanes form two vector registers of `half` lanes
// each. For every tap, the plan lists the masked loads that build the two
// registers of a depth row: a load reads the input plane at `offset` (lane L
// of the register at offset + stride * L) into the lanes of `mask` only, and
// leaves the others zero. With stride 2, `mask` marks the input elements read
// (bit 2L for lane L, over the 2 * half elements from offset on). Loads of different runs cover disjoint lanes, so a depth
// row is the OR of its tap's loads; padding lanes (and rows of padding) have
// no load and stay zero. All index arithmetic happens once per panel here,
// not once per depth row in the kernel, and a plan does not depend on the
// image: convolution builds one per panel position once per call and reuses
// it for every image (`x` is passed to the copy).
//
// Plain data only: this header is included by files compiled for different
// ISAs, so it must not define any function (see runtime/dispatch.h).
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

struct ColPanelPlan {
  static constexpr int kMaxTaps = 64;    // kh * kw
  static constexpr int kMaxSide = 16;    // kh and kw each
  static constexpr int kMaxRuns = 32;    // runs of a panel of <= 32 lanes
  static constexpr int kMaxLoads = 512;  // over all taps
  struct Load {
    i64 offset;          // from the channel plane's start; may point before it (masked-off lanes are not read)
    std::uint32_t mask;  // lanes of the register this load fills
  };
  i64 lines;        // pixels of the panel the plan was made for
  i64 stride;       // the convolution's horizontal stride: 1 or 2
  i64 plane_size;   // H * W
  i64 taps;         // kh * kw
  // tap t's loads: loads[begin[t] .. split[t]) fill the low register,
  // loads[split[t] .. begin[t + 1]) the high one
  std::int32_t begin[kMaxTaps + 1];
  std::int32_t split[kMaxTaps];
  const Load* loads;  // begin[taps] of them, held by the plan's owner (compact when cached per call)
};

// A plan and room for the most loads one can have: for plans built where
// they are used (the per-call cache keeps only the loads each plan needs).
struct ColPanelPlanStorage {
  ColPanelPlan plan;
  ColPanelPlan::Load loads[ColPanelPlan::kMaxLoads];
};

// Writes depth rows [k0, k0 + kc) of the panel of input x (the first input
// plane of the image and group): dst[k * width + L] for all `width` lanes
// (padding lanes as zeros); width <= 2 * the ISA's half.
using ColPanelCopy = void (*)(float* dst, i64 width, i64 k0, i64 kc, const float* x, const ColPanelPlan& plan);

struct Im2colPanelKernels {
  ColPanelCopy copy;  // null: the portable loops pack
  int half;           // lanes of one of the copy's two registers
  int max_stride;     // the largest horizontal stride its plans may have
};
// The table for the active ISA (conv2d_im2col.cpp).
const Im2colPanelKernels& im2col_panel_kernels();

namespace avx2 {
void im2col_panel_copy(float* dst, i64 width, i64 k0, i64 kc, const float* x, const ColPanelPlan& plan);
}
namespace avx512 {
void im2col_panel_copy(float* dst, i64 width, i64 k0, i64 kc, const float* x, const ColPanelPlan& plan);
}

}  // namespace pycnn
