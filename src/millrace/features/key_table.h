// KeyTable: the keys of a SlidingFeatureGroup, found by their 64-bit hash.
//
// Open addressing with linear probing over slots of {hash, pointer} (16
// bytes, four to a cache line), at most half full, so that a lookup, found or
// not, mostly reads one line. A slot's hash is compared before the state it
// points to is read. Erasing shifts the following slots of the run back (no
// tombstones: the table never degrades under the churn of keys created and
// freed on every event). Everything is inline: a lookup is a few loads and
// compares, with no call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace millrace {

template <typename T>
class KeyTable {
 public:
  struct Slot {
    uint64_t hash;
    T* value;  // nullptr: empty
  };

  KeyTable() { reset(kMinCapacity); }
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  size_t size() const { return size_; }
  size_t capacity() const { return mask_ + 1; }

  void prefetch(uint64_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  // The value with this hash for which same(value) holds, else nullptr.
  template <typename Same>
  T* find(uint64_t hash, Same&& same) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == nullptr) return nullptr;
      if (s.hash == hash && same(s.value)) return s.value;
    }
  }
  // The first value with this hash (prefetching: a 64-bit hash match is taken
  // as the key), else nullptr.
  T* find_hash(uint64_t hash) const {
    return find(hash, [](const T*) { return true; });
  }

  // Adds a value that is not in the table.
  void insert(uint64_t hash, T* value) {
    if ((size_ + 1) * 2 > capacity()) grow();
    place(hash, value);
    ++size_;
  }

  // Removes this very value (found by its hash and address); false if absent.
  bool erase(uint64_t hash, const T* value) {
    size_t i = hash & mask_;
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == nullptr) return false;
      if (slots_[i].value == value) break;
    }
    // Shift back the slots after i whose home is not in (i, j].
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      Slot& s = slots_[j];
      if (s.value == nullptr) break;
      const size_t home = s.hash & mask_;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = s;
      i = j;
    }
    slots_[i].value = nullptr;
    --size_;
    return true;
  }

  template <typename F>
  void for_each(F&& f) const {
    for (size_t i = 0; i <= mask_; ++i)
      if (slots_[i].value) f(slots_[i].hash, slots_[i].value);
  }

  void clear() { reset(kMinCapacity); }

 private:
  static constexpr size_t kMinCapacity = 16;

  void reset(size_t capacity) {
    slots_.reset(new Slot[capacity]());
    mask_ = capacity - 1;
    size_ = 0;
  }
  void place(uint64_t hash, T* value) {
    size_t i = hash & mask_;
    while (slots_[i].value != nullptr) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, value};
  }
  void grow() {
    std::unique_ptr<Slot[]> old = std::move(slots_);
    const size_t old_capacity = mask_ + 1;
    const size_t n = size_;
    reset(old_capacity * 2);
    for (size_t i = 0; i < old_capacity; ++i)
      if (old[i].value) place(old[i].hash, old[i].value);
    size_ = n;
  }

  std::unique_ptr<Slot[]> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace millrace
