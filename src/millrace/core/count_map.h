// CountMap: how many times each 64-bit value occurs, for the values of a
// count_distinct or is_new window (the bits of a number, or the hash of a
// text). Every event of the window adds its value once and removes it once
// when it leaves, so the map is searched on every event of the key: an
// open-addressing table of 16-byte slots {value, count}, linear probing at a
// load of at most 1/2, no tombstones (a removal shifts the entries behind it
// back), and a count of 0 marks an empty slot, so that any value, 0 included,
// can be kept.
//
// Values are spread over the table by a multiply-xorshift mix, since the bits
// of small numbers differ only in their high bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace millrace {

class CountMap {
 public:
  CountMap() = default;
  CountMap(const CountMap&) = delete;
  CountMap& operator=(const CountMap&) = delete;

  // A map holds a table once a value was added or activate() was called, until clear().
  bool active() const { return slots_ != nullptr; }
  void activate() {
    if (!slots_) grow();
  }
  // Empty, without a table.
  void clear() {
    slots_.reset();
    mask_ = 0;
    size_ = 0;
  }
  void swap(CountMap& o) noexcept {
    std::swap(slots_, o.slots_);
    std::swap(mask_, o.mask_);
    std::swap(size_, o.size_);
  }

  size_t size() const { return size_; }
  size_t capacity() const { return mask_ + 1; }
  // Bytes of the table (the map's own members not counted).
  size_t table_bytes() const { return slots_ ? capacity() * sizeof(Slot) : 0; }
  // Where the search for v starts (an active map), for a prefetch.
  const void* home_of(uint64_t v) const { return &slots_[home(v)]; }

  // How many times v occurs (0: not at all).
  uint32_t count(uint64_t v) const {
    if (!slots_) return 0;
    for (size_t i = home(v);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.n == 0) return 0;
      if (s.v == v) return s.n;
    }
  }

  // v occurs n (> 0) more times.
  void add(uint64_t v, uint32_t n = 1) { slot_of(v).n += n; }
  // v occurs n (> 0) times (replacing any count it had).
  void set(uint64_t v, uint32_t n) { slot_of(v).n = n; }

  // One occurrence of v (which occurs) fewer; at none, v leaves the map.
  void remove_one(uint64_t v) {
    size_t i = home(v);
    while (slots_[i].v != v || slots_[i].n == 0) i = (i + 1) & mask_;
    if (--slots_[i].n > 0) return;
    --size_;
    // Shift back each following entry of the run that may move to the hole:
    // one whose home is not in (hole, its position].
    for (size_t j = (i + 1) & mask_; slots_[j].n != 0; j = (j + 1) & mask_) {
      const size_t h = home(slots_[j].v);
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      slots_[j].n = 0;
      i = j;
    }
  }

  // Calls f(value, count) for every value, in table order.
  template <typename F>
  void for_each(F&& f) const {
    if (!slots_) return;
    for (size_t i = 0; i <= mask_; ++i)
      if (slots_[i].n != 0) f(slots_[i].v, slots_[i].n);
  }

 private:
  struct Slot {
    uint64_t v;
    uint32_t n;  // 0: empty
  };
  static constexpr size_t kMinCapacity = 16;

  static uint64_t mix(uint64_t v) {
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdULL;
    v ^= v >> 33;
    return v;
  }
  size_t home(uint64_t v) const { return static_cast<size_t>(mix(v)) & mask_; }

  // The slot of v, made (with a count of 0) when v is not there.
  Slot& slot_of(uint64_t v) {
    if (2 * (size_ + 1) > capacity() || !slots_) grow();
    size_t i = home(v);
    for (;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.n == 0) {
        s.v = v;
        ++size_;
        return s;
      }
      if (s.v == v) return s;
    }
  }

  void grow() {
    const size_t cap = slots_ ? 2 * capacity() : kMinCapacity;
    std::unique_ptr<Slot[]> old = std::exchange(slots_, std::make_unique<Slot[]>(cap));
    const size_t old_cap = old ? capacity() : 0;
    mask_ = cap - 1;
    for (size_t i = 0; i < old_cap; ++i) {
      if (old[i].n == 0) continue;
      size_t j = home(old[i].v);
      while (slots_[j].n != 0) j = (j + 1) & mask_;
      slots_[j] = old[i];
    }
  }

  std::unique_ptr<Slot[]> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace millrace
