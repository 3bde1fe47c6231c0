// A parsed event: its event time and one typed value per schema field.
// String values live in the event's own arena, so an Event owns everything it
// refers to and can be handed to another thread. Events are reused: clear()
// keeps capacity, so the steady state allocates nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/time.h"

namespace millrace {

struct FieldValue {
  enum class Kind : uint8_t { Null, Int, Double, String, Bool };
  Kind kind = Kind::Null;
  union {
    int64_t i;
    double d;
    bool b;
    struct {
      uint32_t off, len;
    } s;
  };
  FieldValue() : i(0) {}

  bool is_null() const { return kind == Kind::Null; }
  // Numeric value (int, double or bool); NaN for null or strings.
  double as_double() const {
    switch (kind) {
      case Kind::Int:
        return static_cast<double>(i);
      case Kind::Double:
        return d;
      case Kind::Bool:
        return b ? 1.0 : 0.0;
      default:
        return __builtin_nan("");
    }
  }
};

struct Event {
  TimeMs time = 0;
  std::vector<FieldValue> values;  // by schema field index
  std::string arena;               // bytes of string values

  void reset(size_t fields) {
    values.assign(fields, FieldValue());
    arena.clear();
  }
  std::string_view str(const FieldValue& v) const {
    return std::string_view(arena.data() + v.s.off, v.s.len);
  }
  std::string_view str(int field) const { return str(values[field]); }
  void set_string(int field, std::string_view s) {
    FieldValue& v = values[field];
    v.kind = FieldValue::Kind::String;
    v.s.off = static_cast<uint32_t>(arena.size());
    v.s.len = static_cast<uint32_t>(s.size());
    arena.append(s);
  }
};

}  // namespace millrace
