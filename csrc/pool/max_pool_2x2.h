// The pooling family's per-ISA kernels: 2x2 / stride-2 max pooling of one
// pair of input rows, forward and backward, their prototypes and the table
// pool2d.cpp picks them from.
//
// Types and declarations only: the per-ISA files include this header, so it
// must not define any function (see runtime/dispatch.h).
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// Pools the input rows r0, r1 (r1 = r0 + W) into Wo outputs and their argmax
// (row0 = index of r0[0] in its plane).
using MaxPool2x2Row = void (*)(float* y, std::int32_t* idx, const float* r0, const float* r1, i64 Wo,
                               std::int32_t row0, std::int32_t W);
// Its backward for one row pair: writes d0/d1[0, 2*Wo) completely.
using MaxPool2x2BwdRow = void (*)(float* d0, float* d1, const float* g, const std::int32_t* idx,
                                  const float* relu_y, i64 Wo, std::int32_t row0, std::int32_t W);

struct MaxPool2x2Kernels {
  MaxPool2x2Row fwd_row;     // null: the portable loop in pool2d.cpp
  MaxPool2x2BwdRow bwd_row;  // null: zero-fill and scatter in pool2d.cpp
};
// The table for the active ISA (pool2d.cpp).
const MaxPool2x2Kernels& max_pool_2x2_kernels();

namespace avx2 {
void max_pool_2x2_row(float* y, std::int32_t* idx, const float* r0, const float* r1, i64 Wo, std::int32_t row0,
                      std::int32_t W);
}
namespace avx512 {
void max_pool_2x2_row(float* y, std::int32_t* idx, const float* r0, const float* r1, i64 Wo, std::int32_t row0,
                      std::int32_t W);
void max_pool_2x2_bwd_row(float* d0, float* d1, const float* g, const std::int32_t* idx, const float* relu_y,
                          i64 Wo, std::int32_t row0, std::int32_t W);
}  // namespace avx512

}  // namespace pycnn
