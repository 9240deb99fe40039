// Losses with mean reduction. Per-row (or per-chunk) partial sums are kept in
// double and added in a fixed order, so the loss is bitwise reproducible for
// any thread count.
#include "loss/loss.h"

#include <cmath>
#include <vector>

#include "runtime/parallel.h"

namespace pycnn {

double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, i64 N, i64 classes, int nt) {
  std::vector<double> row_loss(static_cast<std::size_t>(N));
  parallel_items(N, threads_for_work(N, classes, nt), Schedule::kStatic, [&](i64 n, int) {
    const float* z = logits + n * classes;
    float* p = probs + n * classes;
    // log-sum-exp around the row maximum: every exp argument is <= 0, so
    // logits of +-1e4 neither overflow nor lose the label's term.
    float m = z[0];
    for (i64 c = 1; c < classes; ++c) m = z[c] > m ? z[c] : m;
    double sum = 0.0;
    for (i64 c = 0; c < classes; ++c) {
      p[c] = std::exp(z[c] - m);
      sum += p[c];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (i64 c = 0; c < classes; ++c) p[c] *= inv;
    row_loss[n] = (std::log(sum) + m) - static_cast<double>(z[labels[n]]);
  });
  double total = 0.0;
  for (i64 n = 0; n < N; ++n) total += row_loss[n];
  return total / static_cast<double>(N);
}

void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, i64 N, i64 classes, float scale,
                       int nt) {
  const float f = scale / static_cast<float>(N);
  parallel_items(N, threads_for_work(N, classes, nt), Schedule::kStatic, [&](i64 n, int) {
    const float* p = probs + n * classes;
    float* d = dlogits + n * classes;
    for (i64 c = 0; c < classes; ++c) d[c] = p[c] * f;
    d[labels[n]] -= f;
  });
}

double mse_fwd(const float* pred, const float* target, i64 n) {
  // Blocks of float partial sums folded into a double keep it exact enough
  // while the inner loop still vectorises.
  constexpr i64 kBlock = 1024;
  double total = 0.0;
  for (i64 b = 0; b < n; b += kBlock) {
    const i64 e = b + kBlock < n ? b + kBlock : n;
    float s = 0.0f;
    for (i64 i = b; i < e; ++i) {
      const float d = pred[i] - target[i];
      s += d * d;
    }
    total += s;
  }
  return total / static_cast<double>(n);
}

void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale, int nt) {
  const float f = 2.0f * scale / static_cast<float>(n);
  parallel_ranges(n, threads_for_work(n, 1, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) dpred[i] = f * (pred[i] - target[i]);
  });
}

}  // namespace pycnn
