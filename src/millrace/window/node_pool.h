// NodePool: fixed-size blocks of 64-bit words addressed by a 32-bit id, the
// storage of window state (panes, sessions). Blocks live in chunks of
// kChunkNodes, so ids stay valid while the pool grows and memory follows the
// number of live nodes to within one chunk. Freed ids are reused first.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace millrace {

class NodePool {
 public:
  explicit NodePool(size_t words_per_node) : words_(words_per_node) {}

  size_t words_per_node() const { return words_; }

  // A new node, zero-filled.
  uint32_t alloc() {
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
    } else {
      id = next_++;
      if ((id >> kChunkBits) >= chunks_.size())
        chunks_.push_back(std::make_unique<uint64_t[]>(words_ << kChunkBits));
    }
    std::memset(at(id), 0, words_ * sizeof(uint64_t));
    ++live_;
    return id;
  }
  void free(uint32_t id) {
    free_.push_back(id);
    --live_;
  }
  uint64_t* at(uint32_t id) { return chunks_[id >> kChunkBits].get() + (id & kChunkMask) * words_; }
  const uint64_t* at(uint32_t id) const {
    return chunks_[id >> kChunkBits].get() + (id & kChunkMask) * words_;
  }

  size_t live() const { return live_; }
  size_t memory_bytes() const {
    return chunks_.size() * (words_ << kChunkBits) * sizeof(uint64_t) +
           free_.capacity() * sizeof(uint32_t) + chunks_.capacity() * sizeof(chunks_[0]);
  }

 private:
  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkMask = (1u << kChunkBits) - 1;

  size_t words_;
  std::vector<std::unique_ptr<uint64_t[]>> chunks_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  size_t live_ = 0;
};

}  // namespace millrace
