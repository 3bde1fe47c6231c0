// ByteWriter / ByteReader: the little-endian binary encoding of state
// snapshots (checkpoint parts). A writer appends fixed-width integers,
// doubles (their exact bits) and length-prefixed strings to a std::string; a
// reader takes them back in the same order, bounds-checked: reading past the
// end sets failed() and yields zeros, so a damaged snapshot is reported, never
// a crash.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace millrace {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { raw(&v, sizeof v); }
  void u64(uint64_t v) { raw(&v, sizeof v); }
  void i64(int64_t v) { raw(&v, sizeof v); }
  void f64(double v) { u64(std::bit_cast<uint64_t>(v)); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }
  void str64(std::string_view s) {
    u64(s.size());
    out_->append(s.data(), s.size());
  }
  void raw(const void* p, size_t n) {
    if (n) out_->append(static_cast<const char*>(p), n);
  }
  std::string* out() { return out_; }

 private:
  std::string* out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint8_t u8() {
    uint8_t v = 0;
    raw(&v, 1);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  int64_t i64() {
    int64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  double f64() { return std::bit_cast<double>(u64()); }
  std::string_view str() {
    uint32_t n = u32();
    if (failed_ || n > in_.size() - pos_) {
      failed_ = true;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view str64() {
    uint64_t n = u64();
    if (failed_ || n > in_.size() - pos_) {
      failed_ = true;
      return {};
    }
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  void raw(void* p, size_t n) {
    if (n == 0) return;  // p may be null (an empty vector's data())
    if (failed_ || n > in_.size() - pos_) {
      failed_ = true;
      std::memset(p, 0, n);
      return;
    }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
  }
  // A count of items each taking at least `min_bytes`: fails (and returns 0)
  // when the rest of the input cannot hold that many, so a damaged count
  // never makes the caller allocate without bound.
  uint32_t count(size_t min_bytes) {
    uint32_t n = u32();
    if (min_bytes > 0 && n > (in_.size() - pos_) / min_bytes) {
      failed_ = true;
      return 0;
    }
    return n;
  }
  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace millrace
