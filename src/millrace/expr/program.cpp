#include "millrace/expr/program.h"

#include <cmath>
#include <iterator>

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
    auto t = parse_rfc3339_ms(v.s());
    if (!t) return false;
    *ms = *t;
    return true;
  }
  return false;
}

// -1, 0, 1 for a < b, a == b, a > b (both non-null, of comparable kinds).
inline int compare(const Value& a, const Value& b) {
  if (a.kind == Value::Kind::String) return a.s() < b.s() ? -1 : (a.s() == b.s() ? 0 : 1);
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
      out->set_string(v.s());
      return;
    default:
      out->set_null();
  }
}

// Threaded dispatch: every instruction ends with its own indirect jump to the
// next one's code (GCC/Clang labels as values), so each jump is predicted
// from the instruction before it rather than all from one switch.
Value Program::run(const Input& in, Scratch& scratch) const {
  // The code of each Op, in the enum's order.
  static constexpr const void* kLabels[] = {&&op_const,
                                            &&op_field,
                                            &&op_feature,
                                            &&op_batch,
                                            &&op_lookup,
                                            &&op_to_double,
                                            &&op_neg,
                                            &&op_not,
                                            &&op_arith,
                                            &&op_arith,
                                            &&op_arith,
                                            &&op_arith,
                                            &&op_arith,
                                            &&op_cmp,
                                            &&op_cmp,
                                            &&op_cmp,
                                            &&op_cmp,
                                            &&op_cmp,
                                            &&op_cmp,
                                            &&op_and,
                                            &&op_or,
                                            &&op_jump,
                                            &&op_jump_not_true,
                                            &&op_jump_false_keep,
                                            &&op_jump_true_keep,
                                            &&op_jump_not_null_keep,
                                            &&op_pop,
                                            &&op_abs,
                                            &&op_log1p,
                                            &&op_minmax,
                                            &&op_minmax,
                                            &&op_haversine,
                                            &&op_time,
                                            &&op_time,
                                            &&op_time,
                                            &&op_is_null,
                                            &&op_select,
                                            &&op_coalesce_const};
  static_assert(std::size(kLabels) == static_cast<size_t>(Op::CoalesceConst) + 1);
  Value* stack = scratch.stack_.data();
  Value* top = stack - 1;  // the top value; stack - 1 when empty
  const Instr* const begin = code.data();
  const Instr* const end = begin + code.size();
  const Instr* ip = begin;
#define MR_DISPATCH()                        \
  do {                                       \
    if (ip == end) goto done;                \
    goto* kLabels[static_cast<int>(ip->op)]; \
  } while (0)
#define MR_NEXT()  \
  do {             \
    ++ip;          \
    MR_DISPATCH(); \
  } while (0)
  MR_DISPATCH();

op_const:
  *++top = constants[ip->a];
  MR_NEXT();
op_field:
  *++top = load_field(*in.event, static_cast<int>(ip->a));
  MR_NEXT();
op_feature:
  *++top = load_feature(in.features[ip->a]);
  MR_NEXT();
op_batch:
  ++top;
  *top = in.lookups->batch(static_cast<int>(ip->a), static_cast<int>(ip->b), *in.event,
                           &scratch.strings_[ip->c]);
  MR_NEXT();
op_lookup:
  *top = top->is_null() ? Value::null()
                        : in.lookups->table(static_cast<int>(ip->a), static_cast<int>(ip->b), *top,
                                            in.event->time, &scratch.strings_[ip->c]);
  MR_NEXT();
op_to_double:
  if (top->kind == Value::Kind::Int) *top = Value::number(static_cast<double>(top->i));
  MR_NEXT();
op_neg:
  if (top->kind == Value::Kind::Int) {
    top->i = wrap_sub(0, top->i);
  } else if (top->kind == Value::Kind::Double) {
    top->d = -top->d;
  }
  MR_NEXT();
op_not:
  if (top->kind == Value::Kind::Bool) top->b = !top->b;
  MR_NEXT();
op_arith : {
  const Value b = *top--;
  Value& a = *top;
  if (a.is_null() || b.is_null()) {
    a = Value::null();
    MR_NEXT();
  }
  const bool ints = a.kind == Value::Kind::Int && b.kind == Value::Kind::Int;
  switch (ip->op) {
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
        a = b.as_double() == 0 ? Value::null() : finite(std::fmod(a.as_double(), b.as_double()));
      }
  }
  MR_NEXT();
}
op_cmp : {
  const Value b = *top--;
  Value& a = *top;
  if (a.is_null() || b.is_null()) {
    a = Value::null();
    MR_NEXT();
  }
  const int c = compare(a, b);
  bool r;
  switch (ip->op) {
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
  MR_NEXT();
}
op_and : {
  const Value b = *top--;
  Value& a = *top;
  if ((a.kind == Value::Kind::Bool && !a.b) || (b.kind == Value::Kind::Bool && !b.b)) {
    a = Value::boolean(false);
  } else if (a.is_null() || b.is_null()) {
    a = Value::null();
  } else {
    a = Value::boolean(true);
  }
  MR_NEXT();
}
op_or : {
  const Value b = *top--;
  Value& a = *top;
  if (a.is_true() || b.is_true()) {
    a = Value::boolean(true);
  } else if (a.is_null() || b.is_null()) {
    a = Value::null();
  } else {
    a = Value::boolean(false);
  }
  MR_NEXT();
}
op_jump:
  ip = begin + ip->a;
  MR_DISPATCH();
op_jump_not_true:
  if (!(top--)->is_true()) {
    ip = begin + ip->a;
    MR_DISPATCH();
  }
  MR_NEXT();
op_jump_false_keep:
  if (top->kind == Value::Kind::Bool && !top->b) {
    ip = begin + ip->a;
    MR_DISPATCH();
  }
  MR_NEXT();
op_jump_true_keep:
  if (top->is_true()) {
    ip = begin + ip->a;
    MR_DISPATCH();
  }
  MR_NEXT();
op_jump_not_null_keep:
  if (!top->is_null()) {
    ip = begin + ip->a;
    MR_DISPATCH();
  }
  MR_NEXT();
op_pop:
  --top;
  MR_NEXT();
op_abs:
  if (top->kind == Value::Kind::Int) {
    if (top->i < 0) top->i = wrap_sub(0, top->i);
  } else if (top->kind == Value::Kind::Double) {
    top->d = std::fabs(top->d);
  }
  MR_NEXT();
op_log1p:
  if (!top->is_null()) *top = finite(std::log1p(top->as_double()));
  MR_NEXT();
op_minmax : {
  Value* first = top - (ip->a - 1);
  Value best = *first;
  for (Value* v = first; v <= top; ++v) {
    if (v->is_null()) {
      best = Value::null();
      break;
    }
    const int c = compare(*v, best);
    if (ip->op == Op::Min ? c < 0 : c > 0) best = *v;
  }
  top = first;
  *top = best;
  MR_NEXT();
}
op_haversine : {
  top -= 3;
  bool any_null = false;
  for (int i = 0; i < 4; ++i) any_null |= top[i].is_null();
  *top = any_null ? Value::null()
                  : finite(haversine_km(top[0].as_double(), top[1].as_double(), top[2].as_double(),
                                        top[3].as_double()));
  MR_NEXT();
}
op_time : {
  int64_t ms;
  if (!time_arg(*top, &ms)) {
    *top = Value::null();
    MR_NEXT();
  }
  const int64_t day = floor_div(ms, kDayMs);
  if (ip->op == Op::HourOfDay) {
    *top = Value::integer((ms - day * kDayMs) / 3'600'000);
  } else {
    const int64_t dow = ((day + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday; 0 = Monday
    *top = ip->op == Op::DayOfWeek ? Value::integer(dow) : Value::boolean(dow >= 5);
  }
  MR_NEXT();
}
op_is_null:
  *top = Value::boolean(top->is_null());
  MR_NEXT();
op_select:
  *top = constants[top->is_true() ? ip->a : ip->b];
  MR_NEXT();
op_coalesce_const:
  if (top->is_null()) *top = constants[ip->a];
  MR_NEXT();

done:
#undef MR_NEXT
#undef MR_DISPATCH
  return top >= stack ? *top : Value::null();
}

}  // namespace millrace::expr
