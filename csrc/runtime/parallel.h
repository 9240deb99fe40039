// The one pycnn-wide thread setting. Every parallel region receives its thread
// count explicitly (never omp_set_num_threads, which would leak into other
// OpenMP users in the same process).
#pragma once
#include <exception>
#include <memory>
#include <mutex>

#include "runtime/common.h"

#ifdef PYCNN_HAVE_OPENMP
#include <omp.h>
#endif

namespace pycnn {

// Default: $OMP_NUM_THREADS if set and valid, else the number of cores.
// The thread count for a kernel about to run (every parallel region gets it).
int get_num_threads();
// The same value, for reporting only (get_num_threads also notes for fork
// safety that threads were handed out).
int peek_num_threads();
// n >= 1, checked by the caller. Throws std::runtime_error for n > 1 in a
// process forked after its parent used threads (see parallel.cpp).
void set_num_threads(int n);
// True in a forked child that must stay single-threaded (see parallel.cpp).
bool forked_single_threaded();
int max_hardware_threads();
// The largest value set_num_threads accepts: max(16, 4 * max_hardware_threads()).
int max_num_threads();

// Threads worth using for `work` independent items: never more threads than items.
inline int threads_for(i64 work_items, int num_threads) {
  if (work_items < 1) return 1;
  return work_items < num_threads ? static_cast<int>(work_items) : num_threads;
}

// Waking a thread costs microseconds when the machine is idle and up to a
// scheduler time slice when another process holds the core, so a thread is
// only used for at least this many elementary operations.
constexpr i64 kMinWorkPerThread = 32 * 1024;

// Threads for `items` independent items of `cost` operations each.
inline int threads_for_work(i64 items, i64 cost, int num_threads) {
  const i64 by_work = cost > 0 && items > 0 ? (items > kMinWorkPerThread ? items / kMinWorkPerThread * cost
                                                                         : items * cost / kMinWorkPerThread)
                                            : 0;
  const int nt = threads_for(by_work, num_threads);
  return threads_for(items, nt);
}

// Scratch memory private to the calling thread that persists between calls
// (it only grows), so hot loops neither allocate nor page-fault fresh memory
// on every call. Each owner (a tag type declared by the kernel family that
// uses it: GemmScratch, Im2colScratch, ...) has its own buffer per thread; a
// thread must not hold two live buffers of one owner. May throw std::bad_alloc.
class ScratchBuffer {
 public:
  float* reserve(i64 floats);  // at least `floats` floats, contents undefined

 private:
  std::unique_ptr<float[]> data_;
  i64 size_ = 0;
};
template <class Owner>
float* thread_scratch(i64 floats) {
  thread_local ScratchBuffer buffer;
  return buffer.reserve(floats);
}

// An exception must never leave an OpenMP parallel region (the runtime
// calls std::terminate). Bodies run through an ExceptionTrap keep the first
// exception, and the code after the region rethrows it:
//   ExceptionTrap trap;
//   #pragma omp parallel
//   trap.run([&] { ... });
//   trap.rethrow();
class ExceptionTrap {
 public:
  template <class F>
  void run(F&& body) noexcept {
    try {
      body();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
};

// Runs body(i, t) for every i in [0, n), t being the running thread's index
// in [0, threads): items handed out one at a time (dynamic) or in contiguous
// blocks in thread order (static). With one thread the loop runs on the
// caller with no parallel region at all: a region of one thread would make
// every parallel region inside `body` a nested one, which libgomp runs on
// threads outside its main pool, and those competed with the pool's
// spinning idle threads for the cores (measured: a batch-1 training step of
// the Fashion-MNIST CNN at 2 threads took 10.9 ms instead of 1.0 ms).
enum class Schedule { kDynamic, kStatic };
template <class Body>
void parallel_items(i64 n, int threads, Schedule schedule, Body&& body) {
  if (threads <= 1) {
    for (i64 i = 0; i < n; ++i) body(i, 0);
    return;
  }
  ExceptionTrap trap;
#pragma omp parallel num_threads(threads)
  trap.run([&] {
#ifdef PYCNN_HAVE_OPENMP
    const int t = omp_get_thread_num();
#else
    const int t = 0;
#endif
    if (schedule == Schedule::kDynamic) {
#pragma omp for schedule(dynamic, 1)
      for (i64 i = 0; i < n; ++i) body(i, t);
    } else {
#pragma omp for schedule(static)
      for (i64 i = 0; i < n; ++i) body(i, t);
    }
  });
  trap.rethrow();
}

}  // namespace pycnn
