#include "runtime/buffer_cache.h"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace pycnn {
namespace {

constexpr std::size_t kAlign = 64;       // the header in front of a block; keeps the data 64-byte aligned
constexpr std::size_t kGranule = 4096;   // sizes are rounded to pages, so near-equal requests share blocks
constexpr std::size_t kDefaultLimit = std::size_t{512} << 20;

struct Cache {
  std::mutex mutex;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  std::size_t held = 0, limit = kDefaultLimit, hits = 0, misses = 0;
};

// Never destroyed: arrays may be freed during interpreter shutdown, after
// static destructors would have run.
Cache& cache() {
  static Cache* c = new Cache;
  return *c;
}

std::size_t rounded(std::size_t bytes) {
  if (bytes > SIZE_MAX - kGranule - kAlign) throw std::bad_alloc();
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

std::size_t& size_of_block(void* block) { return *reinterpret_cast<std::size_t*>(static_cast<char*>(block) - kAlign); }

void free_block(void* block) { std::free(static_cast<char*>(block) - kAlign); }

}  // namespace

void* buffer_acquire(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* block = it->second.back();
      it->second.pop_back();
      c.held -= size;
      ++c.hits;
      return block;
    }
    ++c.misses;
  }
  void* raw = std::aligned_alloc(kAlign, size + kAlign);  // size + kAlign is a multiple of kAlign
  if (!raw) throw std::bad_alloc();
  void* block = static_cast<char*>(raw) + kAlign;
  size_of_block(block) = size;
  return block;
}

CachedFloats::CachedFloats(std::size_t floats) : p_(static_cast<float*>(buffer_acquire(floats * sizeof(float)))) {}
CachedFloats::~CachedFloats() { buffer_release(p_); }

void buffer_release(void* block) noexcept {
  if (!block) return;
  const std::size_t size = size_of_block(block);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.held + size <= c.limit) {
      try {
        c.free_blocks[size].push_back(block);
        c.held += size;
        return;
      } catch (...) {  // no memory for the bookkeeping: just free the block
      }
    }
  }
  free_block(block);
}

BufferCacheStats buffer_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.held, c.limit, c.hits, c.misses};
}

void set_buffer_cache_limit(std::size_t bytes) {
  Cache& c = cache();
  std::vector<void*> to_free;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.limit = bytes;
    for (auto it = c.free_blocks.begin(); it != c.free_blocks.end() && c.held > c.limit;) {
      while (!it->second.empty() && c.held > c.limit) {
        to_free.push_back(it->second.back());
        it->second.pop_back();
        c.held -= it->first;
      }
      it = it->second.empty() ? c.free_blocks.erase(it) : std::next(it);
    }
  }
  for (void* b : to_free) free_block(b);
}

}  // namespace pycnn
