#include "ops/check.h"

#include <cstdint>

namespace pycnn::ops {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << (s.size() == 1 ? ",)" : ")");
  return os.str();
}

void check_shape(const Shape& got, const Shape& expected, const char* what) {
  if (got != expected) fail("expected ", what, " of shape ", shape_str(expected), ", got ", shape_str(got));
}

i64 checked_mul(i64 a, i64 b, const char* what) {
  i64 r;
  if (__builtin_mul_overflow(a, b, &r))
    throw std::overflow_error(std::string(what) + ": size does not fit in 64-bit integers");
  return r;
}

i64 checked_add(i64 a, i64 b, const char* what) {
  i64 r;
  if (__builtin_add_overflow(a, b, &r))
    throw std::overflow_error(std::string(what) + ": size does not fit in 64-bit integers");
  return r;
}

i64 checked_numel(const Shape& s, const char* what) {
  i64 nonzero = 1;
  bool empty = false;
  for (i64 d : s) {
    if (d < 0) fail(what, " has a negative dimension: ", shape_str(s));
    if (d == 0)
      empty = true;
    else
      nonzero = checked_mul(nonzero, d, what);
  }
  // Every element must also be addressable in bytes.
  checked_mul(nonzero, static_cast<i64>(sizeof(float)), what);
  return empty ? 0 : nonzero;
}

i64 window_output_size(i64 size, i64 k, i64 stride, i64 pad_begin, i64 pad_end, i64 dilation, const char* what) {
  i64 span;
  if (__builtin_add_overflow(checked_mul(dilation, k - 1, what), i64{1}, &span))
    throw std::overflow_error(std::string(what) + ": kernel span does not fit in 64-bit integers");
  i64 padded;
  if (__builtin_add_overflow(size, pad_begin, &padded) || __builtin_add_overflow(padded, pad_end, &padded))
    throw std::overflow_error(std::string(what) + ": padded size does not fit in 64-bit integers");
  if (padded < span) return 0;
  return (padded - span) / stride + 1;
}

void check_disjoint(const Span& out, const Span& other) {
  const auto lo1 = reinterpret_cast<std::uintptr_t>(out.p), hi1 = lo1 + static_cast<std::uintptr_t>(out.bytes);
  const auto lo2 = reinterpret_cast<std::uintptr_t>(other.p), hi2 = lo2 + static_cast<std::uintptr_t>(other.bytes);
  if (out.p && other.p && out.bytes > 0 && other.bytes > 0 && lo1 < hi2 && lo2 < hi1)
    fail(out.name, " must not share memory with ", other.name);
}

void check_all_disjoint(std::initializer_list<Span> spans) {
  for (auto a = spans.begin(); a != spans.end(); ++a)
    for (auto b = a + 1; b != spans.end(); ++b) check_disjoint(*a, *b);
}

}  // namespace pycnn::ops
