// The Winograd F(4x4, 3x3) weight-gradient transforms (conv/winograd.h)
// compiled for AVX512: the loops of winograd_f4x3_grad.inc on 16 lanes with this
// file's flags. Nothing here is inline or shared.
#include <immintrin.h>

#include "conv/winograd.h"

namespace pycnn::avx512 {
namespace {
constexpr int kGradLanes = 16;
}  // namespace
#include "conv/winograd_f4x3_grad.inc"
}  // namespace pycnn::avx512
