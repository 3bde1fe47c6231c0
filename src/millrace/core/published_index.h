// PublishedIndex<T>: objects by 64-bit hash, changed by one writer thread
// and searched by reader threads without locks (with an EpochReclaimer).
//
// Readers may assume: inside an EpochReclaimer::ReadGuard, find() returns
// nullptr or an object that was in the index at some point during the call
// and whose memory stays valid until the guard ends (the writer retires
// objects it removes). Everything the writer wrote to an object before
// insert()ing it is visible to a reader that finds it. Several objects may
// share a hash: find() asks `match` to confirm each candidate.
// The writer guarantees: it alone calls insert(), erase() and clear(); it
// retires (does not free) removed objects.
//
// Open addressing with linear probing, at most half full (removed entries
// count until the next rebuild). A rebuild copies the live entries into a
// new array, publishes it and retires the old one, which readers still
// probing it may finish reading.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "millrace/core/epoch.h"

namespace millrace {

template <typename T>
class PublishedIndex {
 public:
  explicit PublishedIndex(EpochReclaimer* reclaimer) : reclaimer_(reclaimer) {
    table_.store(Table::make(16), std::memory_order_relaxed);
  }
  ~PublishedIndex() { Table::destroy(nullptr, table_.load(std::memory_order_relaxed)); }
  PublishedIndex(const PublishedIndex&) = delete;
  PublishedIndex& operator=(const PublishedIndex&) = delete;

  // Reader, inside a ReadGuard of the reclaimer.
  template <typename Match>
  T* find(uint64_t hash, Match&& match) const {
    const Table* t = table_.load(std::memory_order_acquire);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      T* p = t->slots[i].object.load(std::memory_order_acquire);
      if (p == nullptr) return nullptr;
      if (p != removed() && t->slots[i].hash.load(std::memory_order_relaxed) == hash && match(p))
        return p;
    }
  }

  // Writer.
  void insert(uint64_t hash, T* object) {
    Table* t = table_.load(std::memory_order_relaxed);
    if ((t->used + 1) * 2 > t->mask + 1) t = rebuild(std::max<size_t>(16, (t->live + 1) * 4));
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      T* p = t->slots[i].object.load(std::memory_order_relaxed);
      if (p == nullptr || p == removed()) {
        if (p == nullptr) ++t->used;
        ++t->live;
        t->slots[i].hash.store(hash, std::memory_order_relaxed);
        t->slots[i].object.store(object, std::memory_order_release);
        return;
      }
    }
  }
  void erase(uint64_t hash, const T* object) {
    Table* t = table_.load(std::memory_order_relaxed);
    for (size_t i = hash & t->mask;; i = (i + 1) & t->mask) {
      T* p = t->slots[i].object.load(std::memory_order_relaxed);
      if (p == nullptr) return;
      if (p == object) {
        t->slots[i].object.store(removed(), std::memory_order_release);
        --t->live;
        return;
      }
    }
  }
  void clear() { rebuild(16, /*keep=*/false); }
  size_t size() const { return table_.load(std::memory_order_relaxed)->live; }
  size_t memory_bytes() const {
    return (table_.load(std::memory_order_relaxed)->mask + 1) * sizeof(Slot);
  }

 private:
  struct Slot {
    std::atomic<uint64_t> hash{0};
    std::atomic<T*> object{nullptr};
  };
  struct Table {
    explicit Table(size_t capacity) : mask(capacity - 1), slots(new Slot[capacity]) {}
    size_t mask;
    size_t used = 0;  // slots not empty (live or removed)
    size_t live = 0;
    std::unique_ptr<Slot[]> slots;
    static Table* make(size_t capacity) { return new Table(capacity); }
    static void destroy(void*, void* t) { delete static_cast<Table*>(t); }
  };
  // A marker no object has: the address alignof(T), never allocated.
  static T* removed() {
    return reinterpret_cast<T*>(alignof(T));  // NOLINT(performance-no-int-to-ptr)
  }

  Table* rebuild(size_t min_capacity, bool keep = true) {
    Table* old = table_.load(std::memory_order_relaxed);
    size_t cap = 16;
    while (cap < min_capacity) cap *= 2;
    Table* t = Table::make(cap);
    if (keep) {
      for (size_t i = 0; i <= old->mask; ++i) {
        T* p = old->slots[i].object.load(std::memory_order_relaxed);
        if (p == nullptr || p == removed()) continue;
        const uint64_t h = old->slots[i].hash.load(std::memory_order_relaxed);
        size_t j = h & t->mask;
        while (t->slots[j].object.load(std::memory_order_relaxed) != nullptr) j = (j + 1) & t->mask;
        t->slots[j].hash.store(h, std::memory_order_relaxed);
        t->slots[j].object.store(p, std::memory_order_relaxed);
        ++t->used;
        ++t->live;
      }
    }
    table_.store(t, std::memory_order_release);
    reclaimer_->retire(old, &Table::destroy, nullptr);
    return t;
  }

  EpochReclaimer* reclaimer_;
  std::atomic<Table*> table_;
};

}  // namespace millrace
