// Reductions shared by kernels (compiled once, for the baseline ISA).
#pragma once
#include "runtime/common.h"

namespace pycnn {

// Sum of x[0..n) in float, with 16 independent partial sums (a fixed order,
// so the result is the same on every call). Written out by hand: GCC's
// `omp simd reduction` kept its accumulator in memory, a store-to-load
// chain that made the conv bias gradient 40% of a first layer's dW pass.
float sum_floats(const float* x, i64 n);

// Dot product of x[0..n) and y[0..n), same structure and fixed order.
float dot_floats(const float* x, const float* y, i64 n);

}  // namespace pycnn
