// Checked settings of the runtime (csrc/runtime/): threads, the buffer
// cache, the instruction set. Same error style as the ops.
#pragma once
#include <string>

#include "ops/check.h"
#include "runtime/dispatch.h"

namespace pycnn::ops {

// 1 <= n <= max_num_threads(); see runtime/parallel.h.
void set_num_threads(i64 n);
// bytes >= 0; see runtime/buffer_cache.h.
void set_buffer_cache_limit(i64 bytes);
// "scalar" | "avx2" | "avx512", supported by this CPU.
void set_isa(const std::string& name);

}  // namespace pycnn::ops
