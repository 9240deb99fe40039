// 2-D convolution, NCHW, weights (K, C/groups, kh, kw) as in PyTorch.
// Three passes per algorithm, named as oneDNN names them:
//   fwd:        y  = conv(x, w) + b          y overwritten; b may be null;
//                                            relu: y = max(y, 0) fused into the output write
//   bwd_data:   dx = conv_transpose(dy, w)   dx overwritten
//   bwd_weight: dw += corr(x, dy), db += sum(dy)   accumulate; db may be null
// Kernels trust the shape (checked in ops.cpp) and only assert.
#pragma once
#include "shapes.h"

namespace pycnn {

// im2col + GEMM: one image (and group) at a time, the column buffer is
// per-thread and never spans the batch.
void conv2d_fwd_im2col(float* y, const float* x, const float* w, const float* b,
                       const Conv2dShape& s, bool relu, int num_threads);
void conv2d_bwd_data_im2col(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads);
void conv2d_bwd_weight_im2col(float* dw, float* db, const float* dy, const float* x,
                              const Conv2dShape& s, int num_threads);

// Direct convolution: no column buffer, loops vectorised along the output row.
void conv2d_fwd_direct(float* y, const float* x, const float* w, const float* b,
                       const Conv2dShape& s, bool relu, int num_threads);
void conv2d_bwd_data_direct(float* dx, const float* dy, const float* w, const Conv2dShape& s,
                            int num_threads);
void conv2d_bwd_weight_direct(float* dw, float* db, const float* dy, const float* x,
                              const Conv2dShape& s, int num_threads);

}  // namespace pycnn
