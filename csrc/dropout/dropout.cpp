// Dropout's mask application, forward and backward alike:
//   out[i] = in[i] * (mask[i / plane] ? scale : 0)   (a multiply, so NaN stays NaN as in PyTorch)
// plane = 1 for elementwise Dropout, H*W (or L) for Dropout2d/1d, which
// drop whole channels. The mask (uint8, one byte per kept/dropped unit) is
// drawn in Python from pycnn's generator so manual_seed reproduces it;
// scale = 1 / (1 - p) (inverted dropout). out overwritten; may alias in.
#include "dropout/dropout.h"

#include "runtime/parallel.h"

namespace pycnn {

void dropout_apply(float* out, const float* in, const uint8_t* mask, i64 units, i64 plane, float scale,
                   int nt) {
  if (plane == 1) {
    parallel_ranges(units, threads_for_work(units, 1, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
      for (i64 i = lo; i < hi; ++i) out[i] = in[i] * (mask[i] ? scale : 0.0f);
    });
    return;
  }
  parallel_items(units, threads_for_work(units, plane, nt), Schedule::kStatic, [&](i64 u, int) {
    const float s = mask[u] ? scale : 0.0f;
    const float* src = in + u * plane;
    float* dst = out + u * plane;
#pragma omp simd
    for (i64 l = 0; l < plane; ++l) dst[l] = src[l] * s;
  });
}

}  // namespace pycnn
