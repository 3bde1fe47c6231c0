// Window keys: the values of a window's key fields encoded as bytes (equal
// keys encode equally), and KeyTable, which interns each live key as a 32-bit
// id with a 20-byte entry: keys of up to 15 encoded bytes are stored inline,
// longer ones on the heap. Encoding, per key field: a tag byte ('n' null,
// 'i' int64, 'd' double, 'b' bool, 's' string) then the value (8 bytes for
// numbers, 1 for bools, a one- to five-byte length and the bytes for strings).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "millrace/core/event.h"
#include "millrace/core/hash.h"
#include "millrace/core/schema.h"

namespace millrace {

// Appends the encoding of `event`'s key fields to *out.
void encode_window_key(const Event& event, const std::vector<int>& key_fields, std::string* out);

// Appends `, "name": value` for each key field of an encoded key.
void append_window_key_json(std::string& out, std::string_view encoded,
                            const std::vector<std::string>& names);

class KeyTable {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  KeyTable();
  ~KeyTable();
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  // The id of `encoded`, or kNone.
  uint32_t find(std::string_view encoded) const;
  // The id of `encoded`, interned (with head() == kNone) when new.
  uint32_t intern(std::string_view encoded);
  // Forgets a key; its id may be reused.
  void erase(uint32_t id);

  std::string_view key(uint32_t id) const { return entry(id).view(); }
  // The first node of the key's state (a list kept by the operator).
  uint32_t& head(uint32_t id) { return entry(id).head; }

  size_t size() const { return index_.size(); }
  size_t memory_bytes() const;

  // Calls f(id) for every live key.
  template <typename F>
  void for_each(F&& f) const {
    for (uint32_t id : index_) f(id);
  }

 private:
  struct Entry {
    // Inline: bytes[0..n) with n = bytes[15] <= 15. Heap: bytes[15] == 0xff,
    // bytes[0..8) a char*, bytes[8..12) the length.
    char bytes[16];
    uint32_t head;
    bool is_heap() const { return static_cast<uint8_t>(bytes[15]) == 0xff; }
    std::string_view view() const {
      if (!is_heap()) return std::string_view(bytes, static_cast<uint8_t>(bytes[15]));
      const char* p;
      uint32_t n;
      std::memcpy(&p, bytes, sizeof p);
      std::memcpy(&n, bytes + 8, sizeof n);
      return std::string_view(p, n);
    }
  };
  static_assert(sizeof(Entry) == 20);

  struct Hash {
    using is_transparent = void;
    const KeyTable* table;
    size_t operator()(uint32_t id) const { return hash_string(table->key(id)); }
    size_t operator()(std::string_view s) const { return hash_string(s); }
  };
  struct Eq {
    using is_transparent = void;
    const KeyTable* table;
    std::string_view v(uint32_t id) const { return table->key(id); }
    std::string_view v(std::string_view s) const { return s; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return v(a) == v(b);
    }
  };

  static constexpr uint32_t kChunkBits = 10;
  Entry& entry(uint32_t id) { return chunks_[id >> kChunkBits][id & ((1u << kChunkBits) - 1)]; }
  const Entry& entry(uint32_t id) const {
    return chunks_[id >> kChunkBits][id & ((1u << kChunkBits) - 1)];
  }

  std::vector<std::unique_ptr<Entry[]>> chunks_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  size_t heap_bytes_ = 0;
  absl::flat_hash_set<uint32_t, Hash, Eq> index_;
};

}  // namespace millrace
