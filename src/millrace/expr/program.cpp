#include "millrace/expr/program.h"

#include <cmath>

#include "millrace/core/time.h"

namespace millrace::expr {
namespace {

constexpr int64_t kDayMs = 86'400'000;

inline Value finite(double d) {
  return std::isfinite(d) ? Value::number(d) : Value::null();
}

// Wrapping integer arithmetic (no undefined behaviour on overflow).
inline int64_t wrap_add(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
inline int64_t wrap_sub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t wrap_mul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// Epoch ms of a time argument: an integer, or an RFC 3339 string.
inline bool time_arg(const Value& v, int64_t* ms) {
  if (v.kind == Value::Kind::Int) {
    *ms = v.i;
    return true;
  }
  if (v.kind == Value::Kind::Double) {
    if (!std::isfinite(v.d)) return false;
    *ms = static_cast<int64_t>(std::floor(v.d));
    return true;
  }
  if (v.kind == Value::Kind::String) {
    auto t = parse_rfc3339_ms(v.s);
    if (!t) return false;
    *ms = *t;
    return true;
  }
  return false;
}

// -1, 0, 1 for a < b, a == b, a > b (both non-null, of comparable kinds).
inline int compare(const Value& a, const Value& b) {
  if (a.kind == Value::Kind::String) return a.s < b.s ? -1 : (a.s == b.s ? 0 : 1);
  if (a.kind == Value::Kind::Bool) return int(a.b) - int(b.b);
  if (a.kind == Value::Kind::Int && b.kind == Value::Kind::Int)
    return a.i < b.i ? -1 : (a.i == b.i ? 0 : 1);
  double x = a.as_double(), y = b.as_double();
  return x < y ? -1 : (x == y ? 0 : 1);
}

double haversine_km(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kRad = M_PI / 180.0;
  constexpr double kEarthKm = 6371.0088;  // mean Earth radius
  double dlat = (lat2 - lat1) * kRad, dlon = (lon2 - lon1) * kRad;
  double s = std::sin(dlat / 2), t = std::sin(dlon / 2);
  double h = s * s + std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * t * t;
  return 2 * kEarthKm * std::asin(std::sqrt(std::min(1.0, h)));
}

}  // namespace

void Scratch::fit(const Program& p) {
  if (stack_.size() < p.max_stack) stack_.resize(p.max_stack);
  if (strings_.size() < p.scratch_strings) strings_.resize(p.scratch_strings);
}

namespace {

// The loads run() does per instruction, inlined there: a Value returned from
// a call is written to memory by the callee in small stores and read back as
// one wide copy, which cannot be forwarded from those stores and stalls.
[[gnu::always_inline]] inline Value load_feature(const FeatureValue& v) {
  switch (v.kind) {
    case FeatureValue::Kind::Null:
      return Value::null();
    case FeatureValue::Kind::Int:
      return Value::integer(v.i);
    case FeatureValue::Kind::Double:
      return std::isfinite(v.d) ? Value::number(v.d) : Value::null();
    case FeatureValue::Kind::Bool:
      return Value::boolean(v.i != 0);
    case FeatureValue::Kind::String:
      return Value::string(v.s);
  }
  return Value::null();
}

[[gnu::always_inline]] inline Value load_field(const Event& e, int field) {
  const FieldValue& v = e.values[field];
  switch (v.kind) {
    case FieldValue::Kind::Null:
      return Value::null();
    case FieldValue::Kind::Int:
      return Value::integer(v.i);
    case FieldValue::Kind::Double:
      return std::isfinite(v.d) ? Value::number(v.d) : Value::null();
    case FieldValue::Kind::Bool:
      return Value::boolean(v.b);
    case FieldValue::Kind::String:
      return Value::string(e.str(v));
  }
  return Value::null();
}

}  // namespace

Value load(const FeatureValue& v) {
  return load_feature(v);
}

Value load(const Event& e, int field) {
  return load_field(e, field);
}

void store(const Value& v, Type type, FeatureValue* out) {
  if (v.is_null()) {
    out->set_null();
    return;
  }
  switch (type) {
    case Type::Int:
      out->set_int(v.kind == Value::Kind::Int ? v.i : static_cast<int64_t>(v.d));
      return;
    case Type::Double:
      out->set_double(v.as_double());
      return;
    case Type::Bool:
      out->set_bool(v.b);
      return;
    case Type::String:
      out->set_string(v.s);
      return;
    default:
      out->set_null();
  }
}

Value Program::run(const Input& in, Scratch& scratch) const {
  Value* stack = scratch.stack_.data();
  Value* top = stack - 1;  // the top value; stack - 1 when empty
  const Instr* code_begin = code.data();
  const size_t n = code.size();
  for (size_t pc = 0; pc < n; ++pc) {
    const Instr& ins = code_begin[pc];
    switch (ins.op) {
      case Op::Const:
        *++top = constants[ins.a];
        break;
      case Op::Field:
        *++top = load_field(*in.event, static_cast<int>(ins.a));
        break;
      case Op::Feature:
        *++top = load_feature(in.features[ins.a]);
        break;
      case Op::Batch:
        *++top = in.lookups->batch(static_cast<int>(ins.a), static_cast<int>(ins.b), *in.event,
                                   &scratch.strings_[ins.c]);
        break;
      case Op::Lookup:
        *top = top->is_null() ? Value::null()
                              : in.lookups->table(static_cast<int>(ins.a), static_cast<int>(ins.b),
                                                  *top, in.event->time, &scratch.strings_[ins.c]);
        break;
      case Op::ToDouble:
        if (top->kind == Value::Kind::Int) *top = Value::number(static_cast<double>(top->i));
        break;
      case Op::Neg:
        if (top->kind == Value::Kind::Int) {
          top->i = wrap_sub(0, top->i);
        } else if (top->kind == Value::Kind::Double) {
          top->d = -top->d;
        }
        break;
      case Op::Not:
        if (top->kind == Value::Kind::Bool) top->b = !top->b;
        break;
      case Op::Add:
      case Op::Sub:
      case Op::Mul:
      case Op::Div:
      case Op::Mod: {
        const Value b = *top--;
        Value& a = *top;
        if (a.is_null() || b.is_null()) {
          a = Value::null();
          break;
        }
        const bool ints = a.kind == Value::Kind::Int && b.kind == Value::Kind::Int;
        switch (ins.op) {
          case Op::Add:
            a = ints ? Value::integer(wrap_add(a.i, b.i)) : finite(a.as_double() + b.as_double());
            break;
          case Op::Sub:
            a = ints ? Value::integer(wrap_sub(a.i, b.i)) : finite(a.as_double() - b.as_double());
            break;
          case Op::Mul:
            a = ints ? Value::integer(wrap_mul(a.i, b.i)) : finite(a.as_double() * b.as_double());
            break;
          case Op::Div:
            a = b.as_double() == 0 ? Value::null() : finite(a.as_double() / b.as_double());
            break;
          default:  // Mod: the sign of the dividend, as in C and SQL
            if (ints) {
              a = b.i == 0 ? Value::null() : Value::integer(b.i == -1 ? 0 : a.i % b.i);
            } else {
              a = b.as_double() == 0 ? Value::null()
                                     : finite(std::fmod(a.as_double(), b.as_double()));
            }
        }
        break;
      }
      case Op::Eq:
      case Op::Ne:
      case Op::Lt:
      case Op::Le:
      case Op::Gt:
      case Op::Ge: {
        const Value b = *top--;
        Value& a = *top;
        if (a.is_null() || b.is_null()) {
          a = Value::null();
          break;
        }
        int c = compare(a, b);
        bool r = false;
        switch (ins.op) {
          case Op::Eq:
            r = c == 0;
            break;
          case Op::Ne:
            r = c != 0;
            break;
          case Op::Lt:
            r = c < 0;
            break;
          case Op::Le:
            r = c <= 0;
            break;
          case Op::Gt:
            r = c > 0;
            break;
          default:
            r = c >= 0;
        }
        a = Value::boolean(r);
        break;
      }
      case Op::And: {
        const Value b = *top--;
        Value& a = *top;
        if ((a.kind == Value::Kind::Bool && !a.b) || (b.kind == Value::Kind::Bool && !b.b)) {
          a = Value::boolean(false);
        } else if (a.is_null() || b.is_null()) {
          a = Value::null();
        } else {
          a = Value::boolean(true);
        }
        break;
      }
      case Op::Or: {
        const Value b = *top--;
        Value& a = *top;
        if (a.is_true() || b.is_true()) {
          a = Value::boolean(true);
        } else if (a.is_null() || b.is_null()) {
          a = Value::null();
        } else {
          a = Value::boolean(false);
        }
        break;
      }
      case Op::Jump:
        pc = ins.a - 1;
        break;
      case Op::JumpIfNotTrue:
        if (!(top--)->is_true()) pc = ins.a - 1;
        break;
      case Op::JumpIfFalseKeep:
        if (top->kind == Value::Kind::Bool && !top->b) pc = ins.a - 1;
        break;
      case Op::JumpIfTrueKeep:
        if (top->is_true()) pc = ins.a - 1;
        break;
      case Op::JumpIfNotNullKeep:
        if (!top->is_null()) pc = ins.a - 1;
        break;
      case Op::Pop:
        --top;
        break;
      case Op::Abs:
        if (top->kind == Value::Kind::Int) {
          if (top->i < 0) top->i = wrap_sub(0, top->i);
        } else if (top->kind == Value::Kind::Double) {
          top->d = std::fabs(top->d);
        }
        break;
      case Op::Log1p:
        if (!top->is_null()) *top = finite(std::log1p(top->as_double()));
        break;
      case Op::Min:
      case Op::Max: {
        Value* first = top - (ins.a - 1);
        Value best = *first;
        for (Value* v = first; v <= top; ++v) {
          if (v->is_null()) {
            best = Value::null();
            break;
          }
          int c = compare(*v, best);
          if (ins.op == Op::Min ? c < 0 : c > 0) best = *v;
        }
        top = first;
        *top = best;
        break;
      }
      case Op::Haversine: {
        top -= 3;
        bool any_null = false;
        for (int i = 0; i < 4; ++i) any_null |= top[i].is_null();
        *top = any_null ? Value::null()
                        : finite(haversine_km(top[0].as_double(), top[1].as_double(),
                                              top[2].as_double(), top[3].as_double()));
        break;
      }
      case Op::HourOfDay:
      case Op::DayOfWeek:
      case Op::IsWeekend: {
        int64_t ms;
        if (!time_arg(*top, &ms)) {
          *top = Value::null();
          break;
        }
        int64_t day = floor_div(ms, kDayMs);
        if (ins.op == Op::HourOfDay) {
          *top = Value::integer((ms - day * kDayMs) / 3'600'000);
        } else {
          int64_t dow = ((day + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday; 0 = Monday
          *top = ins.op == Op::DayOfWeek ? Value::integer(dow) : Value::boolean(dow >= 5);
        }
        break;
      }
      case Op::IsNull:
        *top = Value::boolean(top->is_null());
        break;
    }
  }
  return top >= stack ? *top : Value::null();
}

}  // namespace millrace::expr
