// Dropout's mask application (dropout.cpp), forward and backward alike.
#pragma once
#include <cstdint>

#include "runtime/common.h"

namespace pycnn {

// out[i] = in[i] * (mask[i / plane] ? scale : 0) over units * plane floats;
// out overwritten, may alias in.
void dropout_apply(float* out, const float* in, const uint8_t* mask, i64 units, i64 plane, float scale, int nt);

}  // namespace pycnn
