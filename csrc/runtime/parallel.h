// The one pycnn-wide thread setting. Every parallel region receives its thread
// count explicitly (never omp_set_num_threads, which would leak into other
// OpenMP users in the same process).
#pragma once
#include <atomic>
#include <exception>
#include <memory>

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
// For tests: the n-th scratch request from now on (counted over all threads)
// throws std::bad_alloc as if memory had run out; 0 turns it off. Returns
// the requests that were still to go before (so a large n counts requests).
i64 fail_scratch_request(i64 n);
template <class Owner>
float* thread_scratch(i64 floats) {
  thread_local ScratchBuffer buffer;
  return buffer.reserve(floats);
}

// An exception must never leave an OpenMP parallel region, nor even one
// iteration of a worksharing loop inside it: GCC wraps both in a handler that
// calls std::terminate, so a std::bad_alloc from a thread's scratch would
// abort the interpreter. Therefore every region in pycnn is opened here, by
// parallel_items and parallel_ranges (a test keeps `omp parallel` out of
// every other file), and each item runs inside an ExceptionTrap: the first
// exception is kept, the items not yet started are skipped (work stops
// cleanly: there are no barriers inside a region to wait at), and the
// caller rethrows it after the region has joined.
class ExceptionTrap {
 public:
  // Runs body unless an earlier body failed; never lets an exception out.
  template <class F>
  void run(F&& body) noexcept {
    if (failed()) return;
    try {
      body();
    } catch (...) {
      // The first thread to fail stores its exception; the region's join
      // publishes it to the thread that calls rethrow().
      if (!claimed_.exchange(true, std::memory_order_acq_rel)) first_ = std::current_exception();
      failed_.store(true, std::memory_order_release);
    }
  }
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  void rethrow() {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::atomic<bool> claimed_{false}, failed_{false};
  std::exception_ptr first_;
};

// Item `t`'s share [begin, end) when n items are split into `parts`
// contiguous blocks, the first n % parts of them one item longer (the split
// of OpenMP's schedule(static)); no product can overflow.
struct Share {
  i64 begin, end;
};
inline Share share_of(i64 n, i64 t, i64 parts) {
  const i64 q = n / parts, r = n % parts;
  const i64 begin = q * t + (t < r ? t : r);
  return {begin, begin + q + (t < r ? 1 : 0)};
}

// Runs body(i, t) for every i in [0, n), t being the running thread's index
// in [0, threads): items handed out one at a time (dynamic) or in contiguous
// blocks in thread order (static, share_of). With one thread the loop runs on
// the caller with no parallel region at all (exceptions then leave it
// directly): a region of one thread would make every parallel region inside
// `body` a nested one, which libgomp runs on threads outside its main pool,
// and those competed with the pool's spinning idle threads for the cores
// (measured: a batch-1 training step of the Fashion-MNIST CNN at 2 threads
// took 10.9 ms instead of 1.0 ms). No OpenMP worksharing construct is used,
// so the region's only barrier is its final join.
enum class Schedule { kDynamic, kStatic };
template <class Body>
void parallel_items(i64 n, int threads, Schedule schedule, Body&& body) {
  threads = threads_for(n, threads);
  if (threads <= 1) {
    for (i64 i = 0; i < n; ++i) body(i, 0);
    return;
  }
  ExceptionTrap trap;
  std::atomic<i64> next{0};  // the dynamic schedule's next item
#pragma omp parallel num_threads(threads)
  {
#ifdef PYCNN_HAVE_OPENMP
    const int t = omp_get_thread_num(), team = omp_get_num_threads();  // the team may be smaller than asked
#else
    const int t = 0, team = 1;
#endif
    if (schedule == Schedule::kDynamic) {
      for (i64 i = next.fetch_add(1, std::memory_order_relaxed); i < n && !trap.failed();
           i = next.fetch_add(1, std::memory_order_relaxed))
        trap.run([&] { body(i, t); });
    } else {
      const Share sh = share_of(n, t, team);
      for (i64 i = sh.begin; i < sh.end && !trap.failed(); ++i) trap.run([&] { body(i, t); });
    }
  }
  trap.rethrow();
}

// Runs body(begin, end) on up to `threads` contiguous blocks covering [0, n)
// (share_of), for loops whose items are too cheap to be handed out one by
// one (elementwise passes: the body's own loop vectorises).
template <class Body>
void parallel_ranges(i64 n, int threads, Body&& body) {
  if (n <= 0) return;
  const int parts = threads_for(n, threads);
  parallel_items(parts, parts, Schedule::kStatic, [&](i64 t, int) {
    const Share sh = share_of(n, t, parts);
    body(sh.begin, sh.end);
  });
}

}  // namespace pycnn
