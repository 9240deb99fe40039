// Definitions shared by every kernel: sizes are int64_t everywhere so that
// products of shapes never overflow silently (csrc/ops checks them once).
#pragma once
#include <cassert>
#include <cstddef>
#include <cstdint>

#if defined(__GNUC__) || defined(__clang__)
#define PYCNN_RESTRICT __restrict__
#else
#define PYCNN_RESTRICT
#endif

namespace pycnn {
using i64 = std::int64_t;
}  // namespace pycnn
