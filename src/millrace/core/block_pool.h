// BlockPool: fixed-size blocks carved from 2 MB chunks, for state that is
// created and freed per key (sliding-feature key states and their event rows).
//
// Why: per-key state of 100k keys spreads over 100+ MB, and an event touches
// a few cache lines of it at random. With 4 KB pages nearly every such line
// also misses the TLB (a page walk per line); a pool's chunks past its first
// are advised as transparent huge pages (madvise(MADV_HUGEPAGE), which
// `transparent_hugepage=madvise` systems honour), so that one TLB entry
// covers 2 MB of keys. A pool's first chunk keeps normal pages: a small
// pool costs only the pages it touches.
//
// Chunks are aligned on their size, and each starts with a header naming its
// pool: deallocate() finds the pool of any block from its address. Freed
// blocks go on a free list (first reused first) and chunks are returned only
// when the pool is destroyed: the memory stays at the pool's peak. Not
// thread-safe: one owner at a time.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace millrace {

class BlockPool {
 public:
  static constexpr size_t kChunk = size_t{2} << 20;
  static constexpr size_t kAlign = 64;

  // Blocks of `bytes` (rounded up to 64), at most kChunk / 2.
  explicit BlockPool(size_t bytes) : block_((bytes + kAlign - 1) / kAlign * kAlign) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  ~BlockPool() {
    for (void* c : chunks_) ::munmap(c, kChunk);
  }

  // Whether chunks past the first are advised as huge pages (default: yes).
  // Applies to the chunks made from then on.
  void set_huge_pages(bool on) { huge_pages_ = on; }

  size_t block_bytes() const { return block_; }
  size_t reserved_bytes() const { return chunks_.size() * kChunk; }

  void* allocate() {
    if (free_ != nullptr) {
      void* p = free_;
      free_ = *static_cast<void**>(p);
      return p;
    }
    if (next_ + block_ > end_) new_chunk();
    void* p = next_;
    next_ += block_;
    return p;
  }
  // Returns a block to the pool it came from.
  static void deallocate(void* p) { owner(p)->release(p); }

 private:
  struct Header {
    BlockPool* pool;
  };
  static BlockPool* owner(void* p) {
    char* c = static_cast<char*>(p);
    return reinterpret_cast<Header*>(c - (reinterpret_cast<uintptr_t>(c) & (kChunk - 1)))->pool;
  }
  void release(void* p) {
    *static_cast<void**>(p) = free_;
    free_ = p;
  }
  void new_chunk() {
    // Twice the size, then the unaligned ends unmapped: an aligned chunk.
    void* m =
        ::mmap(nullptr, 2 * kChunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    const uintptr_t base = reinterpret_cast<uintptr_t>(m);
    const uintptr_t lead = ((base + kChunk - 1) & ~(kChunk - 1)) - base;  // bytes before the chunk
    char* c = static_cast<char*>(m) + lead;
    if (lead > 0) ::munmap(m, lead);
    if (lead < kChunk) ::munmap(c + kChunk, kChunk - lead);
    if (huge_pages_ && !chunks_.empty())
      ::madvise(c, kChunk, MADV_HUGEPAGE);  // a hint: ignored where unsupported
    chunks_.push_back(c);
    new (c) Header{this};
    next_ = c + kAlign;  // the header's line
    end_ = c + kChunk;
  }

  size_t block_;
  std::vector<void*> chunks_;
  char* next_ = nullptr;
  char* end_ = nullptr;
  void* free_ = nullptr;  // freed blocks, each holding the next one's address
  bool huge_pages_ = true;
};

}  // namespace millrace
