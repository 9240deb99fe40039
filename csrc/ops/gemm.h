// Checked entry of the plain SGEMM (kernel in csrc/gemm/).
#pragma once
#include "ops/check.h"

namespace pycnn::ops {

// c (M, N) = relu?(alpha * op(a) @ op(b) + beta * c), row-major.
struct SgemmShape {
  i64 M, N, K;
  i64 lda, ldb;
  bool trans_a, trans_b;
};
// a and b 2-D with agreeing inner dimensions; c (M, N) when given, and
// required when beta != 0.
SgemmShape sgemm_shape(const Shape& a, const Shape& b, bool trans_a, bool trans_b, const Shape* c, float beta);
// c may not share memory with a or b.
void sgemm(float* c, const float* a, const float* b, const SgemmShape& s, float alpha, float beta, bool relu);

}  // namespace pycnn::ops
