// The output tile of the channel-blocked direct forward (conv2d_direct_blocked.cpp),
// shared between its driver and the per-ISA tile kernels
// (direct_tile__avx512.cpp, direct_tile__avx2.cpp), their prototypes and
// the table the driver picks them from.
//
// A tile is `pixels` consecutive outputs of one output row times one block
// of lanes * vectors output channels (lanes: floats per vector register).
// Its accumulators hold, per pixel, the block's channels in vector lanes;
// every depth step r = (c, i, j) loads the block's weights at r (vectors
// registers) and multiplies them by each pixel's input value, broadcast straight from the (padded) input -- the
// input is never packed, and the pixels' inputs are `stride` floats apart
// along the row, so each broadcast is an FMA with a memory operand at a
// fixed offset. The tile then goes to the NCHW output transposed (pixels
// into lanes) with the epilogue: + bias[k], + residual, then ReLU.
//
// Plain data only: this header is included by files compiled for different
// ISAs, so it must not define any function (see runtime/dispatch.h).
#pragma once
#include "runtime/common.h"

namespace pycnn {

struct DirectTile {
  // Input: element (c, row, col) of the image's padded planes at
  // x[c * plane + row * ld + col]; `x` points at the tile's first pixel's
  // window origin (c = 0, kernel tap (0, 0)).
  const float* x;
  i64 plane, ld;
  i64 C, kh, kw;
  i64 row_step, col_step;  // input offsets between kernel rows (dilation_h * ld) and columns (dilation_w)
  // Weights of the block: depth r = (c * kh + i) * kw + j at w[r * lanes * vectors], channels in lanes
// (x and w point at the slice's first channel, C is the slice's channel count).
  const float* w;
  // Output: pixel t of channel k (k < channels, within the block) at
  // y[k * y_plane + t]; residual likewise (null: none), bias[k] (null: none).
  float* y;
  const float* residual;
  const float* bias;
  i64 y_plane;
  int channels;  // live channels of the block (<= lanes * vectors)
  bool relu;
  // Depth in slices (the block's weights of a slice of channels stay in L1
  // while every tile of a row batch reads them): the tile's running sums
  // wait in `partial` (pixels x lanes * vectors floats, pixel-major) between
  // slices. first: start from zero (else from partial); last: write the
  // output with the epilogue (else store the sums to partial).
  float* partial;
  bool first, last;
  // Lines to prefetch (into L2), one per depth step from `prefetch` on,
  // `prefetch_step` floats apart, `prefetch_count` of them (all inside the
  // weights): the next slice's weights, spread evenly over the batch's
  // tiles. Without it each slice's first tile waits for its weights from
  // memory while the other tiles of the batch need none.
  const float* prefetch;
  i64 prefetch_step, prefetch_count;
};

// Computes one tile of `pixels` outputs whose inputs are `stride` floats apart.
using DirectTileKernel = void (*)(const DirectTile& t, int pixels);

struct DirectTileKernels {
  // Tile kernels by input stride (1 or 2) and channel vectors (2 or 4); null:
  // this ISA has none (without the 2-vector ones the driver is not eligible).
  DirectTileKernel kernel[2][2];  // [stride - 1][vectors == 4]
  int max_pixels[2];              // per vectors choice: the most pixels a tile holds
  int lanes;                      // floats per vector
};
// The table for the active ISA (conv2d_direct_blocked.cpp).
const DirectTileKernels& direct_tile_kernels();

namespace avx2 {
void direct_tile_s1v2(const DirectTile& t, int pixels);
void direct_tile_s2v2(const DirectTile& t, int pixels);
}  // namespace avx2
namespace avx512 {
void direct_tile_s1v2(const DirectTile& t, int pixels);
void direct_tile_s1v4(const DirectTile& t, int pixels);
void direct_tile_s2v2(const DirectTile& t, int pixels);
void direct_tile_s2v4(const DirectTile& t, int pixels);
}  // namespace avx512

}  // namespace pycnn
