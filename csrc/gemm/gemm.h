// Single-precision GEMM, row-major (the cblas RowMajor convention):
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, then max(C, 0) if relu
// op(A) = A^T when trans_a (A is then stored K x M), likewise for B.
// beta == 0 means C is write-only: its old contents (even NaN) are ignored.
//
// Two entry points:
//  * sgemm: plain matrices, threaded over blocks of C.
//  * gemm_packed: the single-threaded core, for callers that supply their own
//    panel packers (convolution packs im2col panels straight from the image,
//    never building the column matrix) or reuse a PackedA across many
//    products (convolution weights, packed once per call, not once per image).
#pragma once
#include <vector>

#include "gemm/ukernel.h"
#include "runtime/common.h"

namespace pycnn {

void sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, float alpha, const float* A, i64 lda,
           const float* B, i64 ldb, float beta, float* C, i64 ldc, int num_threads, bool relu = false);

// Owner of the per-thread scratch the GEMM packs into (runtime/parallel.h).
struct GemmScratch;

// The kernel table, microkernel and cache blocking one product uses, fixed
// at its start (so a PackedA and the microkernel that reads it always agree).
struct GemmPlan {
  const GemmKernels* kernels;
  GemmUkernel ukernel;  // an mr x nr tile
  i64 mr, nr, kc, nc, mc;
  // For a product with M rows and depth K: the ISA's tile height (12 rows on
  // AVX-512; 8 where that pads M by a tenth less: M = 64 runs 8-row tiles,
  // M = 96, 128 or 9 12-row), and depth slices of equal size.
  static GemmPlan for_product(i64 M, i64 K);
};

// A panel packer writes `lines` lines -- rows of op(A), or columns of op(B) --
// starting at line l0, over depths [k0, k0 + kc), as consecutive panels of
// `width` lines, each kc groups of `width` floats: line l0 + q*width + l,
// depth k0 + k goes to dst[q * width * kc + k * width + l]. Lines of the last
// panel beyond `lines` must be written as zeros. One call packs a whole block
// (all MR panels of an A block, all NR panels of a B block), so a packer can
// share work between panels (the im2col packers do).
using PanelPacker = void (*)(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* ctx);

struct GemmOperand {
  PanelPacker pack;
  const void* ctx;
  i64 line_offset;  // added to l0 on every call: lets threads take slices
};

// A row-major matrix and the packers for it as operand A (lines = rows of
// op(A)) or operand B (lines = columns of op(B)).
struct MatrixView {
  const float* p;
  i64 ld;
  bool trans;
};
void pack_matrix_rows(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* view);
void pack_matrix_cols(float* dst, i64 l0, i64 lines, i64 k0, i64 kc, i64 width, const void* view);
inline GemmOperand operand_a(const MatrixView* v) { return {pack_matrix_rows, v, 0}; }
inline GemmOperand operand_b(const MatrixView* v) { return {pack_matrix_cols, v, 0}; }

// op(A) (M x K) packed once in the microkernel's layout: per KC slice, per MR
// row panel, kc groups of MR floats. Allocate outside parallel regions.
class PackedA {
 public:
  // Packs on up to num_threads threads (the packer must be thread-safe: all
  // of pycnn's are); call it outside parallel regions.
  PackedA(const GemmPlan& plan, i64 M, i64 K, GemmOperand a, int num_threads = 1);
  const float* panel(i64 pc, i64 ir) const;  // slice starting at depth pc, rows from ir
  i64 rows() const { return M_; }
  i64 depth() const { return K_; }
  i64 bytes() const { return static_cast<i64>(data_.size() * sizeof(float)); }

 private:
  i64 M_, K_, m_padded_, kc_;
  std::vector<float> data_;
};

// Floats of scratch one thread needs for gemm_packed (allocate it outside
// parallel regions and reuse it across calls).
i64 gemm_workspace_floats(const GemmPlan& plan, i64 M, i64 N, i64 K, bool a_prepacked);

// C = alpha * op(A) op(B) + beta * C (+ row_bias[i] on row i, then ReLU) on
// the calling thread. A comes from `a_packed` when given -- its rows from
// a.line_offset on (a multiple of plan.mr), so threads can take row blocks
// of one PackedA -- else from the operand `a`. The bias is added in the microkernel's epilogue, so a
// convolution's output is written once instead of filled with it first.
void gemm_packed(const GemmPlan& plan, i64 M, i64 N, i64 K, const PackedA* a_packed, GemmOperand a,
                 GemmOperand b, float alpha, float beta, float* C, i64 ldc, bool relu, float* workspace,
                 const float* row_bias = nullptr);

}  // namespace pycnn
