// Fully connected layer on the SGEMM (see linear.h). The bias is broadcast
// into y before the GEMM accumulates onto it (beta = 1): the GEMM's
// epilogue adds per-row biases, and here the bias runs along columns.
#include "linear/linear.h"

#include "gemm/gemm.h"

namespace pycnn {

void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu, int nt) {
  if (s.N == 0 || s.out_features == 0) return;
  float beta = 0.0f;
  if (b) {
    for (i64 n = 0; n < s.N; ++n)
      for (i64 o = 0; o < s.out_features; ++o) y[n * s.out_features + o] = b[o];
    beta = 1.0f;
  }
  sgemm(false, true, s.N, s.out_features, s.in_features, 1.0f, x, s.in_features, w, s.in_features, beta, y,
        s.out_features, nt, relu);
}

void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s, int nt) {
  if (s.N == 0 || s.in_features == 0) return;
  sgemm(false, false, s.N, s.in_features, s.out_features, 1.0f, dy, s.out_features, w, s.in_features, 0.0f, dx,
        s.in_features, nt);
}

void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s, int nt) {
  if (s.N == 0) return;
  sgemm(true, false, s.out_features, s.in_features, s.N, 1.0f, dy, s.out_features, x, s.in_features, 1.0f, dw,
        s.in_features, nt);
  if (db)
    for (i64 n = 0; n < s.N; ++n)
      for (i64 o = 0; o < s.out_features; ++o) db[o] += dy[n * s.out_features + o];
}

}  // namespace pycnn
