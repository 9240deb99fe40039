// Checked entry of dropout (kernel in csrc/dropout/).
#pragma once
#include <cstdint>

#include "dropout/dropout.h"
#include "ops/check.h"

namespace pycnn::ops {

// x of shape `x`; the mask holds one byte per dropped/kept unit: numel(x)
// units (elementwise) or N*C units (channel-wise: Dropout1d/2d).
struct DropoutShape {
  i64 units, plane;  // plane: the floats each mask byte covers
};
DropoutShape dropout_shape(const Shape& x, const Shape& mask, bool channelwise);
// The backward: dy checked against the forward's mask (the message names dy).
DropoutShape dropout_bwd_shape(const Shape& dy, const Shape& mask, bool channelwise);
// out = in * (mask ? scale : 0); out may alias in.
void dropout_apply(float* out, const float* in, const uint8_t* mask, const DropoutShape& s, float scale);

}  // namespace pycnn::ops
