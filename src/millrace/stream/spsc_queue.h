// SpscQueue<T>: a bounded single-producer single-consumer queue between two
// threads. The producer never blocks when the capacity covers every item in
// flight (the runtime sizes it so); the consumer spins briefly, then sleeps on
// a futex (std::atomic::wait) until the producer publishes.
//
// Concurrency contract: exactly one thread calls push(), exactly one calls
// pop_wait()/try_pop(). Items are visible to the consumer once push() returns.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

namespace millrace {

// True if `pred()` came to hold during a short spin and a few yields.
template <typename Pred>
bool spin_briefly(Pred& pred) {
  for (int i = 0; i < 64; ++i) {
    if (pred()) return true;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  for (int i = 0; i < 4; ++i) {
    if (pred()) return true;
    std::this_thread::yield();
  }
  return false;
}

// Waits until `pred()` holds: a short spin, a few yields, then sleeping on
// `word` changing from the value it had (the waker stores to it and notifies
// when `sleeping` is set).
template <typename Pred>
void wait_until(Pred pred, std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleeping) {
  if (spin_briefly(pred)) return;
  while (!pred()) {
    uint32_t seen = word.load(std::memory_order_seq_cst);
    sleeping.fetch_add(1, std::memory_order_seq_cst);
    if (!pred()) word.wait(seen, std::memory_order_seq_cst);
    sleeping.fetch_sub(1, std::memory_order_seq_cst);
  }
}

// Waits until `pred()` holds without anyone having to wake the waiter: a short
// spin, a few yields, then naps of ~50 us. For waits where the other side
// makes progress on every item (the sink waiting for results), so that no
// item costs a wake-up system call; adds at most a nap to latency.
template <typename Pred>
void poll_until(Pred pred) {
  if (spin_briefly(pred)) return;
  while (!pred()) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

// Called by the side that changes what a wait_until() predicate reads, after the change.
inline void wake(std::atomic<uint32_t>& word, std::atomic<uint32_t>& sleeping) {
  word.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping.load(std::memory_order_seq_cst) != 0) word.notify_all();
}

template <typename T>
class SpscQueue {
 public:
  explicit SpscQueue(size_t capacity_pow2)
      : mask_(capacity_pow2 - 1), items_(new T[capacity_pow2]) {}

  // Returns false when full.
  bool push(const T& item) {
    if (!stage(item)) return false;
    publish();
    return true;
  }

  // Writes an item without making it visible; publish() shows every staged
  // item at once (one wake-up for a batch). Returns false when full.
  bool stage(const T& item) {
    if (staged_ - head_.load(std::memory_order_acquire) > mask_) return false;
    items_[staged_ & mask_] = item;
    ++staged_;
    return true;
  }
  void publish() {
    if (staged_ == tail_.load(std::memory_order_relaxed)) return;
    tail_.store(staged_, std::memory_order_release);
    wake(signal_, sleeping_);
  }

  bool try_pop(T* out) {
    uint64_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_.load(std::memory_order_acquire)) return false;
    *out = items_[head & mask_];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  void pop_wait(T* out) {
    if (try_pop(out)) return;
    wait_until(
        [&] {
          return head_.load(std::memory_order_relaxed) != tail_.load(std::memory_order_acquire);
        },
        signal_, sleeping_);
    try_pop(out);
  }

 private:
  const uint64_t mask_;
  std::unique_ptr<T[]> items_;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t staged_ = 0;  // producer only
  alignas(64) std::atomic<uint32_t> signal_{0};
  std::atomic<uint32_t> sleeping_{0};
};

}  // namespace millrace
