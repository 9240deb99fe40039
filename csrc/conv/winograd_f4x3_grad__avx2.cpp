// The Winograd F(4x4, 3x3) weight-gradient transforms (conv/winograd.h)
// compiled for AVX2: the loops of winograd_f4x3_grad.inc on 8 lanes with this
// file's flags. Nothing here is inline or shared.
#include <immintrin.h>

#include "conv/winograd.h"

namespace pycnn::avx2 {
namespace {
constexpr int kGradLanes = 8;
}  // namespace
#include "conv/winograd_f4x3_grad.inc"
}  // namespace pycnn::avx2
