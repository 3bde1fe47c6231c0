// The value of one feature for one event, as written to the output record.
#pragma once

#include <cstdint>
#include <string>

#include "millrace/core/json_writer.h"

namespace millrace {

struct FeatureValue {
  enum class Kind : uint8_t { Null, Int, Double, Bool, String };
  Kind kind = Kind::Null;
  int64_t i = 0;
  double d = 0;
  std::string s;

  void set_null() { kind = Kind::Null; }
  void set_int(int64_t v) {
    kind = Kind::Int;
    i = v;
  }
  void set_double(double v) {
    kind = Kind::Double;
    d = v;
  }
  void set_bool(bool v) {
    kind = Kind::Bool;
    i = v;
  }
  void set_string(std::string_view v) {
    kind = Kind::String;
    s.assign(v.data(), v.size());
  }
  bool is_null() const { return kind == Kind::Null; }
  // Numeric view (NaN for null and strings), for models and expressions.
  double as_double() const {
    switch (kind) {
      case Kind::Int:
      case Kind::Bool:
        return static_cast<double>(i);
      case Kind::Double:
        return d;
      default:
        return __builtin_nan("");
    }
  }

  void append_json(std::string& out) const {
    switch (kind) {
      case Kind::Null:
        out += "null";
        break;
      case Kind::Int:
        append_json_int(out, i);
        break;
      case Kind::Double:
        append_json_double(out, d);
        break;
      case Kind::Bool:
        out += i ? "true" : "false";
        break;
      case Kind::String:
        append_json_string(out, s);
        break;
    }
  }
};

}  // namespace millrace
