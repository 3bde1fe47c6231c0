#include "millrace/window/window_key.h"

#include <charconv>
#include <cmath>

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

namespace {

// A string's length in an encoded key: 7 bits a byte, low bits first.
uint32_t read_length(std::string_view encoded, size_t* pos) {
  uint32_t n = 0;
  int shift = 0;
  uint8_t byte;
  do {
    byte = static_cast<uint8_t>(encoded[(*pos)++]);
    n |= static_cast<uint32_t>(byte & 0x7f) << shift;
    shift += 7;
  } while (byte & 0x80);
  return n;
}

}  // namespace

void append_window_key_json(std::string& out, std::string_view encoded,
                            const std::vector<std::string>& prefixes) {
  size_t pos = 0;
  for (const std::string& prefix : prefixes) {
    out += prefix;
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
        const uint32_t n = read_length(encoded, &pos);
        append_json_string(out, encoded.substr(pos, n));
        pos += n;
        break;
      }
      default:
        out += "null";
    }
  }
}

char* write_window_key_json(char* p, std::string_view encoded,
                            const std::vector<std::string>& prefixes) {
  auto put = [&](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  size_t pos = 0;
  for (const std::string& prefix : prefixes) {
    put(prefix);
    char tag = encoded[pos++];
    switch (tag) {
      case 'i': {
        int64_t i;
        std::memcpy(&i, encoded.data() + pos, sizeof i);
        pos += sizeof i;
        p = std::to_chars(p, p + 24, i).ptr;
        break;
      }
      case 'd': {
        double d;
        std::memcpy(&d, encoded.data() + pos, sizeof d);
        pos += sizeof d;
        if (std::isfinite(d))
          p = write_shortest_double(p, d);
        else
          put("null");
        break;
      }
      case 'b':
        put(encoded[pos++] ? "true" : "false");
        break;
      case 's': {
        const uint32_t n = read_length(encoded, &pos);
        const std::string_view s = encoded.substr(pos, n);
        for (char ch : s) {
          const unsigned char c = static_cast<unsigned char>(ch);
          if (c < 0x20 || c == '"' || c == '\\') return nullptr;
        }
        *p++ = '"';
        put(s);
        *p++ = '"';
        pos += n;
        break;
      }
      default:
        put("null");
    }
  }
  return p;
}

void KeyIndex::erase(Slot* s) {
  size_t i = static_cast<size_t>(s - slots_.data());
  for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    if (slots_[j].head == kNone) break;
    size_t home = slots_[j].hash & mask_;
    // Move slot j into the hole at i unless its home lies cyclically in (i, j].
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i].head = kNone;
  --size_;
  if (slots_.size() > 64 && size_ * 10 < slots_.size()) resize(slots_.size() / 2);
}

void KeyIndex::resize(size_t capacity) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(capacity, Slot{0, kNone});
  slots_.shrink_to_fit();
  mask_ = capacity - 1;
  for (const Slot& s : old)
    if (s.head != kNone) place(s.hash, s.head);
}

}  // namespace millrace
