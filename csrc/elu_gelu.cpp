// ELU and GELU and their gradients, elementwise over n floats (any shape).
// Forward overwrites y; backward overwrites dx and takes the *input* x
// (GELU's derivative needs x; ELU's uses x so that alpha may be any sign).
// Threads only for arrays large enough to amortise waking them.
#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace pycnn {
namespace {

inline int elementwise_threads(i64 n, int nt) { return threads_for_work(n, 8, nt); }

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286535588f;  // sqrt(2 / pi)
constexpr float kGeluCoef = 0.044715f;

}  // namespace

// PyTorch's ELU: x if x > 0 else alpha * (exp(x) - 1); gradient alpha * exp(x) for x <= 0.
void elu_fwd(float* y, const float* x, i64 n, float alpha, int nt) {
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
  for (i64 i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * std::expm1(x[i]);
}

void elu_bwd(float* dx, const float* dy, const float* x, i64 n, float alpha, int nt) {
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
  for (i64 i = 0; i < n; ++i) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * alpha * std::exp(x[i]);
}

// GELU, approximate='none': x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2);
// gradient Phi(x) + x * phi(x). approximate='tanh': 0.5 x (1 + tanh(u)),
// u = sqrt(2/pi) (x + 0.044715 x^3).
void gelu_fwd(float* y, const float* x, i64 n, bool tanh_approx, int nt) {
  if (tanh_approx) {
    // 0.5 x (1 + tanh(u)) = x * sigmoid(2u): the sum 1 + tanh(u) cancels to 0
    // in float for x < -5 or so, the sigmoid form keeps the tiny tail.
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
    for (i64 i = 0; i < n; ++i) {
      const float v = x[i];
      const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
      y[i] = v / (1.0f + std::exp(-2.0f * u));
    }
    return;
  }
  // Phi(x) = 0.5 erfc(-x / sqrt 2): unlike 0.5 (1 + erf(.)) it does not cancel for x << 0.
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
  for (i64 i = 0; i < n; ++i) y[i] = 0.5f * x[i] * std::erfc(-x[i] * kInvSqrt2);
}

void gelu_bwd(float* dx, const float* dy, const float* x, i64 n, bool tanh_approx, int nt) {
  if (tanh_approx) {
    // d/dx [x s(2u)] = s + x * 2 s (1 - s) * du/dx, s = sigmoid(2u) = (1 + tanh u) / 2.
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
    for (i64 i = 0; i < n; ++i) {
      const float v = x[i];
      const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
      const float s = 1.0f / (1.0f + std::exp(-2.0f * u));
      const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * v * v);
      dx[i] = dy[i] * (s + 2.0f * v * s * (1.0f - s) * du);
    }
    return;
  }
#pragma omp parallel for num_threads(elementwise_threads(n, nt)) schedule(static)
  for (i64 i = 0; i < n; ++i) {
    const float v = x[i];
    const float cdf = 0.5f * std::erfc(-v * kInvSqrt2);
    const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
}

}  // namespace pycnn
