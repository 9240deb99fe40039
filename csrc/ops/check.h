// The checking vocabulary of the op layer (csrc/ops/): every op's `*_shape`
// function validates the arrays' shapes and hyper-parameters as the user gave
// them with these helpers and returns the kernel family's shape struct.
// Failures throw std::invalid_argument (ValueError in Python) or
// std::overflow_error (OverflowError) with messages that quote the shapes, in
// PyTorch's style: "conv2d: expected weight of shape (K, C/groups, kh, kw) =
// (8, 3, 3, 3) for input (2, 3, 9, 9) and groups=1, got (8, 4, 3, 3)".
// Nothing in csrc/ops touches Python, so the bindings release the GIL around
// the run functions.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/common.h"

namespace pycnn::ops {

using Shape = std::vector<i64>;

std::string shape_str(const Shape& s);

// Throws std::invalid_argument with the streamed arguments as its message.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw std::invalid_argument(os.str());
}

// Throws "expected <what> of shape <expected>, got <got>" on mismatch.
void check_shape(const Shape& got, const Shape& expected, const char* what);
// Product of dims; std::overflow_error when it (or its size in bytes) does
// not fit in int64, std::invalid_argument for a negative dimension. The
// product of the non-zero dims must fit too (NumPy's rule), so an empty
// shape such as (0, 2^40, 2^40) cannot make a later product of some of its
// dims (C*H*W, a plane) overflow.
i64 checked_numel(const Shape& s, const char* what);
// a * b and a + b; std::overflow_error when they do not fit in int64.
i64 checked_mul(i64 a, i64 b, const char* what);
i64 checked_add(i64 a, i64 b, const char* what);
// (size + pad_begin + pad_end - dilation*(k-1) - 1) / stride + 1 (0 when the
// window does not fit), overflow-checked.
i64 window_output_size(i64 size, i64 k, i64 stride, i64 pad_begin, i64 pad_end, i64 dilation, const char* what);

// An array an op writes must not share memory with an array it reads (or
// another it writes): throws "<out_name> must not share memory with <name>".
// Sizes are element counts of float32 (or of `elem_bytes`-byte) elements.
struct Span {
  const void* p;
  i64 bytes;
  const char* name;
};
inline Span floats(const void* p, i64 n, const char* name) { return {p, n * i64{4}, name}; }
void check_disjoint(const Span& out, const Span& other);
// Every pair of `spans` disjoint (in-place updates of several buffers).
void check_all_disjoint(std::initializer_list<Span> spans);

}  // namespace pycnn::ops
