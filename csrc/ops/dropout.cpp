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

void dropout_apply(float* out, const float* in, const uint8_t* mask, const DropoutShape& s, float scale) {
  pycnn::dropout_apply(out, in, mask, s.units, s.plane, scale, get_num_threads());
}

}  // namespace pycnn::ops
