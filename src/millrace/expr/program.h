// A compiled expression: a flat postfix program over a value stack, with
// jumps for the operators that skip work (and, or, if, coalesce). Names were
// resolved to indexes when it was compiled, so running it does no string
// lookups and allocates nothing once its Scratch has grown (strings a lookup
// returns are copied into per-instruction buffers that keep their capacity).
//
// A Program is immutable and may be run from any number of threads at once,
// each with its own Scratch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/event.h"
#include "millrace/expr/value.h"
#include "millrace/features/feature_value.h"

namespace millrace::expr {

// Where batch values and table rows come from at run time.
class Lookups {
 public:
  virtual ~Lookups() = default;
  // Column `column` of batch source `source` for the event's key, as of the
  // event's time (null when there is none). Strings go into *scratch.
  virtual Value batch(int source, int column, const Event& event, std::string* scratch) = 0;
  // Column `column` of the row of `table` keyed by `key` as of time t (null
  // when the row is missing or deleted). Strings go into *scratch.
  virtual Value table(int table, int column, const Value& key, TimeMs t, std::string* scratch) = 0;
};

enum class Op : uint8_t {
  Const,    // push constants[a]
  Field,    // push the event's field a
  Feature,  // push features[a]
  Batch,    // push batch source a, column b (scratch c)
  Lookup,   // pop key; push table a, column b as of the event time (scratch c)
  ToDouble,
  Neg,
  Not,
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  Eq,
  Ne,
  Lt,
  Le,
  Gt,
  Ge,
  And,                // pop b, a: three-valued a and b
  Or,                 // pop b, a: three-valued a or b
  Jump,               // to a
  JumpIfNotTrue,      // pop; to a unless it was true
  JumpIfFalseKeep,    // to a if the top is false (left in place)
  JumpIfTrueKeep,     // to a if the top is true (left in place)
  JumpIfNotNullKeep,  // to a if the top is not null (left in place)
  Pop,
  Abs,
  Log1p,
  Min,  // of the top a values
  Max,
  Haversine,
  HourOfDay,
  DayOfWeek,
  IsWeekend,
  IsNull,
  Select,         // pop the condition; push constants[a] if it was true, else constants[b]
  CoalesceConst,  // replace a null top by constants[a]
};

struct Instr {
  Op op;
  uint32_t a = 0, b = 0, c = 0;
};

struct Program;

// Per-thread working memory for running programs.
class Scratch {
 public:
  // Makes room for `p`; call once per program before running it.
  void fit(const Program& p);

 private:
  friend struct Program;
  std::vector<Value> stack_;
  std::vector<std::string> strings_;
};

struct Input {
  const Event* event = nullptr;
  const FeatureValue* features = nullptr;  // by feature slot
  Lookups* lookups = nullptr;
};

struct Program {
  std::vector<Instr> code;
  std::vector<Value> constants;
  std::vector<std::unique_ptr<std::string>> constant_strings;  // what string constants view
  Type type = Type::Null;                                      // of the result
  uint32_t max_stack = 0;
  uint32_t scratch_strings = 0;

  // Runs the program. The result's strings stay valid until `scratch` runs
  // another program or the inputs change.
  Value run(const Input& in, Scratch& scratch) const;
};

// Writes a result to a feature value as its static type (an int result of a
// double expression becomes a double).
void store(const Value& v, Type type, FeatureValue* out);

// The view of a feature value or an event field as an expression value.
Value load(const FeatureValue& v);
Value load(const Event& e, int field);

}  // namespace millrace::expr
