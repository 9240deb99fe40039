// Elementwise activations and their gradients (the table in activation.h).
// Memory-bound: each loop is a single contiguous pass the compiler
// vectorises; threads are used only when the array is large enough to
// amortise waking them (transcendental ones count as 8 operations).
#include "activation/activation.h"

#include <cmath>

#include "runtime/parallel.h"

namespace pycnn {
namespace {

inline int cheap_threads(i64 n, int nt) { return threads_for_work(n, 1, nt); }
inline int costly_threads(i64 n, int nt) { return threads_for_work(n, 8, nt); }

void relu_fwd(float* y, const float* x, i64 n, float, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) y[i] = x[i] > 0.0f ? x[i] : (x[i] != x[i] ? x[i] : 0.0f);
  });
}

void relu_bwd(float* dx, const float* dy, const float* y, i64 n, float, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) {
      // Load dy unconditionally so the compiler emits a select, not a branch
      // (ReLU's signs are random: a branch mispredicts half the time, 25x slower).
      const float g = dy[i];
      dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
  });
}

void leaky_relu_fwd(float* y, const float* x, i64 n, float slope, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) y[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
  });
}

void leaky_relu_bwd(float* dx, const float* dy, const float* x, i64 n, float slope, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * slope;
  });
}

void sigmoid_fwd(float* y, const float* x, i64 n, float, int nt) {
  // 1/(1+exp(-x)) is already stable in float: exp overflows to +inf for
  // x < -88 and 1/inf = 0, with no NaN on the way.
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) y[i] = 1.0f / (1.0f + std::exp(-x[i]));
  });
}

void sigmoid_bwd(float* dx, const float* dy, const float* y, i64 n, float, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
  });
}

void tanh_fwd(float* y, const float* x, i64 n, float, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) y[i] = std::tanh(x[i]);
  });
}

void tanh_bwd(float* dx, const float* dy, const float* y, i64 n, float, int nt) {
  parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
  });
}

// PyTorch's ELU: x if x > 0 else alpha * (exp(x) - 1); gradient alpha * exp(x)
// for x <= 0, taken from the input so that alpha may have any sign.
void elu_fwd(float* y, const float* x, i64 n, float alpha, int nt) {
  parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) y[i] = x[i] > 0.0f ? x[i] : alpha * std::expm1(x[i]);
  });
}

void elu_bwd(float* dx, const float* dy, const float* x, i64 n, float alpha, int nt) {
  parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * alpha * std::exp(x[i]);
  });
}

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;  // 1 / sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286535588f;  // sqrt(2 / pi)
constexpr float kGeluCoef = 0.044715f;

// GELU, approximate='none' (param 0): x * Phi(x) = 0.5 x erfc(-x / sqrt 2);
// gradient Phi(x) + x * phi(x). approximate='tanh' (param 1):
// 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
void gelu_fwd(float* y, const float* x, i64 n, float tanh_approx, int nt) {
  if (tanh_approx != 0.0f) {
    // 0.5 x (1 + tanh(u)) = x * sigmoid(2u): the sum 1 + tanh(u) cancels to 0
    // in float for x < -5 or so, the sigmoid form keeps the tiny tail.
    parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
      for (i64 i = lo; i < hi; ++i) {
        const float v = x[i];
        const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
        y[i] = v / (1.0f + std::exp(-2.0f * u));
      }
    });
    return;
  }
  // Phi(x) = 0.5 erfc(-x / sqrt 2): unlike 0.5 (1 + erf(.)) it does not cancel for x << 0.
  parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) y[i] = 0.5f * x[i] * std::erfc(-x[i] * kInvSqrt2);
  });
}

void gelu_bwd(float* dx, const float* dy, const float* x, i64 n, float tanh_approx, int nt) {
  if (tanh_approx != 0.0f) {
    // d/dx [x s(2u)] = s + x * 2 s (1 - s) * du/dx, s = sigmoid(2u) = (1 + tanh u) / 2.
    parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
      for (i64 i = lo; i < hi; ++i) {
        const float v = x[i];
        const float u = kSqrt2OverPi * (v + kGeluCoef * v * v * v);
        const float s = 1.0f / (1.0f + std::exp(-2.0f * u));
        const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCoef * v * v);
        dx[i] = dy[i] * (s + 2.0f * v * s * (1.0f - s) * du);
      }
    });
    return;
  }
  parallel_ranges(n, costly_threads(n, nt), [&](i64 lo, i64 hi) {
    for (i64 i = lo; i < hi; ++i) {
      const float v = x[i];
      const float cdf = 0.5f * std::erfc(-v * kInvSqrt2);
      const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
      dx[i] = dy[i] * (cdf + v * pdf);
    }
  });
}

// name, backward reads the output (else the input), forward, backward
constexpr Activation kActivations[] = {
    {"relu", true, relu_fwd, relu_bwd},
    {"leaky_relu", false, leaky_relu_fwd, leaky_relu_bwd},
    {"sigmoid", true, sigmoid_fwd, sigmoid_bwd},
    {"tanh", true, tanh_fwd, tanh_bwd},
    {"elu", false, elu_fwd, elu_bwd},
    {"gelu", false, gelu_fwd, gelu_bwd},
};

}  // namespace

const Activation* find_activation(const std::string& name) {
  for (const Activation& a : kActivations)
    if (name == a.name) return &a;
  return nullptr;
}

std::string activation_names() {
  std::string s;
  for (const Activation& a : kActivations) s += (s.empty() ? "'" : ", '") + std::string(a.name) + "'";
  return s;
}

// A residual connection's sum (and the sum of its branches' gradients).
void add_fwd(float* out, const float* a, const float* b, i64 n, bool relu, int nt) {
  if (relu) {
    parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
      for (i64 i = lo; i < hi; ++i) {
        const float v = a[i] + b[i];
        out[i] = v > 0.0f ? v : (v != v ? v : 0.0f);
      }
    });
  } else {
    parallel_ranges(n, cheap_threads(n, nt), [&](i64 lo, i64 hi) {
#pragma omp simd
      for (i64 i = lo; i < hi; ++i) out[i] = a[i] + b[i];
    });
  }
}

}  // namespace pycnn
