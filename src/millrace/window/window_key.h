// Window keys: the values of a window's key fields encoded as bytes (equal
// keys encode equally), stored inline in the operator's nodes (StoredKey), and
// KeyIndex, which finds the first node of a key's state by the key's hash.
// Encoding, per key field: a tag byte ('n' null, 'i' int64, 'd' double, 'b'
// bool, 's' string) then the value (8 bytes for numbers, 1 for bools, a one-
// to five-byte length and the bytes for strings).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/core/hash.h"
#include "millrace/core/schema.h"

namespace millrace {

// Appends the encoding of `event`'s key fields to *out.
void encode_window_key(const Event& event, const std::vector<int>& key_fields, std::string* out);

// Appends `<prefix> value` for each key field of an encoded key, where each
// prefix is the field's `, "name": ` already formatted.
void append_window_key_json(std::string& out, std::string_view encoded,
                            const std::vector<std::string>& prefixes);

// Writes the same text at p and returns its end, unless a string needs
// escaping (nullptr then, and append_window_key_json must be used). Takes at
// most the prefixes' length + encoded.size() + kKeyFieldChars per field.
inline constexpr size_t kKeyFieldChars = 32;
char* write_window_key_json(char* p, std::string_view encoded,
                            const std::vector<std::string>& prefixes);

// An encoded key and its 32-bit hash.
struct KeyRef {
  std::string_view bytes;
  uint32_t hash = 0;
};

inline uint32_t window_key_hash(std::string_view encoded) {
  uint64_t h = hash_string(encoded);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// A key kept in two 64-bit words: keys of up to 15 encoded bytes inline
// (byte 15 holds the length), longer ones on the heap (byte 15 is 0xff,
// bytes 0-7 the pointer, 8-11 the length). Zero-filled words hold the empty key.
namespace stored_key {

inline bool on_heap(const uint64_t* w) {
  return reinterpret_cast<const uint8_t*>(w)[15] == 0xff;
}
inline std::string_view view(const uint64_t* w) {
  const char* b = reinterpret_cast<const char*>(w);
  if (!on_heap(w)) return std::string_view(b, static_cast<uint8_t>(b[15]));
  const char* p;
  uint32_t n;
  std::memcpy(&p, b, sizeof p);
  std::memcpy(&n, b + 8, sizeof n);
  return std::string_view(p, n);
}
// Stores `key` into zero-filled words.
inline void store(uint64_t* w, std::string_view key) {
  char* b = reinterpret_cast<char*>(w);
  if (key.size() <= 15) {
    if (!key.empty()) std::memcpy(b, key.data(), key.size());
    b[15] = static_cast<char>(key.size());
    return;
  }
  char* p = new char[key.size()];
  std::memcpy(p, key.data(), key.size());
  uint32_t n = static_cast<uint32_t>(key.size());
  std::memcpy(b, &p, sizeof p);
  std::memcpy(b + 8, &n, sizeof n);
  b[15] = static_cast<char>(0xff);
}
// Frees a heap key; the words then hold the empty key.
inline void release(uint64_t* w) {
  if (on_heap(w)) delete[] view(w).data();
  w[0] = w[1] = 0;
}
// Heap bytes held beyond the two words.
inline size_t heap_bytes(const uint64_t* w) {
  return on_heap(w) ? view(w).size() : 0;
}

}  // namespace stored_key

// KeyIndex: open addressing (linear probing, deletion by backward shift) from
// a key's hash to the first node of its state. A slot is 8 bytes (the full
// 32-bit hash and the node id), so a lookup reads one line of the index and
// compares key bytes only on a full hash match. The table grows at a load of
// 0.8 and shrinks below 0.1, so memory follows the number of live keys.
// Slot pointers are valid until the next insert or erase.
class KeyIndex {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  struct Slot {
    uint32_t hash;
    uint32_t head;  // kNone: empty
  };

  KeyIndex() { resize(16); }

  // The slot of the key with this hash for which same(head) holds, or nullptr.
  template <typename Same>
  Slot* find(uint32_t hash, Same&& same) {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.head == kNone) return nullptr;
      if (s.hash == hash && same(s.head)) return &s;
    }
  }
  // The head of the first slot with this hash, or kNone (a guess for prefetching).
  uint32_t guess(uint32_t hash) const {
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.head == kNone || s.hash == hash) return s.head;
    }
  }
  void prefetch(uint32_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  // Adds a key known to be absent.
  void insert(uint32_t hash, uint32_t head) {
    if ((size_ + 1) * 5 > slots_.size() * 4) resize(slots_.size() * 2);
    place(hash, head);
    ++size_;
  }
  void erase(Slot* s);

  size_t size() const { return size_; }
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }
  void clear() {
    size_ = 0;
    slots_.clear();
    resize(16);
  }
  // Calls f(head) for every key.
  template <typename F>
  void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.head != kNone) f(s.head);
  }

 private:
  void place(uint32_t hash, uint32_t head) {
    size_t i = hash & mask_;
    while (slots_[i].head != kNone) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, head};
  }
  void resize(size_t capacity);

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace millrace
