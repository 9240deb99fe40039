// Winograd F(4x4, 3x3) convolution: the tile geometry shared between the
// driver (conv2d_winograd.cpp) and the per-ISA transform kernels
// (winograd_f4x3__avx2.cpp, winograd_f4x3__avx512.cpp), their prototypes and
// the table the driver picks them from.
//
// Transform points 0, 1, -1, 2, -1/2, inf, chosen over the usual
// 0, +-1, +-2, inf and over 0, +-1, +-1/2, inf: in a float32 simulation
// against float64 (tools/winograd_points.py) its max error is 2.5x lower at
// C = 16 and 64 and 3.5-4x lower at C = 256. Matrices:
//   B^T = [ 2  3 -4 -3  2  0 ]   G = [  1/2     0     0  ]   A^T = [ 1 1  1 1  1    0 ]
//         [ 0  2  5  1 -2  0 ]       [  1/6   1/6   1/6  ]         [ 0 1 -1 2 -1/2  0 ]
//         [ 0  2  1 -5  2  0 ]       [  1/6  -1/6   1/6  ]         [ 0 1  1 4  1/4  0 ]
//         [ 0 -1 -2  1  2  0 ]       [ 1/30  1/15  2/15  ]         [ 0 1 -1 8 -1/8  1 ]
//         [ 0 -2  1  2 -1  0 ]       [16/15 -8/15  4/15  ]
//         [ 0  2  3 -4 -3  2 ]       [  0     0    1/2   ]
// A tile's 4x4 outputs are Y = A^T [ (G g G^T) (.) (B^T d B) ] A for its 6x6
// input patch d (zeros outside the image) and each 3x3 filter g.
//
// Lanes: a transform kernel handles a group of up to `lanes` tiles at once,
// one tile per vector lane; WinogradLanes says where each lane's tile lies.
// Tiles of a group may come from different output rows and images (a group
// is a run of the batch's tiles in order), so every lane has its own offsets,
// relative to the group's base pointers.
//
// Plain data only: this header is included by files compiled for different
// ISAs, so it must not define any function (see runtime/dispatch.h).
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

struct WinogradLanes {
  static constexpr int kMaxLanes = 16;
  int lanes;  // tiles in the group (<= the kernel's lanes; the other lanes are zero / not written)
  // Input: lane l's patch element (i, j) is base[in_off[l] + i * W + j] when
  // bit l of in_mask[i * 6 + j] is set, else zero (padding, or no tile).
  std::int32_t in_off[kMaxLanes];
  std::uint32_t in_mask[36];
  // Output: lane l's output (r, c) goes to base[out_off[l] + r * Wo + c] for
  // r < out_rows[l], c < out_cols[l] (both 0 for a lane without a tile).
  std::int32_t out_off[kMaxLanes];
  std::int32_t out_rows[kMaxLanes];
  std::int32_t out_cols[kMaxLanes];
};

// Input transform of one lane group for channels [0, nc): channel c's patch
// is read from x + c * plane (row length W) and its 36 transformed values go
// to v[p * v_p + c * v_c + l] for p = 6 * i + j, all `lanes` lanes of the
// kernel (lanes without a tile as zeros). Overwrites v.
using WinogradInput = void (*)(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                               const WinogradLanes& g);
// Output transform of one lane group for output channels [0, nk): reads
// m[p * m_p + k * m_k + l], writes y + k * plane (row length Wo) as
// A^T M A + bias[k] + addend (bias and addend may be null; addend is read at
// y's offsets and may be y itself: a residual added in place), then
// max(., 0) when relu. Overwrites the tiles' outputs only.
using WinogradOutput = void (*)(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                                const float* bias, const float* addend, bool relu, const WinogradLanes& g);

// Weight transform of n <= 64 filters: filter l's taps are w[off[l] + q],
// q = 3 * i + j (w[off[l] + 8 - q] when flip: the filter rotated by 180
// degrees), and its 36 values U = G g G^T go to u[p * u_p + l]. Overwrites u.
using WinogradWeights = void (*)(float* u, i64 u_p, const float* w, const std::int32_t* off, int n, bool flip);

// The weight gradient's transforms, the adjoints of the output and weight
// transforms (winograd_f4x3_grad.inc):
// Output gradient of one lane group (`lanes` tiles, as the input transform)
// for output channels [0, nk): lane l's
// 4x4 tile of dy (zeros outside out_rows[l] x out_cols[l]; a lane without a
// tile gives zeros) read from dy + k * plane at out_off[l] (row length Wo),
// and dM = A dY A^T written to m[p * m_p + k * m_k + l]. Overwrites m.
using WinogradOutputGrad = void (*)(float* m, i64 m_p, i64 m_k, const float* dy, i64 plane, i64 Wo, i64 nk,
                                    const WinogradLanes& g);
// Weight gradient of n <= 64 filters: filter l's 36 values dU are
// du[p * du_p + l]; dg = G^T dU G is added to dw[off[l] + q], q = 3 * i + j.
using WinogradWeightsGrad = void (*)(float* dw, const std::int32_t* off, const float* du, i64 du_p, int n);

struct WinogradKernels {
  int lanes;  // tiles per group (a divisor of the GEMM's NR)
  WinogradInput input;
  WinogradOutput output;
  WinogradWeights weights;
  WinogradOutputGrad output_grad;
  WinogradWeightsGrad weights_grad;
};
// The table for the active ISA (conv2d_winograd.cpp).
const WinogradKernels& winograd_kernels();

#define PYCNN_WINOGRAD_GRAD_PROTOTYPES                                                                     \
  void winograd_f4x3_output_grad(float* m, i64 m_p, i64 m_k, const float* dy, i64 plane, i64 Wo, i64 nk, \
                                 const WinogradLanes& g);                                                 \
  void winograd_f4x3_weights_grad(float* dw, const std::int32_t* off, const float* du, i64 du_p, int n);

namespace scalar {
PYCNN_WINOGRAD_GRAD_PROTOTYPES
}  // namespace scalar
namespace avx2 {
PYCNN_WINOGRAD_GRAD_PROTOTYPES
void winograd_f4x3_input(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                         const WinogradLanes& g);
void winograd_f4x3_output(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                          const float* bias, const float* addend, bool relu, const WinogradLanes& g);
}  // namespace avx2
namespace avx512 {
PYCNN_WINOGRAD_GRAD_PROTOTYPES
void winograd_f4x3_weights(float* u, i64 u_p, const float* w, const std::int32_t* off, int n, bool flip);
void winograd_f4x3_input(float* v, i64 v_p, i64 v_c, const float* x, i64 plane, i64 W, i64 nc,
                         const WinogradLanes& g);
void winograd_f4x3_output(float* y, i64 plane, i64 Wo, const float* m, i64 m_p, i64 m_k, i64 nk,
                          const float* bias, const float* addend, bool relu, const WinogradLanes& g);
}  // namespace avx512

}  // namespace pycnn
