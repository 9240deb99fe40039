#include "ops/runtime.h"

#include "runtime/buffer_cache.h"
#include "runtime/parallel.h"

namespace pycnn::ops {

void set_num_threads(i64 n) {
  if (n < 1) fail("set_num_threads: expected n >= 1, got ", n);
  if (n > max_num_threads())
    fail("set_num_threads: expected n <= ", max_num_threads(), " (4 per hardware thread, at least 16), got ", n,
         ": more threads only oversubscribe the cores, and a thread OpenMP fails to create ends the process");
  pycnn::set_num_threads(static_cast<int>(n));
}

void set_buffer_cache_limit(i64 bytes) {
  if (bytes < 0) fail("set_buffer_cache_limit: expected bytes >= 0, got ", bytes);
  pycnn::set_buffer_cache_limit(static_cast<std::size_t>(bytes));
}

void set_isa(const std::string& name) {
  Isa isa;
  if (!isa_from_name(name, &isa)) fail("unknown ISA '", name, "': expected 'scalar', 'avx2' or 'avx512'");
  pycnn::set_isa(isa);
}

}  // namespace pycnn::ops
