// Optimiser updates applied in place, one fused pass over each parameter.
#include "optim/optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/parallel.h"

namespace pycnn {
namespace {

// PyTorch's SGD update of elements [lo, hi) of one parameter.
inline void sgd_range(float* param, float* buf, const float* grad, i64 lo, i64 hi, const SgdParams& p,
                      bool first_step) {
  const float lr = p.lr, momentum = p.momentum, weight_decay = p.weight_decay;
  if (momentum == 0.0f) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) param[i] -= lr * (grad[i] + weight_decay * param[i]);
    return;
  }
  const float keep = 1.0f - p.dampening;
  const bool nesterov = p.nesterov;
#pragma omp simd
  for (i64 i = lo; i < hi; ++i) {
    const float g = grad[i] + weight_decay * param[i];
    const float b = first_step ? g : momentum * buf[i] + keep * g;
    buf[i] = b;
    param[i] -= lr * (nesterov ? g + momentum * b : b);
  }
}

// body(i, lo, hi) for the part [lo, hi) of array i that falls in [begin, end)
// of the concatenated elements of `count` arrays (offsets: prefix sums).
template <class Body>
void for_arrays_in(const std::vector<i64>& offsets, i64 begin, i64 end, const Body& body) {
  // the first array that ends after `begin`
  auto it = std::upper_bound(offsets.begin(), offsets.end(), begin);
  for (i64 i = (it - offsets.begin()) - 1; i + 1 < static_cast<i64>(offsets.size()) && offsets[i] < end; ++i) {
    const i64 lo = std::max(begin, offsets[i]) - offsets[i], hi = std::min(end, offsets[i + 1]) - offsets[i];
    if (hi > lo) body(i, lo, hi);
  }
}

}  // namespace

// PyTorch's SGD:
//   g = grad + weight_decay * param
//   buf = first_step ? g : momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
void sgd_step(float* param, float* buf, const float* grad, i64 n, const SgdParams& p, bool first_step, int nt) {
  const SgdTensor t{param, buf, grad, n, first_step};
  sgd_step_many(&t, 1, p, nt);
}

void sgd_step_many(const SgdTensor* tensors, i64 count, const SgdParams& p, int nt) {
  std::vector<i64> offsets(static_cast<std::size_t>(count) + 1, 0);
  for (i64 i = 0; i < count; ++i) offsets[i + 1] = offsets[i] + tensors[i].n;
  const int threads = threads_for_work(offsets.back(), 4, nt);
  parallel_ranges(offsets.back(), threads, [&](i64 begin, i64 end) {
    for_arrays_in(offsets, begin, end, [&](i64 i, i64 lo, i64 hi) {
      const SgdTensor& x = tensors[i];
      sgd_range(x.param, x.momentum_buffer, x.grad, lo, hi, p, x.first_step);
    });
  });
}

void zero_many(float* const* arrays, const i64* sizes, i64 count, int nt) {
  std::vector<i64> offsets(static_cast<std::size_t>(count) + 1, 0);
  for (i64 i = 0; i < count; ++i) offsets[i + 1] = offsets[i] + sizes[i];
  const int threads = threads_for_work(offsets.back(), 1, nt);
  parallel_ranges(offsets.back(), threads, [&](i64 begin, i64 end) {
    for_arrays_in(offsets, begin, end, [&](i64 i, i64 lo, i64 hi) {
      std::memset(arrays[i] + lo, 0, static_cast<std::size_t>(hi - lo) * sizeof(float));
    });
  });
}

// Adam and AdamW, PyTorch's single-tensor rule (torch.optim.Adam/AdamW), float32:
//   Adam:  g = grad + weight_decay * param          AdamW: param *= 1 - lr * weight_decay
//   m = lerp(m, g, 1 - beta1)        v = v * beta2 + (1 - beta2) * g * g
//   vmax = max(vmax, v) (amsgrad)    denom = sqrt(v or vmax) / sqrt(1 - beta2^t) + eps
//   param += -(lr / (1 - beta1^t)) * (m / denom)
// The bias corrections are computed in double by the caller (they depend only
// on the step count): neg_step_size = -lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t),
// decay = 1 - lr * weight_decay for AdamW (1 for Adam), l2 = weight_decay for Adam (0 for AdamW),
// w1 = 1 - beta1 and w2 = 1 - beta2 rounded from double (in float, 1 - 0.999f is off by 1e-5).
void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& ap, int nt) {
  const float w1 = ap.one_minus_beta1, beta2 = ap.beta2, w2 = ap.one_minus_beta2, eps = ap.eps, l2 = ap.l2,
              decay = ap.decay, neg_step_size = ap.neg_step_size, bc2_sqrt = ap.bc2_sqrt;
  const int threads = threads_for_work(n, 8, nt);
  // torch.lerp switches formula at weight 0.5 for accuracy; do the same so the
  // first moments agree bit for bit.
  const bool lerp_low = w1 < 0.5f;
  parallel_ranges(n, threads, [&](i64 lo, i64 hi) {
#pragma omp simd
    for (i64 i = lo; i < hi; ++i) {
      float p = param[i];
      float g = grad[i];
      if (l2 != 0.0f) g = g + l2 * p;
      if (decay != 1.0f) p = p * decay;
      const float m0 = exp_avg[i];
      const float m = lerp_low ? m0 + w1 * (g - m0) : g - (g - m0) * (1.0f - w1);
      exp_avg[i] = m;
      float v = exp_avg_sq[i] * beta2 + w2 * (g * g);
      exp_avg_sq[i] = v;
      if (max_exp_avg_sq) {
        v = max_exp_avg_sq[i] > v ? max_exp_avg_sq[i] : v;
        max_exp_avg_sq[i] = v;
      }
      const float denom = std::sqrt(v) / bc2_sqrt + eps;
      param[i] = p + neg_step_size * (m / denom);
    }
  });
}

}  // namespace pycnn
