#include "parallel.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <thread>

#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {
namespace {

int default_num_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);  // "4,2" (nested lists) takes the first level
    if (end != env && v >= 1 && v <= 4096) return static_cast<int>(v);
  }
  return max_hardware_threads();
}

std::atomic<int>& num_threads_setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}

}  // namespace

int max_hardware_threads() {
#ifdef PYCNN_HAVE_OPENMP
  int n = omp_get_num_procs();
#else
  int n = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return n >= 1 ? n : 1;
}

int get_num_threads() {
#ifdef PYCNN_HAVE_OPENMP
  return num_threads_setting().load(std::memory_order_relaxed);
#else
  return 1;
#endif
}

void set_num_threads(int n) { num_threads_setting().store(n, std::memory_order_relaxed); }

float* thread_scratch(ScratchSlot slot, i64 floats) {
  struct Buffer {
    std::unique_ptr<float[]> data;
    i64 size = 0;
  };
  thread_local Buffer buffers[kScratchSlots];
  Buffer& b = buffers[slot];
  if (b.size < floats) {
    b.data.reset();  // free the old one first: peak memory stays one buffer
    b.data.reset(new float[static_cast<std::size_t>(floats)]);  // uninitialised: no zeroing pass
    b.size = floats;
  }
  return b.data.get();
}

}  // namespace pycnn
