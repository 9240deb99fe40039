// Optimiser updates applied in place, one fused pass over each parameter.
#include "kernels.h"
#include "parallel.h"

namespace pycnn {

// PyTorch's SGD:
//   g = grad + weight_decay * param
//   buf = first_step ? g : momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf
//   param -= lr * g
void sgd_update(float* param, float* buf, const float* grad, i64 n, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool first_step, int nt) {
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

}  // namespace pycnn
