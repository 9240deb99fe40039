#include "ops/optim.h"

#include <algorithm>
#include <cstdint>

#include "runtime/parallel.h"

namespace pycnn::ops {
namespace {

struct Range {
  std::uintptr_t lo, hi;
  i64 owner;  // index of the tensor the array belongs to
  bool written;
};

// True when an array written for one tensor overlaps any array of another tensor.
bool tensors_overlap(std::vector<Range> r) {
  std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.lo < b.lo; });
  // For each range, compare with the ranges that start before it ends.
  for (std::size_t i = 0; i < r.size(); ++i)
    for (std::size_t j = i + 1; j < r.size() && r[j].lo < r[i].hi; ++j)
      if (r[i].owner != r[j].owner && (r[i].written || r[j].written)) return true;
  return false;
}

void add_range(std::vector<Range>& r, const void* p, i64 n, i64 owner, bool written) {
  if (p && n > 0) {
    const auto lo = reinterpret_cast<std::uintptr_t>(p);
    r.push_back(Range{lo, lo + static_cast<std::uintptr_t>(n) * 4, owner, written});
  }
}

}  // namespace

i64 sgd_numel(const Shape& param, const Shape& grad, const Shape* momentum_buffer, float momentum) {
  check_shape(grad, param, "sgd gradient");
  if (momentum != 0.0f && !momentum_buffer) fail("sgd_step: momentum needs a momentum buffer");
  if (momentum_buffer) check_shape(*momentum_buffer, param, "sgd momentum buffer");
  return checked_numel(param, "sgd parameter");
}

void sgd_step(float* param, float* momentum_buffer, const float* grad, i64 n, const SgdParams& p, bool first_step) {
  const Span pa = floats(param, n, "param"), g = floats(grad, n, "grad"), b = floats(momentum_buffer, n, "momentum_buffer");
  check_disjoint(pa, g), check_disjoint(b, g), check_disjoint(b, pa);
  pycnn::sgd_step(param, momentum_buffer, grad, n, p, first_step, get_num_threads());
}

void sgd_step_many(const std::vector<SgdTensor>& tensors, const SgdParams& p) {
  std::vector<Range> ranges;
  ranges.reserve(3 * tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const SgdTensor& t = tensors[i];
    const i64 n = t.n;
    const Span pa = floats(t.param, n, "param"), g = floats(t.grad, n, "grad");
    const Span b = floats(t.momentum_buffer, n, "momentum_buffer");
    check_disjoint(pa, g), check_disjoint(b, g), check_disjoint(b, pa);
    add_range(ranges, t.param, n, static_cast<i64>(i), true);
    add_range(ranges, t.momentum_buffer, n, static_cast<i64>(i), true);
    add_range(ranges, t.grad, n, static_cast<i64>(i), false);
  }
  const int nt = get_num_threads();
  if (tensors_overlap(std::move(ranges))) {
    for (const SgdTensor& t : tensors) pycnn::sgd_step_many(&t, 1, p, nt);
    return;
  }
  pycnn::sgd_step_many(tensors.data(), static_cast<i64>(tensors.size()), p, nt);
}

void zero_many(const std::vector<float*>& arrays, const std::vector<i64>& sizes) {
  std::vector<Range> ranges;
  ranges.reserve(arrays.size());
  for (std::size_t i = 0; i < arrays.size(); ++i) add_range(ranges, arrays[i], sizes[i], static_cast<i64>(i), true);
  // Arrays sharing memory would be filled by two threads at once: one thread then.
  const int nt = tensors_overlap(std::move(ranges)) ? 1 : get_num_threads();
  pycnn::zero_many(arrays.data(), sizes.data(), static_cast<i64>(arrays.size()), nt);
}

i64 adam_numel(const Shape& param, const Shape& grad, const Shape& exp_avg, const Shape& exp_avg_sq,
               const Shape* max_exp_avg_sq) {
  check_shape(grad, param, "adam gradient");
  check_shape(exp_avg, param, "adam exp_avg");
  check_shape(exp_avg_sq, param, "adam exp_avg_sq");
  if (max_exp_avg_sq) check_shape(*max_exp_avg_sq, param, "adam max_exp_avg_sq");
  return checked_numel(param, "adam parameter");
}

void adam_step(float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, i64 n,
               const AdamParams& p) {
  check_all_disjoint({floats(param, n, "param"), floats(grad, n, "grad"), floats(exp_avg, n, "exp_avg"),
                      floats(exp_avg_sq, n, "exp_avg_sq"), floats(max_exp_avg_sq, n, "max_exp_avg_sq")});
  pycnn::adam_step(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, p, get_num_threads());
}

}  // namespace pycnn::ops
