// Max pooling of one output row for any window (kh x kw, stride, padding),
// per ISA, and the table pool2d.cpp picks the kernel from. Used by the
// forward of every max pool except 2x2 / stride 2 with indices
// (max_pool_2x2.h), above all ResNet's 3x3 / stride 2 / padding 1.
//
// The rule is the portable loop's in pool2d.cpp, bit for bit: the window is
// scanned in row-major order with the padding as -inf, an element is taken
// when it is > the running maximum (the first maximum wins; +0 and -0 tie)
// or when it is a NaN (every NaN wins, so the last NaN is reported), and the
// output is the taken element itself (its sign of zero, its NaN payload).
// With indices, each output's index is h*W + w of that element. Without, the
// row of each window is folded first and the rows then in order: the same
// fold, bracketed differently, which the rule allows because it is
// associative (a fold over a sequence in order, whatever the grouping).
//
// Types and declarations only: the per-ISA files include this header, so it
// must not define any function (see runtime/dispatch.h).
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// One output row of one plane. pool2d.cpp calls the kernels only when every
// column index the row can form, (Wo + vector width) * stride + kw + W,
// fits comfortably in int32 (the kernels compute lane columns in int32).
struct MaxPoolRowArgs {
  const float* x;       // the input plane, H x W, row-major
  i64 W;                // input row length
  i64 Wo;               // outputs in the row
  i64 kw, stride, pad;  // the window along the row (pad <= kw / 2)
  i64 hb, he;           // the window's input rows, clipped to the plane: hb < he
};
// y[0, Wo) = the window maxima; idx non-null: idx[0, Wo) = their indices.
using MaxPoolRow = void (*)(float* y, std::int32_t* idx, const MaxPoolRowArgs& a);

struct MaxPoolRowKernels {
  MaxPoolRow fwd_row;  // null: the portable loops in pool2d.cpp
};
// The table for the active ISA (pool2d.cpp).
const MaxPoolRowKernels& max_pool_row_kernels();

namespace avx2 {
void max_pool_row(float* y, std::int32_t* idx, const MaxPoolRowArgs& a);
}
namespace avx512 {
void max_pool_row(float* y, std::int32_t* idx, const MaxPoolRowArgs& a);
}

}  // namespace pycnn
