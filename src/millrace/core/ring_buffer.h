// RingBuffer<T>: a growable circular buffer with O(1) push_back/pop_front and
// insertion in the middle at O(distance to the back), for time-ordered buffers
// where out-of-order arrivals land near the end.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <utility>

namespace millrace {

template <typename T>
class RingBuffer {
 public:
  RingBuffer() = default;
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;
  RingBuffer(RingBuffer&& o) noexcept { swap(o); }
  RingBuffer& operator=(RingBuffer&& o) noexcept {
    swap(o);
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return cap_; }

  T& operator[](size_t i) { return data_[(head_ + i) & (cap_ - 1)]; }
  const T& operator[](size_t i) const { return data_[(head_ + i) & (cap_ - 1)]; }
  T& front() { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& front() const { return (*this)[0]; }
  const T& back() const { return (*this)[size_ - 1]; }

  void push_back(T v) {
    if (size_ == cap_) grow();
    data_[(head_ + size_) & (cap_ - 1)] = std::move(v);
    ++size_;
  }
  void pop_front() {
    assert(size_ > 0);
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
    if (size_ == 0) head_ = 0;
  }
  void pop_back() {
    assert(size_ > 0);
    --size_;
  }
  // Inserts v before position pos (0 <= pos <= size()), shifting later elements back.
  void insert(size_t pos, T v) {
    assert(pos <= size_);
    push_back(std::move(v));
    for (size_t i = size_ - 1; i > pos; --i) std::swap((*this)[i], (*this)[i - 1]);
  }
  // Removes position pos, shifting later elements forward.
  void erase(size_t pos) {
    assert(pos < size_);
    for (size_t i = pos; i + 1 < size_; ++i) std::swap((*this)[i], (*this)[i + 1]);
    --size_;
  }
  void clear() {
    size_ = 0;
    head_ = 0;
  }
  // Frees memory when mostly empty.
  void shrink() {
    if (cap_ > 8 && size_ * 4 < cap_) reallocate(cap_ / 2);
  }

  void swap(RingBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(cap_, o.cap_);
    std::swap(head_, o.head_);
    std::swap(size_, o.size_);
  }

 private:
  void grow() { reallocate(cap_ == 0 ? 4 : cap_ * 2); }
  void reallocate(size_t cap) {
    std::unique_ptr<T[]> d(new T[cap]);
    for (size_t i = 0; i < size_; ++i) d[i] = std::move((*this)[i]);
    data_ = std::move(d);
    cap_ = cap;
    head_ = 0;
  }

  std::unique_ptr<T[]> data_;
  size_t cap_ = 0;  // a power of two
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace millrace
