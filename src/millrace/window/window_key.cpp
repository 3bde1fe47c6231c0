#include "millrace/window/window_key.h"

#include "millrace/core/json_writer.h"

namespace millrace {

void encode_window_key(const Event& event, const std::vector<int>& key_fields, std::string* out) {
  for (int f : key_fields) {
    const FieldValue& v = event.values[f];
    switch (v.kind) {
      case FieldValue::Kind::Null:
        out->push_back('n');
        break;
      case FieldValue::Kind::Int:
        out->push_back('i');
        out->append(reinterpret_cast<const char*>(&v.i), sizeof v.i);
        break;
      case FieldValue::Kind::Double:
        out->push_back('d');
        out->append(reinterpret_cast<const char*>(&v.d), sizeof v.d);
        break;
      case FieldValue::Kind::Bool:
        out->push_back('b');
        out->push_back(v.b ? 1 : 0);
        break;
      case FieldValue::Kind::String: {
        out->push_back('s');
        uint32_t n = v.s.len;
        while (n >= 0x80) {
          out->push_back(static_cast<char>(0x80 | (n & 0x7f)));
          n >>= 7;
        }
        out->push_back(static_cast<char>(n));
        out->append(event.str(v));
        break;
      }
    }
  }
}

void append_window_key_json(std::string& out, std::string_view encoded,
                            const std::vector<std::string>& names) {
  size_t pos = 0;
  for (const std::string& name : names) {
    append_json_key(out, name);
    char tag = encoded[pos++];
    switch (tag) {
      case 'i': {
        int64_t i;
        std::memcpy(&i, encoded.data() + pos, sizeof i);
        pos += sizeof i;
        append_json_int(out, i);
        break;
      }
      case 'd': {
        double d;
        std::memcpy(&d, encoded.data() + pos, sizeof d);
        pos += sizeof d;
        append_json_double(out, d);
        break;
      }
      case 'b':
        out += encoded[pos++] ? "true" : "false";
        break;
      case 's': {
        uint32_t n = 0;
        int shift = 0;
        uint8_t byte;
        do {
          byte = static_cast<uint8_t>(encoded[pos++]);
          n |= static_cast<uint32_t>(byte & 0x7f) << shift;
          shift += 7;
        } while (byte & 0x80);
        append_json_string(out, encoded.substr(pos, n));
        pos += n;
        break;
      }
      default:
        out += "null";
    }
  }
}

KeyTable::KeyTable() : index_(0, Hash{this}, Eq{this}) {}

KeyTable::~KeyTable() {
  for (uint32_t id : index_) {
    Entry& e = entry(id);
    if (e.is_heap()) delete[] e.view().data();
  }
}

uint32_t KeyTable::find(std::string_view encoded) const {
  auto it = index_.find(encoded);
  return it == index_.end() ? kNone : *it;
}

uint32_t KeyTable::intern(std::string_view encoded) {
  auto it = index_.find(encoded);
  if (it != index_.end()) return *it;
  uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = next_++;
    if ((id >> kChunkBits) >= chunks_.size())
      chunks_.push_back(std::make_unique<Entry[]>(size_t{1} << kChunkBits));
  }
  Entry& e = entry(id);
  e.head = kNone;
  if (encoded.size() <= 15) {
    std::memcpy(e.bytes, encoded.data(), encoded.size());
    e.bytes[15] = static_cast<char>(encoded.size());
  } else {
    char* p = new char[encoded.size()];
    std::memcpy(p, encoded.data(), encoded.size());
    uint32_t n = static_cast<uint32_t>(encoded.size());
    std::memcpy(e.bytes, &p, sizeof p);
    std::memcpy(e.bytes + 8, &n, sizeof n);
    e.bytes[15] = static_cast<char>(0xff);
    heap_bytes_ += n;
  }
  index_.insert(id);
  return id;
}

void KeyTable::erase(uint32_t id) {
  index_.erase(id);
  Entry& e = entry(id);
  if (e.is_heap()) {
    heap_bytes_ -= e.view().size();
    delete[] e.view().data();
    e.bytes[15] = 0;
  }
  free_.push_back(id);
}

size_t KeyTable::memory_bytes() const {
  return index_.capacity() * (sizeof(uint32_t) + 1) +
         chunks_.size() * (sizeof(Entry) << kChunkBits) + free_.capacity() * sizeof(uint32_t) +
         heap_bytes_;
}

}  // namespace millrace
