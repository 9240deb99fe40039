// BatchNorm's run kernels (batch_norm_runs.h) compiled for AVX512: the loops of
// batch_norm_runs.inc with this file's flags. Nothing here is inline or shared.
#include "norm/batch_norm_runs.h"

namespace pycnn::avx512 {
#include "norm/batch_norm_runs.inc"
}  // namespace pycnn::avx512
