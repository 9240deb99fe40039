#include "runtime/parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define PYCNN_HAVE_PTHREAD_ATFORK 1
#endif

#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {
namespace {

int default_num_threads() {
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);  // "4,2" (nested lists) takes the first level
    if (end != env && v >= 1 && v <= 1 << 20) return static_cast<int>(std::min<long>(v, max_num_threads()));
  }
  return max_hardware_threads();
}

std::atomic<int>& num_threads_setting() {
  static std::atomic<int> n{default_num_threads()};
  return n;
}

// Fork safety. libgomp's worker threads do not exist in a forked child, but
// its bookkeeping says they do: the child's first parallel region with more
// than one thread waits forever for them (measured: a conv2d in a child forked
// after the parent ran one hangs). A single-threaded region never touches the
// pool, so a child of a process that may have started the pool runs
// single-threaded, and asking it for more threads is an error, not a hang.
// `threads_requested` is set whenever a kernel is handed more than one thread
// (the first such region creates the pool); a fork before that leaves the
// child free to use threads.
std::atomic<bool> threads_requested{false};
std::atomic<bool> pool_lost{false};

#ifdef PYCNN_HAVE_PTHREAD_ATFORK
// Runs in the child right after fork(): only lock-free atomic stores here.
void after_fork_in_child() {
  if (threads_requested.load(std::memory_order_relaxed)) {
    pool_lost.store(true, std::memory_order_relaxed);
    num_threads_setting().store(1, std::memory_order_relaxed);
  }
}

[[maybe_unused]] const bool atfork_registered = [] {
  num_threads_setting();  // construct the static before any fork can happen
  return pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0;
}();
#endif

}  // namespace

int max_hardware_threads() {
#ifdef PYCNN_HAVE_OPENMP
  int n = omp_get_num_procs();
#else
  int n = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return n >= 1 ? n : 1;
}

// A cap on the setting: kernels never profit from more threads than cores,
// and libgomp ends the whole process (gomp_fatal) when it cannot create a
// thread, so an absurd count must be refused up front, not found out in a
// kernel. Four per hardware thread leaves room for experiments.
int max_num_threads() { return std::max(16, 4 * max_hardware_threads()); }

int get_num_threads() {
#ifdef PYCNN_HAVE_OPENMP
  const int n = num_threads_setting().load(std::memory_order_relaxed);
  if (n > 1 && !threads_requested.load(std::memory_order_relaxed))
    threads_requested.store(true, std::memory_order_relaxed);
  return n;
#else
  return 1;
#endif
}

void set_num_threads(int n) {
  if (n > 1 && pool_lost.load(std::memory_order_relaxed))
    throw std::runtime_error(
        "set_num_threads(" + std::to_string(n) +
        "): this process was forked from one that had already run pycnn kernels on several threads, and "
        "OpenMP's thread pool does not survive fork(), so pycnn runs single-threaded here. Start worker "
        "processes with multiprocessing's 'spawn' or 'forkserver' method to use threads in them.");
  num_threads_setting().store(n, std::memory_order_relaxed);
}

int peek_num_threads() {
#ifdef PYCNN_HAVE_OPENMP
  return num_threads_setting().load(std::memory_order_relaxed);
#else
  return 1;
#endif
}

bool forked_single_threaded() { return pool_lost.load(std::memory_order_relaxed); }

namespace {
std::atomic<i64> scratch_requests_to_failure{0};  // fail_scratch_request's countdown, 0: off
}  // namespace

i64 fail_scratch_request(i64 n) {
  return std::max<i64>(0, scratch_requests_to_failure.exchange(n > 0 ? n : 0, std::memory_order_relaxed));
}

float* ScratchBuffer::reserve(i64 floats) {
  if (scratch_requests_to_failure.load(std::memory_order_relaxed) > 0 &&
      scratch_requests_to_failure.fetch_sub(1, std::memory_order_relaxed) == 1)
    throw std::bad_alloc();
  if (size_ < floats) {
    data_.reset();  // free the old one first: peak memory stays one buffer
    size_ = 0;      // and if the allocation below throws, the buffer is empty, not a dangling size
    data_.reset(new float[static_cast<std::size_t>(floats)]);  // uninitialised: no zeroing pass
    size_ = floats;
  }
  return data_.get();
}

}  // namespace pycnn
