#include "ops/gemm.h"

#include "gemm/gemm.h"
#include "runtime/parallel.h"

namespace pycnn::ops {

SgemmShape sgemm_shape(const Shape& a, const Shape& b, bool trans_a, bool trans_b, const Shape* c, float beta) {
  if (a.size() != 2 || b.size() != 2) fail("sgemm: expected 2-D arrays, got ", shape_str(a), " and ", shape_str(b));
  const i64 M = trans_a ? a[1] : a[0], K = trans_a ? a[0] : a[1];
  const i64 Kb = trans_b ? b[1] : b[0], N = trans_b ? b[0] : b[1];
  if (K != Kb) fail("sgemm: inner dimensions differ: op(a) is (", M, ", ", K, "), op(b) is (", Kb, ", ", N, ")");
  checked_numel({M, N}, "sgemm output");
  if (c)
    check_shape(*c, {M, N}, "sgemm c");
  else if (beta != 0.0f)
    fail("sgemm: beta != 0 needs c");
  return {M, N, K, a[1], b[1], trans_a, trans_b};
}

void sgemm(float* c, const float* a, const float* b, const SgemmShape& s, float alpha, float beta, bool relu) {
  const Span out = floats(c, s.M * s.N, "c");
  check_disjoint(out, floats(a, s.M * s.K, "a"));
  check_disjoint(out, floats(b, s.K * s.N, "b"));
  pycnn::sgemm(s.trans_a, s.trans_b, s.M, s.N, s.K, alpha, a, s.lda, b, s.ldb, beta, c, s.N, get_num_threads(), relu);
}

}  // namespace pycnn::ops
