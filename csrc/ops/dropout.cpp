#include "ops/dropout.h"

#include "runtime/parallel.h"

namespace pycnn::ops {

DropoutShape dropout_shape(const Shape& x, const Shape& mask, bool channelwise) {
  const i64 n = checked_numel(x, "dropout input");
  if (!channelwise) {
    check_shape(mask, x, "dropout mask");
    return {n, 1};
  }
  if (x.size() < 2) fail("dropout: channel-wise dropout expects input of shape (N, C, ...), got ", shape_str(x));
  check_shape(mask, {x[0], x[1]}, "dropout mask");
  const i64 units = x[0] * x[1];
  return {units, units > 0 ? n / units : 0};
}

DropoutShape dropout_bwd_shape(const Shape& dy, const Shape& mask, bool channelwise) {
  // The mask is the forward's record of the shape: the gradient is what can be wrong.
  if (!channelwise) {
    check_shape(dy, mask, "dropout_backward grad_output (the mask's shape)");
    return dropout_shape(dy, mask, false);
  }
  if (mask.size() == 2 && (dy.size() < 2 || dy[0] != mask[0] || dy[1] != mask[1]))
    fail("dropout_backward: expected grad_output of shape (", mask[0], ", ", mask[1],
         ", ...) for the channel-wise mask ", shape_str(mask), ", got ", shape_str(dy));
  return dropout_shape(dy, mask, true);
}

void dropout_apply(float* out, const float* in, const uint8_t* mask, const DropoutShape& s, float scale) {
  pycnn::dropout_apply(out, in, mask, s.units, s.plane, scale, get_num_threads());
}

}  // namespace pycnn::ops
