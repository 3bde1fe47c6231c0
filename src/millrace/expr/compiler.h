// Type-checks an expression's syntax tree against what its names may refer to
// and compiles it to a Program. Everything that can be wrong with an
// expression is found here, once, when a spec is loaded; the message starts
// with "at column N: " and names what was expected.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "millrace/core/schema.h"
#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/expr/program.h"

namespace millrace::expr {

// prev(field[, lookback]) or is_new(field, window): a per-key helper the
// caller computes with the key's state and hands over as a feature slot.
struct KeyedHelper {
  enum class Kind { Prev, IsNew };
  Kind kind = Kind::Prev;
  int field = -1;  // schema index
  TimeMs window = 0;
};

// What the names of an expression can refer to.
struct Environment {
  struct Named {
    std::string name;
    Type type = Type::Null;
    int slot = -1;  // feature slot
  };
  struct Source {
    std::string name;
    std::vector<std::pair<std::string, Type>> columns;
  };
  const Schema* schema = nullptr;  // event fields
  std::vector<Named> features;     // features defined before the one compiled
  std::vector<std::string> later;  // features defined after it (named in the error)
  std::vector<Source> batches;     // batch.NAME.COLUMN
  std::vector<Source> tables;      // lookup(NAME, key).COLUMN
  // Returns the feature slot of a helper, or an error (e.g. no key to keep it
  // by). Without it, prev and is_new are errors.
  std::function<Result<int>(const KeyedHelper&)> helper;
};

// The static type of a schema field's values.
Type type_of_field(FieldType t);

Result<Program> compile(std::string_view text, const Environment& env);

}  // namespace millrace::expr
