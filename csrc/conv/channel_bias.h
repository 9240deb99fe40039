// A per-channel bias on NCHW planes, for the passes whose GEMM has no bias
// epilogue: the transposed convolution's forward (conv2d's backward-data)
// and its bias gradient. channel_bias.cpp.
#pragma once
#include "runtime/common.h"

namespace pycnn {

// y (N, C, plane) += b[c], in place.
void channel_bias_add(float* y, const float* b, i64 N, i64 C, i64 plane, int num_threads);
// db[c] += the sum of dy's (n, c) planes, image by image: the same sums for
// every thread count (accumulates; one thread: a bias has few channels).
void channel_bias_grad(float* db, const float* dy, i64 N, i64 C, i64 plane);

}  // namespace pycnn
