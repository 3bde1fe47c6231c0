#include "millrace/expr/compiler.h"

#include <algorithm>

#include <fmt/format.h>

#include "millrace/expr/ast.h"

namespace millrace::expr {
namespace {

constexpr const char* kFunctions[] = {
    "if",   "coalesce", "abs",    "log1p",       "min",         "max",        "is_null",
    "prev", "is_new",   "lookup", "hour_of_day", "day_of_week", "is_weekend", "haversine_km",
};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

// " (did you mean X?)" for the closest candidate within two edits, or "".
std::string suggest(std::string_view name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const auto& c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best.empty() ? "" : fmt::format(" (did you mean {}?)", best);
}

class Compiler {
 public:
  explicit Compiler(const Environment& env) : env_(env) {}

  Result<Program> run(const Node& root) {
    auto t = emit(root);
    if (!t.ok()) return t.status();
    if (t.value() == Type::Row) return row_error(root);
    if (t.value() == Type::Null) return fail(root, "the expression is always null");
    prog_.type = t.value();
    prog_.max_stack = max_depth_;
    return std::move(prog_);
  }

 private:
  Status fail(const Node& n, const std::string& msg) const {
    return Status::Error(fmt::format("at column {}: {}", n.column, msg));
  }
  Status row_error(const Node& n) const {
    return fail(n,
                "lookup() returns a row: pick a column, as in lookup(table, key).column or "
                "lookup(table, key, 'column')");
  }

  void push_depth(int delta) {
    depth_ += delta;
    max_depth_ = std::max<uint32_t>(max_depth_, static_cast<uint32_t>(depth_));
  }
  size_t op(Op o, uint32_t a = 0, uint32_t b = 0, uint32_t c = 0) {
    prog_.code.push_back(Instr{o, a, b, c});
    return prog_.code.size() - 1;
  }
  void patch(size_t at) { prog_.code[at].a = static_cast<uint32_t>(prog_.code.size()); }
  void constant(const Value& v) {
    prog_.constants.push_back(v);
    op(Op::Const, static_cast<uint32_t>(prog_.constants.size() - 1));
    push_depth(1);
  }

  // The common type of two branches (if, coalesce, min, max), or nullopt.
  static std::optional<Type> unify(Type a, Type b) {
    if (a == Type::Null) return b;
    if (b == Type::Null) return a;
    if (a == b) return a;
    if (is_numeric(a) && is_numeric(b)) return Type::Double;
    return std::nullopt;
  }

  Result<Type> emit_value(const Node& n) {
    auto t = emit(n);
    if (t.ok() && t.value() == Type::Row) return row_error(n);
    return t;
  }

  Status expect(const Node& n, Type got, bool ok, const char* what) const {
    if (ok || got == Type::Null) return Status::Ok();
    return fail(n, fmt::format("expected {}, got {}", what, type_name(got)));
  }

  Result<Type> emit(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Literal: {
        Value v = n.literal;
        if (v.kind == Value::Kind::String) {
          prog_.constant_strings.push_back(std::make_unique<std::string>(n.string_value));
          v = Value::string(*prog_.constant_strings.back());
        }
        constant(v);
        switch (v.kind) {
          case Value::Kind::Null:
            return Type::Null;
          case Value::Kind::Bool:
            return Type::Bool;
          case Value::Kind::Int:
            return Type::Int;
          case Value::Kind::Double:
            return Type::Double;
          case Value::Kind::String:
            return Type::String;
        }
        return Type::Null;
      }
      case Node::Kind::Name:
        return emit_name(n);
      case Node::Kind::Member:
        return emit_member(n);
      case Node::Kind::Call:
        return emit_call(n);
      case Node::Kind::Unary: {
        MR_TRY_ASSIGN(t, emit_value(*n.args[0]));
        if (n.text == "not") {
          if (auto s = expect(*n.args[0], t, t == Type::Bool, "a bool after 'not'"); !s.ok())
            return s;
          op(Op::Not);
          return Type::Bool;
        }
        if (auto s = expect(*n.args[0], t, is_numeric(t), "a number after '-'"); !s.ok()) return s;
        op(Op::Neg);
        return t == Type::Null ? Type::Null : t;
      }
      case Node::Kind::Binary:
        return emit_binary(n);
    }
    return fail(n, "unknown expression");
  }

  Result<Type> emit_name(const Node& n) {
    const std::string& name = n.text;
    if (env_.schema) {
      int idx = env_.schema->index_of(name);
      if (idx >= 0) {
        op(Op::Field, static_cast<uint32_t>(idx));
        push_depth(1);
        return type_of_field((*env_.schema)[idx].type);
      }
    }
    for (const auto& f : env_.features) {
      if (f.name == name) {
        op(Op::Feature, static_cast<uint32_t>(f.slot));
        push_depth(1);
        return f.type;
      }
    }
    if (std::find(env_.later.begin(), env_.later.end(), name) != env_.later.end())
      return fail(n, fmt::format("feature '{}' is defined after this one; a derived feature reads "
                                 "only fields and the features listed before it",
                                 name));
    if (name == "batch") return fail(n, "batch values are read as batch.SOURCE.COLUMN");
    for (const auto& t : env_.tables)
      if (t.name == name)
        return fail(n, fmt::format("table '{}' is read with lookup({}, key).column", name, name));
    if (std::find(std::begin(kFunctions), std::end(kFunctions), name) != std::end(kFunctions))
      return fail(n, fmt::format("{} is a function: write {}(...)", name, name));
    std::vector<std::string> names;
    if (env_.schema)
      for (const auto& f : env_.schema->fields()) names.push_back(f.name);
    for (const auto& f : env_.features) names.push_back(f.name);
    return fail(n, fmt::format("unknown name '{}': not a field of the source schema or an earlier "
                               "feature{}",
                               name, suggest(name, names)));
  }

  static const Environment::Source* find_source(const std::vector<Environment::Source>& list,
                                                const std::string& name) {
    for (const auto& s : list)
      if (s.name == name) return &s;
    return nullptr;
  }

  Result<int> column_of(const Node& n, const Environment::Source& src, const char* kind,
                        const std::string& column) const {
    std::vector<std::string> names;
    for (size_t i = 0; i < src.columns.size(); ++i) {
      if (src.columns[i].first == column) return static_cast<int>(i);
      names.push_back(src.columns[i].first);
    }
    return fail(n, fmt::format("{} '{}' has no column '{}'{}", kind, src.name, column,
                               suggest(column, names)));
  }

  Result<Type> emit_member(const Node& n) {
    const Node& obj = *n.args[0];
    // batch.SOURCE.COLUMN
    if (obj.kind == Node::Kind::Member && obj.args[0]->kind == Node::Kind::Name &&
        obj.args[0]->text == "batch") {
      std::vector<std::string> names;
      for (const auto& b : env_.batches) names.push_back(b.name);
      const Environment::Source* src = find_source(env_.batches, obj.text);
      if (!src)
        return fail(obj, fmt::format("no batch source '{}' in the spec's batch: section{}",
                                     obj.text, suggest(obj.text, names)));
      MR_TRY_ASSIGN(col, column_of(n, *src, "batch source", n.text));
      op(Op::Batch, static_cast<uint32_t>(src - env_.batches.data()), static_cast<uint32_t>(col),
         prog_.scratch_strings++);
      push_depth(1);
      return src->columns[col].second;
    }
    if (obj.kind == Node::Kind::Name && obj.text == "batch")
      return fail(n, fmt::format("batch values are read as batch.{}.COLUMN", n.text));
    if (obj.kind == Node::Kind::Call && obj.text == "lookup" && obj.args.size() == 2) {
      MR_TRY_ASSIGN(table, emit_lookup_key(obj));
      MR_TRY_ASSIGN(col, column_of(n, env_.tables[table], "table", n.text));
      op(Op::Lookup, static_cast<uint32_t>(table), static_cast<uint32_t>(col),
         prog_.scratch_strings++);
      return env_.tables[table].columns[col].second;
    }
    return fail(
        n, fmt::format("'.{}' reads a column of batch.SOURCE or of lookup(table, key)", n.text));
  }

  // Emits lookup's key and returns the table's index.
  Result<int> emit_lookup_key(const Node& call) {
    const Node& tn = *call.args[0];
    std::vector<std::string> names;
    for (const auto& t : env_.tables) names.push_back(t.name);
    const Environment::Source* src =
        tn.kind == Node::Kind::Name ? find_source(env_.tables, tn.text) : nullptr;
    if (!src)
      return fail(tn, fmt::format("lookup: the first argument must name a table of the spec's "
                                  "tables: section{}",
                                  tn.kind == Node::Kind::Name ? suggest(tn.text, names) : ""));
    MR_TRY_ASSIGN(kt, emit_value(*call.args[1]));
    if (auto s = expect(*call.args[1], kt, kt == Type::String || kt == Type::Int,
                        "a string or int key for lookup");
        !s.ok())
      return s;
    return static_cast<int>(src - env_.tables.data());
  }

  Status arity(const Node& n, size_t lo, size_t hi, const char* usage) const {
    if (n.args.size() >= lo && n.args.size() <= hi) return Status::Ok();
    return fail(n, fmt::format("{}() takes {}: {}", n.text,
                               lo == hi ? fmt::format("{} argument{}", lo, lo == 1 ? "" : "s")
                               : hi == SIZE_MAX ? fmt::format("at least {} arguments", lo)
                                                : fmt::format("{} to {} arguments", lo, hi),
                               usage));
  }

  // A duration literal argument (30d) or an integer of milliseconds.
  Result<TimeMs> duration_arg(const Node& n) const {
    if (n.kind == Node::Kind::Literal && n.literal.kind == Value::Kind::Int && n.literal.i > 0)
      return n.literal.i;
    return fail(n, "expected a positive duration such as 30d or 1h");
  }

  Result<Type> emit_call(const Node& n) {
    const std::string& f = n.text;
    auto num_arg = [&](size_t i, const char* what) -> Result<Type> {
      MR_TRY_ASSIGN(t, emit_value(*n.args[i]));
      if (auto s = expect(*n.args[i], t, is_numeric(t), what); !s.ok()) return s;
      return t;
    };
    if (f == "if") {
      if (auto s = arity(n, 3, 3, "if(condition, then, else)"); !s.ok()) return s;
      MR_TRY_ASSIGN(c, emit_value(*n.args[0]));
      if (auto s = expect(*n.args[0], c, c == Type::Bool, "a bool condition"); !s.ok()) return s;
      if (n.args[1]->kind == Node::Kind::Literal && n.args[2]->kind == Node::Kind::Literal) {
        // Two constants: one Select instead of a jump, a constant, a jump and a constant.
        MR_TRY_ASSIGN(a, emit_value(*n.args[1]));
        MR_TRY_ASSIGN(b, emit_value(*n.args[2]));
        auto t = unify(a, b);
        if (!t)
          return fail(n, fmt::format("if(): the branches are {} and {}; they must have one type",
                                     type_name(a), type_name(b)));
        const uint32_t kb = prog_.code.back().a;
        prog_.code.pop_back();
        const uint32_t ka = prog_.code.back().a;
        prog_.code.pop_back();
        op(Op::Select, ka, kb);
        push_depth(-2);
        if (*t == Type::Double) op(Op::ToDouble);
        return *t;
      }
      size_t jelse = op(Op::JumpIfNotTrue);
      push_depth(-1);
      MR_TRY_ASSIGN(a, emit_value(*n.args[1]));
      size_t jend = op(Op::Jump);
      patch(jelse);
      push_depth(-1);
      MR_TRY_ASSIGN(b, emit_value(*n.args[2]));
      auto t = unify(a, b);
      if (!t)
        return fail(n, fmt::format("if(): the branches are {} and {}; they must have one type",
                                   type_name(a), type_name(b)));
      patch(jend);
      if (*t == Type::Double) op(Op::ToDouble);  // after the join: either branch
      return *t;
    }
    if (f == "coalesce") {
      if (auto s = arity(n, 1, SIZE_MAX, "coalesce(a, b, ...)"); !s.ok()) return s;
      std::vector<size_t> jumps;
      std::vector<std::pair<size_t, Type>> ends;  // end of each argument's code, its type
      Type t = Type::Null;
      // A constant last of two: one CoalesceConst instead of a jump, a pop and a constant.
      const bool constant_default = n.args.size() == 2 && n.args[1]->kind == Node::Kind::Literal;
      for (size_t i = 0; i < n.args.size(); ++i) {
        if (i > 0 && !constant_default) {
          op(Op::Pop);
          push_depth(-1);
        }
        MR_TRY_ASSIGN(ai, emit_value(*n.args[i]));
        auto u = unify(t, ai);
        if (!u)
          return fail(*n.args[i], fmt::format("coalesce(): argument {} is {}, the ones before are "
                                              "{}",
                                              i + 1, type_name(ai), type_name(t)));
        t = *u;
        if (constant_default && i == 1) {
          const uint32_t k = prog_.code.back().a;
          prog_.code.back() = Instr{Op::CoalesceConst, k, 0, 0};
          push_depth(-1);
        } else if (i + 1 < n.args.size() && !constant_default) {
          jumps.push_back(op(Op::JumpIfNotNullKeep));
        }
      }
      for (size_t j : jumps) patch(j);
      if (t == Type::Double) op(Op::ToDouble);
      return t;
    }
    if (f == "abs") {
      if (auto s = arity(n, 1, 1, "abs(x)"); !s.ok()) return s;
      MR_TRY_ASSIGN(t, num_arg(0, "a number"));
      op(Op::Abs);
      return t == Type::Null ? Type::Double : t;
    }
    if (f == "log1p") {
      if (auto s = arity(n, 1, 1, "log1p(x)"); !s.ok()) return s;
      MR_TRY_ASSIGN(t, num_arg(0, "a number"));
      (void)t;
      op(Op::Log1p);
      return Type::Double;
    }
    if (f == "min" || f == "max") {
      if (auto s = arity(n, 2, SIZE_MAX, "min(a, b, ...)"); !s.ok()) return s;
      Type t = Type::Null;
      for (size_t i = 0; i < n.args.size(); ++i) {
        MR_TRY_ASSIGN(ai, num_arg(i, "a number"));
        t = *unify(t, ai);
      }
      op(f == "min" ? Op::Min : Op::Max, static_cast<uint32_t>(n.args.size()));
      push_depth(1 - static_cast<int>(n.args.size()));
      if (t == Type::Double) op(Op::ToDouble);
      return t == Type::Null ? Type::Double : t;
    }
    if (f == "haversine_km") {
      if (auto s = arity(n, 4, 4, "haversine_km(lat1, lon1, lat2, lon2)"); !s.ok()) return s;
      for (size_t i = 0; i < 4; ++i) {
        MR_TRY_ASSIGN(t, num_arg(i, "a number of degrees"));
        (void)t;
      }
      op(Op::Haversine);
      push_depth(-3);
      return Type::Double;
    }
    if (f == "hour_of_day" || f == "day_of_week" || f == "is_weekend") {
      if (auto s = arity(n, 1, 1, "hour_of_day(ts)"); !s.ok()) return s;
      MR_TRY_ASSIGN(t, emit_value(*n.args[0]));
      if (auto s = expect(*n.args[0], t, t == Type::Int || t == Type::String,
                          "a time: epoch ms (int or timestamp field) or an RFC 3339 string");
          !s.ok())
        return s;
      op(f == "hour_of_day" ? Op::HourOfDay : f == "day_of_week" ? Op::DayOfWeek : Op::IsWeekend);
      return f == "is_weekend" ? Type::Bool : Type::Int;
    }
    if (f == "is_null") {
      if (auto s = arity(n, 1, 1, "is_null(x)"); !s.ok()) return s;
      MR_TRY_ASSIGN(t, emit_value(*n.args[0]));
      (void)t;
      op(Op::IsNull);
      return Type::Bool;
    }
    if (f == "prev" || f == "is_new") {
      const bool prev = f == "prev";
      if (auto s = prev ? arity(n, 1, 2, "prev(field) or prev(field, lookback)")
                        : arity(n, 2, 2, "is_new(field, window)");
          !s.ok())
        return s;
      const Node& fn = *n.args[0];
      int field = fn.kind == Node::Kind::Name && env_.schema ? env_.schema->index_of(fn.text) : -1;
      if (field < 0)
        return fail(fn, fmt::format("{}(): the first argument must be a field of the source "
                                    "schema",
                                    f));
      KeyedHelper h;
      h.kind = prev ? KeyedHelper::Kind::Prev : KeyedHelper::Kind::IsNew;
      h.field = field;
      h.window = 86'400'000;  // prev looks back one day by default, like agg: prev
      if (n.args.size() == 2) {
        MR_TRY_ASSIGN(w, duration_arg(*n.args[1]));
        h.window = w;
      }
      if (!env_.helper) return fail(n, fmt::format("{}() is not available here", f));
      auto slot = env_.helper(h);
      if (!slot.ok()) return fail(n, slot.status().message());
      op(Op::Feature, static_cast<uint32_t>(slot.value()));
      push_depth(1);
      return prev ? type_of_field((*env_.schema)[field].type) : Type::Bool;
    }
    if (f == "lookup") {
      if (auto s = arity(n, 2, 3, "lookup(table, key).column or lookup(table, key, 'column')");
          !s.ok())
        return s;
      if (n.args.size() == 2) {
        MR_TRY_ASSIGN(table, emit_lookup_key(n));
        (void)table;
        return Type::Row;
      }
      const Node& cn = *n.args[2];
      if (cn.kind != Node::Kind::Literal || cn.literal.kind != Value::Kind::String)
        return fail(cn, "lookup(): the column must be a string literal such as 'risk_score'");
      MR_TRY_ASSIGN(table, emit_lookup_key(n));
      MR_TRY_ASSIGN(col, column_of(cn, env_.tables[table], "table", cn.string_value));
      op(Op::Lookup, static_cast<uint32_t>(table), static_cast<uint32_t>(col),
         prog_.scratch_strings++);
      return env_.tables[table].columns[col].second;
    }
    std::vector<std::string> names(std::begin(kFunctions), std::end(kFunctions));
    return fail(n, fmt::format("unknown function '{}'{}", f, suggest(f, names)));
  }

  Result<Type> emit_binary(const Node& n) {
    const std::string& o = n.text;
    if (o == "and" || o == "or") {
      MR_TRY_ASSIGN(a, emit_value(*n.args[0]));
      if (auto s =
              expect(*n.args[0], a, a == Type::Bool, fmt::format("a bool before '{}'", o).c_str());
          !s.ok())
        return s;
      size_t j = op(o == "and" ? Op::JumpIfFalseKeep : Op::JumpIfTrueKeep);
      MR_TRY_ASSIGN(b, emit_value(*n.args[1]));
      if (auto s =
              expect(*n.args[1], b, b == Type::Bool, fmt::format("a bool after '{}'", o).c_str());
          !s.ok())
        return s;
      op(o == "and" ? Op::And : Op::Or);
      push_depth(-1);
      patch(j);
      return Type::Bool;
    }
    MR_TRY_ASSIGN(a, emit_value(*n.args[0]));
    MR_TRY_ASSIGN(b, emit_value(*n.args[1]));
    push_depth(-1);
    const bool cmp = o == "==" || o == "!=" || o == "<" || o == "<=" || o == ">" || o == ">=";
    if (cmp) {
      if (a == Type::Null || b == Type::Null)
        return fail(n, fmt::format("'{}' with null is always null; test with is_null(x)", o));
      bool ok = (is_numeric(a) && is_numeric(b)) || (a == b && a == Type::String) ||
                (a == b && a == Type::Bool && (o == "==" || o == "!="));
      if (!ok)
        return fail(
            n, fmt::format("cannot compare {} with {} using '{}'", type_name(a), type_name(b), o));
      static const std::pair<const char*, Op> kCmp[] = {{"==", Op::Eq}, {"!=", Op::Ne},
                                                        {"<", Op::Lt},  {"<=", Op::Le},
                                                        {">", Op::Gt},  {">=", Op::Ge}};
      for (const auto& [name, code] : kCmp)
        if (o == name) op(code);
      return Type::Bool;
    }
    if (auto s =
            expect(*n.args[0], a, is_numeric(a), fmt::format("a number before '{}'", o).c_str());
        !s.ok())
      return s;
    if (auto s =
            expect(*n.args[1], b, is_numeric(b), fmt::format("a number after '{}'", o).c_str());
        !s.ok())
      return s;
    Op code = o == "+"   ? Op::Add
              : o == "-" ? Op::Sub
              : o == "*" ? Op::Mul
              : o == "/" ? Op::Div
                         : Op::Mod;
    op(code);
    if (code == Op::Div) return Type::Double;
    if (a == Type::Int && b == Type::Int) return Type::Int;
    if (a == Type::Null && b == Type::Null) return Type::Int;
    if ((a == Type::Null || a == Type::Int) && (b == Type::Null || b == Type::Int))
      return Type::Int;
    return Type::Double;
  }

  const Environment& env_;
  Program prog_;
  int depth_ = 0;
  uint32_t max_depth_ = 0;
};

}  // namespace

Type type_of_field(FieldType t) {
  switch (t) {
    case FieldType::String:
      return Type::String;
    case FieldType::Int64:
    case FieldType::Timestamp:
      return Type::Int;
    case FieldType::Double:
      return Type::Double;
    case FieldType::Bool:
      return Type::Bool;
  }
  return Type::Null;
}

Result<Program> compile(std::string_view text, const Environment& env) {
  MR_TRY_ASSIGN(tree, parse(text));
  Compiler c(env);
  return c.run(*tree);
}

}  // namespace millrace::expr
