// ShardLock: the lock between a worker, which changes its shard of feature
// state one event at a time, and the threads that read vectors from it.
// Phase-fair: readers and the writer take turns, so neither starves.
//
//  - Readers share the shard: any number read at once, none waits for another.
//  - A reader that comes while the writer holds the shard announces itself and
//    waits for the event in progress; the writer cannot take the shard again
//    before the announced readers are done. (A plain spin lock lets a busy
//    worker re-take the shard between events and starve readers.)
//  - A writer that wants the shard says so, and waits for the reads in
//    progress (each a few microseconds); readers that come after that wait
//    for its one event. (A plain reader-preferring lock lets back-to-back
//    readers stall the worker, and with it the pipeline.)
// So a reader waits for at most the reads already in and one event.
//
// Exclusive holders are the worker and readers that change shared state
// (loading a key from RocksDB). One atomic word: bit 0, an exclusive holder;
// bit 1, an exclusive holder waiting; the rest counts readers in or announced.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace millrace {

class ShardLock {
 public:
  void lock() {
    for (int spins = 0;;) {
      uint32_t s = state_.load(std::memory_order_relaxed);
      if ((s & ~kWaiting) == 0) {
        if (state_.compare_exchange_weak(s, kExclusive, std::memory_order_acquire,
                                         std::memory_order_relaxed))
          return;
      } else if (!(s & kWaiting)) {
        state_.fetch_or(kWaiting, std::memory_order_relaxed);
      }
      backoff(spins);
    }
  }
  void unlock() { state_.fetch_sub(kExclusive, std::memory_order_release); }

  void lock_shared() {
    int spins = 0;
    // A writer is waiting for the reads in progress: let it go first.
    while (state_.load(std::memory_order_relaxed) & kWaiting) backoff(spins);
    uint32_t s = state_.fetch_add(kReader, std::memory_order_acquire);
    while (s & kExclusive) {
      backoff(spins);
      s = state_.load(std::memory_order_acquire);
    }
  }
  void unlock_shared() { state_.fetch_sub(kReader, std::memory_order_release); }

 private:
  static constexpr uint32_t kExclusive = 1, kWaiting = 2, kReader = 4;
  // Spins briefly, then yields the core (the holder may have been preempted).
  static void backoff(int& spins) {
    if (++spins < 2000) {
      __builtin_ia32_pause();
    } else {
      sched_yield();
    }
  }
  std::atomic<uint32_t> state_{0};
};

}  // namespace millrace
