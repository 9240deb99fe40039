// Softmax along one axis of an array viewed as (outer, D, inner): the axis has
// D elements at stride `inner`. Forward overwrites y (exp of x minus the
// slice's maximum, divided by the sum: finite for any finite x; NaN
// propagates); backward overwrites dx = y * (dy - sum(dy * y)). Sums in double.
// Threads split the outer*inner independent slices.
#include <cmath>

#include "activation/activation.h"
#include "runtime/parallel.h"

namespace pycnn {

void softmax_fwd(float* y, const float* x, i64 outer, i64 D, i64 inner, int nt) {
  const i64 slices = outer * inner;
  parallel_items(slices, threads_for_work(slices, 4 * D, nt), Schedule::kStatic, [&](i64 s, int) {
    const i64 o = s / inner, i = s % inner;
    const float* xs = x + o * D * inner + i;
    float* ys = y + o * D * inner + i;
    float m = xs[0];
    for (i64 d = 1; d < D; ++d) {
      const float v = xs[d * inner];
      m = (v > m || v != v) ? v : m;  // NaN wins, so the whole slice becomes NaN
    }
    double sum = 0.0;
    for (i64 d = 0; d < D; ++d) {
      const float e = std::exp(xs[d * inner] - m);
      ys[d * inner] = e;
      sum += e;
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (i64 d = 0; d < D; ++d) ys[d * inner] *= inv;
  });
}

void softmax_bwd(float* dx, const float* dy, const float* y, i64 outer, i64 D, i64 inner, int nt) {
  const i64 slices = outer * inner;
  parallel_items(slices, threads_for_work(slices, 3 * D, nt), Schedule::kStatic, [&](i64 s, int) {
    const i64 o = s / inner, i = s % inner;
    const i64 base = o * D * inner + i;
    double dot = 0.0;
    for (i64 d = 0; d < D; ++d) dot += static_cast<double>(dy[base + d * inner]) * y[base + d * inner];
    const float fdot = static_cast<float>(dot);
    for (i64 d = 0; d < D; ++d) dx[base + d * inner] = y[base + d * inner] * (dy[base + d * inner] - fdot);
  });
}

}  // namespace pycnn
