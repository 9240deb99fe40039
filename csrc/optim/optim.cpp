// Optimiser updates applied in place, one fused pass over each parameter.
#include "optim/optim.h"

#include <cmath>

#include "runtime/parallel.h"

namespace pycnn {

// PyTorch's SGD:
//   g = grad + weight_decay * param
//   buf = first_step ? g : momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
void sgd_step(float* param, float* buf, const float* grad, i64 n, const SgdParams& p, bool first_step, int nt) {
  const float lr = p.lr, momentum = p.momentum, dampening = p.dampening, weight_decay = p.weight_decay;
  const bool nesterov = p.nesterov;
  const int threads = threads_for_work(n, 4, nt);
  if (momentum == 0.0f) {
#pragma omp parallel for simd num_threads(threads) schedule(static)
    for (i64 i = 0; i < n; ++i) param[i] -= lr * (grad[i] + weight_decay * param[i]);
    return;
  }
  const float keep = 1.0f - dampening;
#pragma omp parallel for simd num_threads(threads) schedule(static)
  for (i64 i = 0; i < n; ++i) {
    const float g = grad[i] + weight_decay * param[i];
    const float b = first_step ? g : momentum * buf[i] + keep * g;
    buf[i] = b;
    param[i] -= lr * (nesterov ? g + momentum * b : b);
  }
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
#pragma omp parallel for simd num_threads(threads) schedule(static)
  for (i64 i = 0; i < n; ++i) {
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
}

}  // namespace pycnn
