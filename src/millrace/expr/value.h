// Values and static types of the expression language (docs/features.md,
// "Derived features"). A Value is a plain, trivially copyable slot: strings
// are views into the event, a feature value, a lookup's scratch buffer or the
// program's constants, all of which outlive one evaluation.
#pragma once

#include <cstdint>
#include <string_view>

namespace millrace::expr {

// Static type of an expression, fixed when it is compiled. `Null` is the type
// of the literal null only; `Row` is a table lookup before its `.column`.
enum class Type : uint8_t { Null, Bool, Int, Double, String, Row };

const char* type_name(Type t);

inline bool is_numeric(Type t) {
  return t == Type::Int || t == Type::Double;
}

// 16 bytes: the kind, a string's length, and one 8-byte payload (the
// interpreter copies values on every instruction).
struct Value {
  enum class Kind : uint8_t { Null, Bool, Int, Double, String };
  Kind kind = Kind::Null;
  uint32_t len = 0;  // String: its length
  union {
    int64_t i = 0;  // Int
    bool b;         // Bool
    double d;       // Double
    const char* p;  // String: its bytes
  };

  static Value null() { return Value(); }
  static Value boolean(bool v) {
    Value x;
    x.kind = Kind::Bool;
    x.b = v;
    return x;
  }
  static Value integer(int64_t v) {
    Value x;
    x.kind = Kind::Int;
    x.i = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.kind = Kind::Double;
    x.d = v;
    return x;
  }
  // Strings longer than 4 GiB are cut to their first 4 GiB.
  static Value string(std::string_view v) {
    Value x;
    x.kind = Kind::String;
    x.p = v.data();
    x.len = static_cast<uint32_t>(v.size());
    return x;
  }
  std::string_view s() const { return std::string_view(p, len); }
  bool is_null() const { return kind == Kind::Null; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Double; }
  double as_double() const { return kind == Kind::Int ? static_cast<double>(i) : d; }
  // True only for the boolean true (null and false are not true).
  bool is_true() const { return kind == Kind::Bool && b; }
};
static_assert(sizeof(Value) == 16);

}  // namespace millrace::expr
