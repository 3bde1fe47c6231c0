// Appending JSON text: the one way millrace writes records (strings escaped
// per RFC 8259, doubles in shortest round-trip form, non-finite as null).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "millrace/core/shortest_double.h"

namespace millrace {

void append_json_string(std::string& out, std::string_view s);

inline void append_json_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

inline void append_json_double(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  out.append(buf, write_shortest_double(buf, v));
}

// Appends `"key": ` (with the separator before it when `first` is false).
inline void append_json_key(std::string& out, std::string_view key, bool first = false) {
  if (!first) out += ", ";
  append_json_string(out, key);
  out += ": ";
}

}  // namespace millrace
