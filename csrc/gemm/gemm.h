// Single-precision GEMM, row-major (the cblas RowMajor convention):
//   C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C
// op(A) = A^T when trans_a (A is then stored K x M), likewise for B.
// beta == 0 means C is write-only: its old contents (even NaN) are ignored.
// relu applies max(C, 0) to the result (the fused epilogue of conv + ReLU).
// num_threads == 1 runs on the calling thread, so it is safe inside a
// parallel region; never call it with more threads from inside one.
#pragma once
#include "common.h"

namespace pycnn {

void sgemm(bool trans_a, bool trans_b, i64 M, i64 N, i64 K, float alpha,
           const float* A, i64 lda, const float* B, i64 ldb, float beta, float* C, i64 ldc,
           int num_threads, bool relu = false);

}  // namespace pycnn
