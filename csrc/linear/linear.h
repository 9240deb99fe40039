// Fully connected layer y = x w^T + b on the GEMM (linear.cpp):
//   fwd:        y  = x w^T + b        y overwritten; b may be null; relu fused into the output write
//   bwd_data:   dx = dy w             dx overwritten
//   bwd_weight: dw += dy^T x, db += column sums of dy   accumulate; db may be null
#pragma once
#include "runtime/common.h"

namespace pycnn {

// x (N, in_features), w (out_features, in_features), b (out_features,).
struct LinearShape {
  i64 N, in_features, out_features;
};

void linear_fwd(float* y, const float* x, const float* w, const float* b, const LinearShape& s, bool relu, int nt);
void linear_bwd_data(float* dx, const float* dy, const float* w, const LinearShape& s, int nt);
void linear_bwd_weight(float* dw, float* db, const float* dy, const float* x, const LinearShape& s, int nt);

}  // namespace pycnn
