// The expression language: every operator and function, null propagation,
// type errors and their column positions (docs/features.md).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include <fmt/format.h>

#include "millrace/expr/compiler.h"

namespace millrace::expr {
namespace {

Schema test_schema() {
  Schema s;
  s.add({"card", FieldType::String, false});
  s.add({"amount", FieldType::Double, true});
  s.add({"n", FieldType::Int64, true});
  s.add({"flag", FieldType::Bool, true});
  s.add({"ts", FieldType::Timestamp, false});
  s.add({"when", FieldType::String, true});
  s.add({"lat", FieldType::Double, true});
  s.add({"lon", FieldType::Double, true});
  return s;
}

// Batch source 0 "stats" (avg: double, tier: string) and table 0
// "merchants" (risk: double, country: string), answered from maps; records
// what was asked.
class FakeLookups : public Lookups {
 public:
  std::map<std::string, std::pair<double, std::string>> merchants;
  double batch_avg = 12.5;
  TimeMs last_lookup_time = 0;

  Value batch(int source, int column, const Event& e, std::string* scratch) override {
    EXPECT_EQ(source, 0);
    if (e.str(0) != "c1") return Value::null();
    if (column == 0) return Value::number(batch_avg);
    *scratch = "gold";
    return Value::string(*scratch);
  }
  Value table(int table, int column, const Value& key, TimeMs t, std::string* scratch) override {
    EXPECT_EQ(table, 0);
    last_lookup_time = t;
    std::string k = key.kind == Value::Kind::Int ? std::to_string(key.i) : std::string(key.s());
    auto it = merchants.find(k);
    if (it == merchants.end()) return Value::null();
    if (column == 0) return Value::number(it->second.first);
    *scratch = it->second.second;
    return Value::string(*scratch);
  }
};

class ExprTest : public ::testing::Test {
 protected:
  ExprTest() : schema_(test_schema()) {
    env_.schema = &schema_;
    env_.features = {{"count_5m", Type::Int, 0}, {"avg_5m", Type::Double, 1}};
    env_.later = {"later_feature"};
    env_.batches = {{"stats", {{"avg", Type::Double}, {"tier", Type::String}}}};
    env_.tables = {{"merchants", {{"risk", Type::Double}, {"country", Type::String}}}};
    env_.helper = [this](const KeyedHelper& h) -> Result<int> {
      helpers_.push_back(h);
      return 2 + static_cast<int>(helpers_.size()) - 1;
    };
    features_.resize(8);
    features_[0].set_int(3);
    features_[1].set_null();
    event_.reset(schema_.size());
    event_.set_string(0, "c1");
    set_double(1, 10.0);
    event_.values[2].kind = FieldValue::Kind::Int;
    event_.values[2].i = 7;
    event_.values[3].kind = FieldValue::Kind::Bool;
    event_.values[3].b = true;
    event_.values[4].kind = FieldValue::Kind::Int;
    event_.values[4].i = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, a Thursday
    event_.time = event_.values[4].i;
    lookups_.merchants["m1"] = {0.9, "FR"};
    lookups_.merchants["42"] = {0.1, "DE"};
  }

  void set_double(int field, double d) {
    event_.values[field].kind = FieldValue::Kind::Double;
    event_.values[field].d = d;
  }

  // Compiles and runs `text`; the result as text ("null", "true", "3", "2.5", "'s'").
  std::string eval(const std::string& text) {
    auto p = compile(text, env_);
    if (!p.ok()) return "error: " + p.status().message();
    Scratch scratch;
    scratch.fit(p.value());
    Input in{&event_, features_.data(), &lookups_};
    Value v = p->run(in, scratch);
    FeatureValue fv;
    store(v, p->type, &fv);
    switch (fv.kind) {
      case FeatureValue::Kind::Null:
        return "null";
      case FeatureValue::Kind::Bool:
        return fv.i ? "true" : "false";
      case FeatureValue::Kind::Int:
        return std::to_string(fv.i);
      case FeatureValue::Kind::Double:
        return fmt::format("{}d", fv.d);
      case FeatureValue::Kind::String:
        return "'" + fv.s + "'";
    }
    return "?";
  }
  Type type_of(const std::string& text) {
    auto p = compile(text, env_);
    EXPECT_TRUE(p.ok()) << text << ": " << p.status().message();
    return p.ok() ? p->type : Type::Null;
  }

  Schema schema_;
  Environment env_;
  std::vector<KeyedHelper> helpers_;
  std::vector<FeatureValue> features_;
  Event event_;
  FakeLookups lookups_;
};

TEST_F(ExprTest, Literals) {
  EXPECT_EQ(eval("42"), "42");
  EXPECT_EQ(eval("1.5"), "1.5d");
  EXPECT_EQ(eval("2e3"), "2000d");
  EXPECT_EQ(eval(".5"), "0.5d");
  EXPECT_EQ(eval("'it\\'s'"), "'it's'");
  EXPECT_EQ(eval("\"x\""), "'x'");
  EXPECT_EQ(eval("true"), "true");
  EXPECT_EQ(eval("false"), "false");
  EXPECT_EQ(eval("250ms"), "250");
  EXPECT_EQ(eval("5s"), "5000");
  EXPECT_EQ(eval("10m"), "600000");
  EXPECT_EQ(eval("2h"), "7200000");
  EXPECT_EQ(eval("30d"), "2592000000");
}

TEST_F(ExprTest, Arithmetic) {
  EXPECT_EQ(eval("1 + 2 * 3"), "7");
  EXPECT_EQ(eval("(1 + 2) * 3"), "9");
  EXPECT_EQ(eval("7 - 10"), "-3");
  EXPECT_EQ(eval("7 / 2"), "3.5d");  // division is always a double
  EXPECT_EQ(eval("7 % 3"), "1");
  EXPECT_EQ(eval("-7 % 3"), "-1");  // the sign of the dividend
  EXPECT_EQ(eval("7.5 % 2"), "1.5d");
  EXPECT_EQ(eval("-n"), "-7");
  EXPECT_EQ(eval("- -amount"), "10d");
  EXPECT_EQ(eval("amount * n"), "70d");
  EXPECT_EQ(eval("n + 1"), "8");
  EXPECT_EQ(type_of("n + 1"), Type::Int);
  EXPECT_EQ(type_of("n + 1.0"), Type::Double);
  EXPECT_EQ(type_of("n / 1"), Type::Double);
  EXPECT_EQ(eval("9223372036854775807 + 1"), "-9223372036854775808");  // wraps, no UB
  EXPECT_EQ(eval("-9223372036854775807 - 1"), "-9223372036854775808");
  EXPECT_EQ(eval("(-9223372036854775807 - 1) % -1"), "0");
}

TEST_F(ExprTest, DivisionByZeroIsNull) {
  EXPECT_EQ(eval("1 / 0"), "null");
  EXPECT_EQ(eval("1.0 / 0.0"), "null");
  EXPECT_EQ(eval("n % 0"), "null");
  EXPECT_EQ(eval("amount % 0.0"), "null");
  EXPECT_EQ(eval("coalesce(1 / 0, -1)"), "-1d");
}

TEST_F(ExprTest, NullPropagatesThroughArithmetic) {
  features_[1].set_null();
  EXPECT_EQ(eval("avg_5m + 1"), "null");
  EXPECT_EQ(eval("1 - avg_5m"), "null");
  EXPECT_EQ(eval("avg_5m * 0"), "null");
  EXPECT_EQ(eval("avg_5m / 2"), "null");
  EXPECT_EQ(eval("avg_5m % 2"), "null");
  EXPECT_EQ(eval("-avg_5m"), "null");
  EXPECT_EQ(eval("null + 1"), "null");
  event_.values[1].kind = FieldValue::Kind::Null;
  EXPECT_EQ(eval("amount * 2"), "null");
}

TEST_F(ExprTest, Comparisons) {
  EXPECT_EQ(eval("n == 7"), "true");
  EXPECT_EQ(eval("n != 7"), "false");
  EXPECT_EQ(eval("n < 7.5"), "true");
  EXPECT_EQ(eval("n <= 7"), "true");
  EXPECT_EQ(eval("n > 7"), "false");
  EXPECT_EQ(eval("n >= 8"), "false");
  EXPECT_EQ(eval("card == 'c1'"), "true");
  EXPECT_EQ(eval("card < 'c2'"), "true");
  EXPECT_EQ(eval("card > 'c2'"), "false");
  EXPECT_EQ(eval("flag == true"), "true");
  EXPECT_EQ(eval("flag != true"), "false");
  EXPECT_EQ(eval("9007199254740993 > 9007199254740992"), "true");  // ints compare exactly
  // With null: null (SQL), which if() treats as false.
  EXPECT_EQ(eval("avg_5m > 1"), "null");
  EXPECT_EQ(eval("avg_5m == avg_5m"), "null");
  EXPECT_EQ(eval("if(avg_5m > 1, 'yes', 'no')"), "'no'");
}

TEST_F(ExprTest, LogicIsThreeValued) {
  EXPECT_EQ(eval("true and true"), "true");
  EXPECT_EQ(eval("true and false"), "false");
  EXPECT_EQ(eval("false or true"), "true");
  EXPECT_EQ(eval("false or false"), "false");
  EXPECT_EQ(eval("not true"), "false");
  EXPECT_EQ(eval("not not true"), "true");
  EXPECT_EQ(eval("null and false"), "false");
  EXPECT_EQ(eval("false and null"), "false");
  EXPECT_EQ(eval("null and true"), "null");
  EXPECT_EQ(eval("true and null"), "null");
  EXPECT_EQ(eval("null or true"), "true");
  EXPECT_EQ(eval("true or null"), "true");
  EXPECT_EQ(eval("null or false"), "null");
  EXPECT_EQ(eval("not (avg_5m > 0)"), "null");
  EXPECT_EQ(eval("n > 1 and amount < 100 or false"), "true");
  EXPECT_EQ(eval("not n > 100"), "true");  // not binds looser than comparisons
  // Short circuit: the right side is not evaluated.
  lookups_.last_lookup_time = 0;
  EXPECT_EQ(eval("false and lookup(merchants, 'm1').risk > 0"), "false");
  EXPECT_EQ(lookups_.last_lookup_time, 0);
  EXPECT_EQ(eval("true or lookup(merchants, 'm1').risk > 0"), "true");
  EXPECT_EQ(lookups_.last_lookup_time, 0);
}

TEST_F(ExprTest, IfAndCoalesce) {
  EXPECT_EQ(eval("if(n > 5, 'big', 'small')"), "'big'");
  EXPECT_EQ(eval("if(n > 50, 'big', 'small')"), "'small'");
  EXPECT_EQ(eval("if(n > 5, 1, 2.5)"), "1d");  // int and double branches: a double
  EXPECT_EQ(type_of("if(n > 5, 1, 2.5)"), Type::Double);
  EXPECT_EQ(eval("if(n > 50, 1, 2.5)"), "2.5d");
  EXPECT_EQ(eval("if(n > 5, null, 3)"), "null");
  EXPECT_EQ(type_of("if(n > 5, null, 3)"), Type::Int);
  EXPECT_EQ(eval("if(if(flag, n > 1, false), 1, 2)"), "1");
  EXPECT_EQ(eval("coalesce(avg_5m, amount)"), "10d");
  EXPECT_EQ(eval("coalesce(avg_5m, null, 3)"), "3d");
  EXPECT_EQ(eval("coalesce(null, avg_5m)"), "null");
  EXPECT_EQ(eval("coalesce(n, 1)"), "7");
  EXPECT_EQ(eval("coalesce('a', card)"), "'a'");
  EXPECT_EQ(eval("amount / coalesce(avg_5m, amount)"), "1d");
}

TEST_F(ExprTest, NumericFunctions) {
  EXPECT_EQ(eval("abs(-3)"), "3");
  EXPECT_EQ(eval("abs(-2.5)"), "2.5d");
  EXPECT_EQ(eval("abs(avg_5m)"), "null");
  EXPECT_EQ(eval("log1p(0)"), "0d");
  EXPECT_EQ(eval(fmt::format("log1p({})", std::exp(2.0) - 1)),
            fmt::format("{}d", std::log1p(std::exp(2.0) - 1)));
  EXPECT_EQ(eval("log1p(-1)"), "null");  // -inf is not a number we write
  EXPECT_EQ(eval("log1p(-2)"), "null");
  EXPECT_EQ(eval("log1p(avg_5m)"), "null");
  EXPECT_EQ(eval("min(3, 1, 2)"), "1");
  EXPECT_EQ(eval("max(3, 1, 2)"), "3");
  EXPECT_EQ(eval("min(3, 1.5)"), "1.5d");
  EXPECT_EQ(eval("max(3, 1.5)"), "3d");
  EXPECT_EQ(type_of("max(3, 1.5)"), Type::Double);
  EXPECT_EQ(eval("max(n, avg_5m)"), "null");
  EXPECT_EQ(eval("min(amount, 100) + max(0, n - 10)"), "10d");
}

TEST_F(ExprTest, Haversine) {
  // Paris to London, about 343.5 km.
  std::string km = eval("haversine_km(48.8566, 2.3522, 51.5074, -0.1278)");
  ASSERT_EQ(km.back(), 'd');
  EXPECT_NEAR(std::stod(km), 343.5, 1.0);
  EXPECT_EQ(eval("haversine_km(1, 2, 1, 2)"), "0d");
  // Antipodes: half the circumference.
  EXPECT_NEAR(std::stod(eval("haversine_km(0, 0, 0, 180)")), M_PI * 6371.0088, 1e-6);
  EXPECT_EQ(eval("haversine_km(lat, lon, 0, 0)"), "null");  // null fields
  set_double(6, 10);
  set_double(7, 20);
  EXPECT_NEAR(std::stod(eval("haversine_km(lat, lon, 10, 21)")), 109.5, 0.5);
}

TEST_F(ExprTest, TimeFunctions) {
  // ts = 2026-01-01T00:00:00Z, a Thursday.
  EXPECT_EQ(eval("hour_of_day(ts)"), "0");
  EXPECT_EQ(eval("day_of_week(ts)"), "3");  // 0 = Monday
  EXPECT_EQ(eval("is_weekend(ts)"), "false");
  EXPECT_EQ(eval("hour_of_day(ts + 13h + 59m)"), "13");
  EXPECT_EQ(eval("day_of_week(ts + 2d)"), "5");
  EXPECT_EQ(eval("is_weekend(ts + 2d)"), "true");
  EXPECT_EQ(eval("is_weekend(ts + 3d)"), "true");
  EXPECT_EQ(eval("is_weekend(ts + 4d)"), "false");
  EXPECT_EQ(eval("day_of_week(ts - 3d)"), "0");
  // Before 1970: floor, not truncation.
  EXPECT_EQ(eval("hour_of_day(-1)"), "23");
  EXPECT_EQ(eval("day_of_week(-1)"), "2");  // 1969-12-31, a Wednesday
  // RFC 3339 strings, in UTC whatever their offset.
  EXPECT_EQ(eval("hour_of_day('2026-03-07T23:30:00+02:00')"), "21");
  EXPECT_EQ(eval("day_of_week('2026-03-07T10:00:00Z')"), "5");
  EXPECT_EQ(eval("hour_of_day(when)"), "null");  // null field
  event_.set_string(5, "not a time");
  EXPECT_EQ(eval("hour_of_day(when)"), "null");
  event_.set_string(5, "2026-01-04T18:00:00Z");
  EXPECT_EQ(eval("is_weekend(when)"), "true");
}

TEST_F(ExprTest, IsNull) {
  EXPECT_EQ(eval("is_null(avg_5m)"), "true");
  EXPECT_EQ(eval("is_null(amount)"), "false");
  EXPECT_EQ(eval("is_null(1 / 0)"), "true");
  EXPECT_EQ(eval("is_null(lookup(merchants, 'nope').risk)"), "true");
}

TEST_F(ExprTest, FieldsAndFeatures) {
  EXPECT_EQ(eval("card"), "'c1'");
  EXPECT_EQ(eval("flag"), "true");
  EXPECT_EQ(eval("count_5m * 2"), "6");
  EXPECT_EQ(eval("when"), "null");
  features_[1].set_double(2.0);
  EXPECT_EQ(eval("amount / avg_5m"), "5d");
  features_[1].set_double(std::nan(""));
  EXPECT_EQ(eval("avg_5m"), "null");
}

TEST_F(ExprTest, BatchValues) {
  EXPECT_EQ(eval("batch.stats.avg"), "12.5d");
  EXPECT_EQ(eval("batch.stats.tier"), "'gold'");
  EXPECT_EQ(eval("amount / batch.stats.avg"), "0.8d");
  event_.set_string(0, "other");  // the fake knows only c1
  event_.values[0].s.off = static_cast<uint32_t>(event_.arena.size() - 5);
  EXPECT_EQ(eval("batch.stats.avg"), "null");
}

TEST_F(ExprTest, TableLookups) {
  EXPECT_EQ(eval("lookup(merchants, 'm1').risk"), "0.9d");
  EXPECT_EQ(eval("lookup(merchants, 'm1', 'country')"), "'FR'");
  EXPECT_EQ(eval("lookup(merchants, 42).country"), "'DE'");  // int keys as their decimal text
  EXPECT_EQ(eval("lookup(merchants, 'missing').risk"), "null");
  EXPECT_EQ(eval("lookup(merchants, when).risk"), "null");  // null key: null, not an error
  EXPECT_EQ(eval("coalesce(lookup(merchants, 'missing').risk, 0.5)"), "0.5d");
  EXPECT_EQ(eval("lookup(merchants, 'm1').country == 'FR' and lookup(merchants, 42).risk < 0.5"),
            "true");
  EXPECT_EQ(lookups_.last_lookup_time, event_.time);  // as of the event's time
}

TEST_F(ExprTest, KeyedHelpers) {
  features_[2].set_double(4.0);
  features_[3].set_bool(true);
  EXPECT_EQ(eval("prev(amount)"), "4d");
  ASSERT_EQ(helpers_.size(), 1u);
  EXPECT_EQ(helpers_[0].kind, KeyedHelper::Kind::Prev);
  EXPECT_EQ(helpers_[0].field, 1);
  EXPECT_EQ(helpers_[0].window, 86'400'000);
  helpers_.clear();
  EXPECT_EQ(eval("amount - prev(amount, 1h) + if(is_new(card, 30d), 100, 0)"), "106d");
  ASSERT_EQ(helpers_.size(), 2u);
  EXPECT_EQ(helpers_[0].window, 3'600'000);
  EXPECT_EQ(helpers_[1].kind, KeyedHelper::Kind::IsNew);
  EXPECT_EQ(helpers_[1].field, 0);
  EXPECT_EQ(helpers_[1].window, 30 * 86'400'000LL);
  EXPECT_EQ(type_of("prev(card)"), Type::String);
  EXPECT_EQ(type_of("is_new(card, 1d)"), Type::Bool);
}

// Errors: the column of the offending text and what was expected.
TEST_F(ExprTest, Errors) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"amount / lgo1p(amount)", "at column 10: unknown function 'lgo1p' (did you mean log1p?)"},
      {"amont + 1",
       "at column 1: unknown name 'amont': not a field of the source schema or an "
       "earlier feature (did you mean amount?)"},
      {"later_feature + 1", "at column 1: feature 'later_feature' is defined after this one"},
      {"1 +", "at column 4: the expression ends too early"},
      {"", "at column 1: empty expression"},
      {"(1 + 2", "at column 7: expected ')'"},
      {"1 2", "at column 3: unexpected '2' after a complete expression"},
      {"n = 1", "at column 3: '=' is not an operator; compare with '=='"},
      {"n > 1 && flag", "at column 7: unexpected '&'; write and, or, not"},
      {"'abc", "at column 1: string is not closed"},
      {"5x", "at column 1: '5x' is not a number or a duration"},
      {"card + 1", "at column 1: expected a number before '+', got string"},
      {"1 - card", "at column 5: expected a number after '-', got string"},
      {"card > 1", "at column 6: cannot compare string with int using '>'"},
      {"flag < true", "at column 6: cannot compare bool with bool using '<'"},
      {"amount == null", "at column 8: '==' with null is always null; test with is_null(x)"},
      {"n and flag", "at column 1: expected a bool before 'and', got int"},
      {"flag or 1", "at column 9: expected a bool after 'or', got int"},
      {"not card", "at column 5: expected a bool after 'not', got string"},
      {"-card", "at column 2: expected a number after '-', got string"},
      {"if(n, 1, 2)", "at column 4: expected a bool condition, got int"},
      {"if(flag, 1, 'a')", "at column 1: if(): the branches are int and string"},
      {"if(flag, 1)", "at column 1: if() takes 3 arguments: if(condition, then, else)"},
      {"coalesce(n, 'a')", "at column 13: coalesce(): argument 2 is string"},
      {"abs('x')", "at column 5: expected a number, got string"},
      {"log1p()", "at column 1: log1p() takes 1 argument"},
      {"min(1)", "at column 1: min() takes at least 2 arguments"},
      {"haversine_km(1, 2, 3)", "at column 1: haversine_km() takes 4 arguments"},
      {"hour_of_day(amount)", "at column 13: expected a time"},
      {"prev(1)", "at column 6: prev(): the first argument must be a field"},
      {"is_new(card)", "at column 1: is_new() takes 2 arguments"},
      {"is_new(card, n)", "at column 14: expected a positive duration such as 30d"},
      {"lookup(merchant, card).risk",
       "at column 8: lookup: the first argument must name a table "
       "of the spec's tables: section (did you mean merchants?)"},
      {"lookup(merchants, card).rsk",
       "at column 25: table 'merchants' has no column 'rsk' (did "
       "you mean risk?)"},
      {"lookup(merchants, card)", "at column 1: lookup() returns a row: pick a column"},
      {"lookup(merchants, flag).risk",
       "at column 19: expected a string or int key for lookup, "
       "got bool"},
      {"lookup(merchants, card, risk)", "at column 25: lookup(): the column must be a string"},
      {"lookup(merchants, card) + 1", "at column 1: lookup() returns a row"},
      {"merchants", "at column 1: table 'merchants' is read with lookup(merchants, key).column"},
      {"batch.stat.avg",
       "at column 7: no batch source 'stat' in the spec's batch: section (did "
       "you mean stats?)"},
      {"batch.stats.avgg", "at column 13: batch source 'stats' has no column 'avgg'"},
      {"batch.stats", "at column 7: batch values are read as batch.stats.COLUMN"},
      {"batch", "at column 1: batch values are read as batch.SOURCE.COLUMN"},
      {"amount.x", "at column 8: '.x' reads a column of batch.SOURCE or of lookup(table, key)"},
      {"null", "at column 1: the expression is always null"},
      {"n < 1 < 2", "at column 7: comparisons do not chain"},
      {"coalesce", "at column 1: coalesce is a function: write coalesce(...)"},
      {"abs(1,", "at column 7: the expression ends too early"},
      {"max(1 2)", "at column 7: expected ',' or ')' in the arguments of max()"},
  };
  for (const auto& c : cases) {
    auto p = compile(c.text, env_);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_NE(p.status().message().find(c.error), std::string::npos)
        << c.text << "\n  got:  " << p.status().message() << "\n  want: " << c.error;
  }
}

TEST_F(ExprTest, HelpersNeedAnEnvironment) {
  env_.helper = [](const KeyedHelper&) -> Result<int> {
    return Status::Error("prev() and is_new() need the feature's 'key:'");
  };
  auto p = compile("1 + prev(amount)", env_);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "at column 5: prev() and is_new() need the feature's 'key:'");
}

// Random arithmetic trees against a direct evaluation in doubles, with nulls.
TEST_F(ExprTest, RandomArithmeticMatchesDirectEvaluation) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> val(-5, 5);
  for (int iter = 0; iter < 500; ++iter) {
    double a = std::round(val(rng) * 4) / 4, b = std::round(val(rng) * 4) / 4;
    bool a_null = rng() % 5 == 0;
    if (a_null) {
      features_[1].set_null();
    } else {
      features_[1].set_double(a);
    }
    set_double(1, b);
    // ((avg_5m OP1 amount) OP2 c)
    const char* ops = "+-*/";
    char o1 = ops[rng() % 4], o2 = ops[rng() % 4];
    double c = static_cast<double>(static_cast<int>(rng() % 7) - 3);
    auto apply = [](char o, double x, double y, bool* null) {
      switch (o) {
        case '+':
          return x + y;
        case '-':
          return x - y;
        case '*':
          return x * y;
        default:
          if (y == 0) *null = true;
          return y == 0 ? 0 : x / y;
      }
    };
    bool null = a_null;
    double r = apply(o2, apply(o1, a, b, &null), c, &null);
    std::string text = fmt::format("(avg_5m {} amount) {} {}", o1, o2, c);
    std::string got = eval(text);
    if (null) {
      EXPECT_EQ(got, "null") << text << " a=" << a << " b=" << b;
    } else {
      ASSERT_NE(got, "null") << text;
      EXPECT_DOUBLE_EQ(std::stod(got), r) << text << " a=" << a << " b=" << b;
    }
  }
}

}  // namespace
}  // namespace millrace::expr

namespace millrace::expr {
namespace {

// if() with two constant branches and coalesce() with a constant last of two
// compile to one instruction each (Select, CoalesceConst): on random
// conditions, values and events they give what the general code gives (the
// same constants behind coalesce(), which the compiler does not fold).
TEST_F(ExprTest, ConstantBranchesMatchGeneralCode) {
  const char* conditions[] = {"flag", "not flag",       "n > 5",        "n == 7",      "avg_5m > 1",
                              "null", "flag and n > 9", "amount >= 10", "card == 'c1'"};
  const char* constants[] = {"1", "2.5", "0", "-0.0", "'s'", "'t'", "null", "true", "false", "7"};
  const char* values[] = {"avg_5m",          "n",    "amount", "null", "count_5m",
                          "batch.stats.avg", "card", "flag",   "1",    "'x'"};
  std::mt19937_64 rng(7);
  size_t compared = 0;
  for (int i = 0; i < 3000; ++i) {
    // A random event: the flag true, false or null; avg_5m null or a number.
    if (rng() % 3 == 0) {
      event_.values[3].kind = FieldValue::Kind::Null;
    } else {
      event_.values[3].kind = FieldValue::Kind::Bool;
      event_.values[3].b = rng() % 2 == 0;
    }
    if (rng() % 2) {
      features_[1].set_double(static_cast<double>(rng() % 5));
    } else {
      features_[1].set_null();
    }
    event_.values[2].i = static_cast<int64_t>(rng() % 12);
    const std::string c = conditions[rng() % std::size(conditions)];
    const std::string a = constants[rng() % std::size(constants)];
    const std::string b = constants[rng() % std::size(constants)];
    const std::string x = values[rng() % std::size(values)];
    const std::pair<std::string, std::string> cases[] = {
        {"if(" + c + ", " + a + ", " + b + ")",
         "if(" + c + ", coalesce(" + a + "), coalesce(" + b + "))"},
        {"coalesce(" + x + ", " + a + ")", "coalesce(" + x + ", coalesce(" + a + "))"},
    };
    for (const auto& [fast, general] : cases) {
      auto pf = compile(fast, env_);
      auto pg = compile(general, env_);
      ASSERT_EQ(pf.ok(), pg.ok()) << fast;
      if (!pf.ok()) {
        EXPECT_EQ(pf.status().message(), pg.status().message()) << fast;
        continue;
      }
      EXPECT_EQ(pf->type, pg->type) << fast;
      EXPECT_EQ(eval(fast), eval(general)) << fast;
      EXPECT_LT(pf->code.size(), pg->code.size()) << fast;
      ++compared;
    }
  }
  EXPECT_GT(compared, 3000u);
}

}  // namespace
}  // namespace millrace::expr
