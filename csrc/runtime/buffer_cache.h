// Memory for the arrays pycnn's kernels return, kept for reuse.
//
// A training step allocates the same activation and gradient arrays every
// step (tens of MB). Fresh allocations that size come from mmap, so every
// step paid a page fault per 4 KiB touched: 2,200 faults and 10-15 ms of
// system time per step of the Fashion-MNIST CNN, a quarter of its wall time
// on this VM. Blocks released by pycnn's arrays (when NumPy frees them) are
// therefore kept, up to a byte limit, and handed out again for a request of
// the same rounded size. Only pycnn's own output arrays use the cache: no
// process-wide allocator setting changes, and memory is reused only after
// its array is gone, so no two live arrays ever share it.
#pragma once
#include <cstddef>

namespace pycnn {

// A 64-byte-aligned block of at least `bytes`; throws std::bad_alloc.
void* buffer_acquire(std::size_t bytes);
// Gives a block from buffer_acquire back (kept, or freed past the limit).
void buffer_release(void* block) noexcept;

// Kernel scratch from the cache (MBs reused call after call without fresh
// page faults), given back when it goes out of scope. Throws std::bad_alloc.
class CachedFloats {
 public:
  explicit CachedFloats(std::size_t floats);
  ~CachedFloats();
  CachedFloats(const CachedFloats&) = delete;
  CachedFloats& operator=(const CachedFloats&) = delete;
  CachedFloats(CachedFloats&& other) noexcept : p_(other.p_) { other.p_ = nullptr; }
  float* get() const { return p_; }

 private:
  float* p_;
};

struct BufferCacheStats {
  std::size_t held_bytes, limit_bytes, hits, misses;
};
BufferCacheStats buffer_cache_stats();
// Bytes of released blocks kept at most (0: keep none); frees the excess.
void set_buffer_cache_limit(std::size_t bytes);

}  // namespace pycnn
