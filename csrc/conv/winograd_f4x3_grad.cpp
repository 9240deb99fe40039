// The portable Winograd F(4x4, 3x3) weight-gradient transforms
// (conv/winograd.h): the loops of winograd_f4x3_grad.inc on 8 lanes with
// the baseline flags, the scalar ISA's table entries.
#include "conv/winograd.h"

namespace pycnn::scalar {
namespace {
constexpr int kGradLanes = 8;
}  // namespace
#include "conv/winograd_f4x3_grad.inc"
}  // namespace pycnn::scalar
