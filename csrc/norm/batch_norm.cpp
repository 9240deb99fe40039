// Batch normalisation over x viewed as (N, C, L): L = H*W for BatchNorm2d,
// the length for BatchNorm1d on (N, C, L), 1 for BatchNorm1d on (N, C).
// Statistics are per channel over the N*L values of that channel.
//
// Training forward: two passes in double (mean, then the centred sum of
// squares) so a large mean does not cancel the variance; y overwritten,
// save_mean/save_rstd (C,) overwritten for backward, running stats updated in
// place with PyTorch's rule r = (1 - momentum) r + momentum * stat, the
// running variance unbiased (M / (M - 1)).
// Eval forward: the running statistics, no saved state.
// Backward: dx overwritten, dweight/dbias accumulated (+=).
//
// Threads split channels: every channel's sums run on one thread in a fixed
// order, so results are bitwise identical for any thread count.
#include "norm/batch_norm.h"

#include <cmath>

#include "runtime/parallel.h"

namespace pycnn {
namespace {

inline int channel_threads(i64 C, i64 per_channel, int nt) { return threads_for_work(C, per_channel, nt); }

// Channel c of y = (x - mean) * rstd * weight + bias (then ReLU), computed
// as y = x * scale + shift; shared by the training and evaluation passes.
void normalize_channel(float* y, const float* x, i64 N, i64 C, i64 L, i64 c, double mean, double rstd,
                       const float* weight, const float* bias, bool relu) {
  const double w = weight ? weight[c] : 1.0;
  const float scale = static_cast<float>(w * rstd);
  const float shift = static_cast<float>((bias ? bias[c] : 0.0) - mean * w * rstd);
  for (i64 n = 0; n < N; ++n) {
    const float* xc = x + (n * C + c) * L;
    float* yc = y + (n * C + c) * L;
    if (relu) {
#pragma omp simd
      for (i64 l = 0; l < L; ++l) {
        const float v = xc[l] * scale + shift;
        yc[l] = v > 0.0f ? v : (v != v ? v : 0.0f);
      }
    } else {
#pragma omp simd
      for (i64 l = 0; l < L; ++l) yc[l] = xc[l] * scale + shift;
    }
  }
}

}  // namespace

void batch_norm_fwd_train(float* y, float* save_mean, float* save_rstd, float* running_mean, float* running_var,
                          const float* x, const float* weight, const float* bias, const BatchNormShape& shape,
                          double eps, double momentum, bool relu, int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
  assert(N * L > 0);
  const i64 M = N * L;
#pragma omp parallel for num_threads(channel_threads(C, 3 * M, nt)) schedule(static)
  for (i64 c = 0; c < C; ++c) {
    double sum = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xc = x + (n * C + c) * L;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (i64 l = 0; l < L; ++l) s += xc[l];
      sum += s;
    }
    const double mean = sum / static_cast<double>(M);
    double sq = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xc = x + (n * C + c) * L;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (i64 l = 0; l < L; ++l) {
        const double d = xc[l] - mean;
        s += d * d;
      }
      sq += s;
    }
    const double var = sq / static_cast<double>(M);
    const double rstd = 1.0 / std::sqrt(var + eps);
    save_mean[c] = static_cast<float>(mean);
    save_rstd[c] = static_cast<float>(rstd);
    if (running_mean) {
      const double unbiased = M > 1 ? sq / static_cast<double>(M - 1) : var;
      running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
      running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
    normalize_channel(y, x, N, C, L, c, mean, rstd, weight, bias, relu);
  }
}

void batch_norm_fwd_eval(float* y, const float* x, const float* weight, const float* bias,
                         const float* running_mean, const float* running_var, const BatchNormShape& shape, double eps,
                         bool relu, int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
#pragma omp parallel for num_threads(channel_threads(C, N * L, nt)) schedule(static)
  for (i64 c = 0; c < C; ++c) {
    const double rstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
    normalize_channel(y, x, N, C, L, c, running_mean[c], rstd, weight, bias, relu);
  }
}

// With xhat = (x - mean) * rstd and M = N * L:
//   dbias += sum(dy), dweight += sum(dy * xhat)
//   dx = w * rstd * (dy - sum(dy) / M - xhat * sum(dy * xhat) / M)
void batch_norm_bwd(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                    const float* save_mean, const float* save_rstd, const float* weight, const BatchNormShape& shape,
                    int nt) {
  const i64 N = shape.N, C = shape.C, L = shape.L;
  const i64 M = N * L;
  if (M == 0) return;
#pragma omp parallel for num_threads(channel_threads(C, 3 * M, nt)) schedule(static)
  for (i64 c = 0; c < C; ++c) {
    const float mean = save_mean[c];
    const double rstd = save_rstd[c];
    double sdy = 0.0, sdyx = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const float* xc = x + (n * C + c) * L;
      const float* dyc = dy + (n * C + c) * L;
      double a = 0.0, b = 0.0;
#pragma omp simd reduction(+ : a, b)
      for (i64 l = 0; l < L; ++l) {
        a += dyc[l];
        b += static_cast<double>(dyc[l]) * (xc[l] - mean);
      }
      sdy += a;
      sdyx += b;
    }
    const double sdy_xhat = sdyx * rstd;
    if (dbias) dbias[c] += static_cast<float>(sdy);
    if (dweight) dweight[c] += static_cast<float>(sdy_xhat);
    if (!dx) continue;
    const double w = weight ? weight[c] : 1.0;
    // dx = k * dy - k * sdy / M - k * rstd * sdy_xhat / M * (x - mean), k = w * rstd
    const double k = w * rstd;
    const float a = static_cast<float>(k);
    const float b = static_cast<float>(k * rstd * sdy_xhat / static_cast<double>(M));
    const float d0 = static_cast<float>(-k * sdy / static_cast<double>(M));
    for (i64 n = 0; n < N; ++n) {
      const float* xc = x + (n * C + c) * L;
      const float* dyc = dy + (n * C + c) * L;
      float* dxc = dx + (n * C + c) * L;
#pragma omp simd
      for (i64 l = 0; l < L; ++l) dxc[l] = a * dyc[l] - b * (xc[l] - mean) + d0;
    }
  }
}

}  // namespace pycnn
