// EpochReclaimer: deferred freeing for one writer thread and any number of
// reader threads that read its data without locks.
//
// Contract:
//  - A reader brackets every access to the shared data with a ReadGuard. It
//    may hold pointers it read inside the guard until the guard ends.
//  - The writer unlinks an object (no reader entering afterwards can reach
//    it), then retire()s it instead of freeing it. A retired object is freed
//    by collect() once every reader that was inside a guard when it was
//    retired has left: an object stays valid memory for as long as a reader
//    can hold a pointer to it.
//  - Only the writer calls retire(), collect() and free_all().
//
// Two reader counters, one per parity of the epoch. A reader registers on
// the counter of the epoch it read and checks that the epoch did not move
// meanwhile. The writer moves the epoch from E to E + 1 only when no reader
// of E - 1 is left; then nothing retired in E - 1 or before can be held by a
// reader, and it is freed. Readers never wait: a reader slower than the
// writer only delays freeing.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace millrace {

class EpochReclaimer {
 public:
  using Deleter = void (*)(void* context, void* object);

  EpochReclaimer() = default;
  EpochReclaimer(const EpochReclaimer&) = delete;
  EpochReclaimer& operator=(const EpochReclaimer&) = delete;
  // Frees what is still retired: no reader may be inside a guard.
  ~EpochReclaimer() { free_all(); }

  class ReadGuard {
   public:
    explicit ReadGuard(const EpochReclaimer& r) : r_(r) {
      for (;;) {
        epoch_ = r_.epoch_.load(std::memory_order_seq_cst);
        r_.readers_[epoch_ & 1].n.fetch_add(1, std::memory_order_seq_cst);
        if (r_.epoch_.load(std::memory_order_seq_cst) == epoch_) return;
        r_.readers_[epoch_ & 1].n.fetch_sub(1, std::memory_order_release);
      }
    }
    ~ReadGuard() { r_.readers_[epoch_ & 1].n.fetch_sub(1, std::memory_order_release); }
    ReadGuard(const ReadGuard&) = delete;
    ReadGuard& operator=(const ReadGuard&) = delete;

   private:
    const EpochReclaimer& r_;
    uint64_t epoch_;
  };

  // Writer: `object` is unreachable for readers entering from now on; frees
  // it with deleter(context, object) once no reader can hold it.
  void retire(void* object, Deleter deleter, void* context) {
    retired_.push_back({epoch_.load(std::memory_order_relaxed), object, deleter, context});
  }
  bool has_retired() const { return !retired_.empty(); }

  // Writer: frees what no reader can hold any more, and moves the epoch on
  // when the readers of the previous one have left. Cheap when nothing is
  // retired (returns at once).
  void collect() {
    if (retired_.empty()) return;
    const uint64_t e = epoch_.load(std::memory_order_relaxed);
    if (readers_[(e - 1) & 1].n.load(std::memory_order_seq_cst) != 0) return;
    // No reader of epoch e - 1 is left, and those of earlier epochs had left
    // before the epoch reached e: what was retired before e is free.
    size_t kept = 0;
    for (size_t i = 0; i < retired_.size(); ++i) {
      Retired& r = retired_[i];
      if (r.epoch < e) {
        r.deleter(r.context, r.object);
      } else {
        retired_[kept++] = r;
      }
    }
    retired_.resize(kept);
    epoch_.store(e + 1, std::memory_order_seq_cst);
  }

  // Writer, with no reader inside a guard: frees everything retired.
  void free_all() {
    for (Retired& r : retired_) r.deleter(r.context, r.object);
    retired_.clear();
  }

 private:
  struct Retired {
    uint64_t epoch;
    void* object;
    Deleter deleter;
    void* context;
  };
  struct alignas(64) Counter {
    std::atomic<int64_t> n{0};
  };
  alignas(64) std::atomic<uint64_t> epoch_{2};
  mutable Counter readers_[2];
  std::vector<Retired> retired_;  // writer only, in epoch order
};

}  // namespace millrace
