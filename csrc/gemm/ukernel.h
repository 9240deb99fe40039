// The GEMM family's per-ISA kernels: their contracts, their prototypes (one
// per ISA file), and the table the GEMM picks them from (built in gemm.cpp).
//
// Types and declarations only: the per-ISA files include this header, so it
// must not define any function (see runtime/dispatch.h).
#pragma once
#include "runtime/common.h"

namespace pycnn {

// GEMM microkernel: computes the MR x NR tile acc = sum_k a[k*MR + i] * b[k*NR + j]
// from packed panels (zero-padded to full MR/NR), then writes the top-left
// mr x nr corner of it to C (row-major, leading dimension ldc):
//   C = alpha * acc + beta * C   (beta == 0: C is write-only, never read)
//       + row_bias[i]            (when row_bias is not null; i < mr)
//   then C = max(C, 0) when relu.
using GemmUkernel = void (*)(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr,
                             float alpha, float beta, const float* row_bias, bool relu);

// dst[k * width + l] = src[l * ld + k] for l < lines (zeros up to width),
// k < kc: packs an operand whose depth runs along memory.
using TransposePack = void (*)(float* dst, i64 width, const float* src, i64 ld, i64 lines, i64 kc);

struct GemmKernels {
  int mr, nr;  // the main tile
  GemmUkernel ukernel;
  // A shorter tile (mr_short x nr) the GEMM uses when it pads clearly fewer
  // rows of M (GemmPlan::for_product); 0 / null when the ISA has none.
  int mr_short;
  GemmUkernel ukernel_short;
  TransposePack transpose_pack;  // null: portable loops
};

// The table for the active ISA (gemm.cpp).
const GemmKernels& gemm_kernels();

namespace scalar {
void gemm_ukernel_6x16(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                       float beta, const float* row_bias, bool relu);
}
namespace avx2 {
void gemm_ukernel_6x16(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                       float beta, const float* row_bias, bool relu);
void transpose_pack(float* dst, i64 width, const float* src, i64 ld, i64 lines, i64 kc);
}  // namespace avx2
namespace avx512 {
void gemm_ukernel_12x32(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                        float beta, const float* row_bias, bool relu);
void gemm_ukernel_8x32(i64 kc, const float* a, const float* b, float* c, i64 ldc, i64 mr, i64 nr, float alpha,
                       float beta, const float* row_bias, bool relu);
void transpose_pack(float* dst, i64 width, const float* src, i64 ld, i64 lines, i64 kc);
}  // namespace avx512

}  // namespace pycnn
