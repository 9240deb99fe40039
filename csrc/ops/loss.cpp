#include "ops/loss.h"

#include <limits>

#include "runtime/parallel.h"

namespace pycnn::ops {
namespace {

void check_labels(const int64_t* labels, const CrossEntropyShape& s) {
  for (i64 n = 0; n < s.N; ++n)
    if (labels[n] < 0 || labels[n] >= s.classes)
      fail("cross_entropy: label ", labels[n], " at index ", n, " is out of range [0, ", s.classes, ")");
}

}  // namespace

CrossEntropyShape cross_entropy_shape(const Shape& logits, const Shape& labels) {
  if (logits.size() != 2) fail("cross_entropy: expected logits of shape (N, classes), got ", shape_str(logits));
  if (logits[1] <= 0) fail("cross_entropy: expected at least one class, got logits ", shape_str(logits));
  if (labels.size() != 1 || labels[0] != logits[0])
    fail("cross_entropy: expected labels of shape (", logits[0], ",) for logits ", shape_str(logits), ", got ",
         shape_str(labels));
  checked_numel(logits, "cross_entropy logits");
  return {logits[0], logits[1]};
}

double cross_entropy_fwd(float* probs, const float* logits, const int64_t* labels, const CrossEntropyShape& s) {
  check_labels(labels, s);
  if (s.N == 0) return std::numeric_limits<double>::quiet_NaN();  // mean of nothing, as PyTorch
  return pycnn::cross_entropy_fwd(probs, logits, labels, s.N, s.classes, get_num_threads());
}

void cross_entropy_bwd(float* dlogits, const float* probs, const int64_t* labels, const CrossEntropyShape& s,
                       float scale) {
  check_labels(labels, s);
  if (s.N == 0) return;
  pycnn::cross_entropy_bwd(dlogits, probs, labels, s.N, s.classes, scale, get_num_threads());
}

i64 mse_numel(const Shape& pred, const Shape& target) {
  check_shape(target, pred, "mse_loss target");
  return checked_numel(pred, "mse_loss input");
}

double mse_fwd(const float* pred, const float* target, i64 n) {
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return pycnn::mse_fwd(pred, target, n);
}

void mse_bwd(float* dpred, const float* pred, const float* target, i64 n, float scale) {
  if (n == 0) return;
  pycnn::mse_bwd(dpred, pred, target, n, scale, get_num_threads());
}

}  // namespace pycnn::ops
