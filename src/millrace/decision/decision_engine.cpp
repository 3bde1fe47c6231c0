#include "millrace/decision/decision_engine.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/compile.h>
#include <fmt/format.h>

namespace millrace::decision {
namespace {

using Condition = DecisionEngine::Condition;

// Builds errors that name the YAML path and line.
Status yaml_error(const YAML::Node& node, const std::string& path, const std::string& what) {
  const auto mark = node.Mark();
  if (mark.line >= 0)
    return Status::Error(fmt::format("{} (line {}): {}", path, mark.line + 1, what));
  return Status::Error(fmt::format("{}: {}", path, what));
}

bool as_double(const YAML::Node& n, double* out) {
  if (!n.IsScalar()) return false;
  const std::string& s = n.Scalar();
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

std::string fmt_value(const FieldValue& v) {
  if (std::holds_alternative<double>(v)) return fmt::format("{}", std::get<double>(v));
  if (std::holds_alternative<std::string_view>(v))
    return std::string(std::get<std::string_view>(v));
  return "missing";
}

class Builder {
 public:
  std::vector<std::string> fields;

  size_t field_index(const std::string& name) {
    auto it = std::find(fields.begin(), fields.end(), name);
    if (it != fields.end()) return static_cast<size_t>(it - fields.begin());
    fields.push_back(name);
    return fields.size() - 1;
  }

  Status condition(const YAML::Node& n, const std::string& path, Condition* c) {
    if (n.IsSequence()) {
      c->kind = Condition::Kind::kAll;
      std::vector<std::string> texts;
      for (size_t i = 0; i < n.size(); ++i) {
        Condition sub;
        Status s = condition(n[i], fmt::format("{}[{}]", path, i), &sub);
        if (!s.ok()) return s;
        texts.push_back(sub.text);
        c->all.push_back(std::move(sub));
      }
      if (c->all.empty()) return yaml_error(n, path, "expected at least one condition");
      c->text = fmt::format("{}", fmt::join(texts, " and "));
      return Status::Ok();
    }
    if (!n.IsMap())
      return yaml_error(n, path,
                        "expected a condition: {field, op, value}, {field, in: [...]}, "
                        "{field, min, max}, or a list of conditions");
    const YAML::Node field = n["field"];
    if (!field || !field.IsScalar() || field.Scalar().empty())
      return yaml_error(n, path + ".field", "expected the name of a feature or event field");
    const std::string& name = field.Scalar();
    c->field = field_index(name);
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (key != "field" && key != "op" && key != "value" && key != "in" && key != "min" &&
          key != "max")
        return yaml_error(kv.first, path + "." + key,
                          "unknown key; expected field, op, value, in, min or max");
    }
    if (n["in"]) {
      c->kind = Condition::Kind::kIn;
      const YAML::Node in = n["in"];
      if (!in.IsSequence() || in.size() == 0)
        return yaml_error(in, path + ".in", "expected a non-empty list of values");
      std::vector<std::string> shown;
      for (size_t i = 0; i < in.size(); ++i) {
        if (!in[i].IsScalar())
          return yaml_error(in[i], fmt::format("{}.in[{}]", path, i), "expected a value");
        double d;
        if (as_double(in[i], &d)) c->numbers.push_back(d);
        c->strings.push_back(in[i].Scalar());  // strings match by text too
        shown.push_back(in[i].Scalar());
      }
      c->text = fmt::format("{} in [{}]", name, fmt::join(shown, ", "));
      return Status::Ok();
    }
    if (n["min"] || n["max"]) {
      c->kind = Condition::Kind::kRange;
      double lo = -INFINITY, hi = INFINITY;
      if (n["min"] && !as_double(n["min"], &lo))
        return yaml_error(n["min"], path + ".min", "expected a number");
      if (n["max"] && !as_double(n["max"], &hi))
        return yaml_error(n["max"], path + ".max", "expected a number");
      if (!(lo < hi)) return yaml_error(n, path, "expected min < max");
      c->numbers = {lo, hi};
      c->text = n["min"] && n["max"] ? fmt::format("{} <= {} < {}", lo, name, hi)
                : n["min"]           ? fmt::format("{} >= {}", name, lo)
                                     : fmt::format("{} < {}", name, hi);
      return Status::Ok();
    }
    c->kind = Condition::Kind::kCompare;
    const YAML::Node op = n["op"];
    const YAML::Node value = n["value"];
    if (!op || !op.IsScalar())
      return yaml_error(n, path + ".op",
                        "expected one of <, <=, >, >=, ==, != (or use in / min, max)");
    static const std::pair<const char*, Condition::Op> kOps[] = {
        {"<", Condition::Op::kLt},  {"<=", Condition::Op::kLe}, {">", Condition::Op::kGt},
        {">=", Condition::Op::kGe}, {"==", Condition::Op::kEq}, {"!=", Condition::Op::kNe}};
    bool found = false;
    for (const auto& [text, o] : kOps)
      if (op.Scalar() == text) c->op = o, found = true;
    if (!found)
      return yaml_error(
          op, path + ".op",
          fmt::format("expected one of <, <=, >, >=, ==, !=; got \"{}\"", op.Scalar()));
    if (!value || !value.IsScalar()) return yaml_error(n, path + ".value", "expected a value");
    double d;
    if (as_double(value, &d)) {
      c->number_value = d;
    } else {
      if (c->op != Condition::Op::kEq && c->op != Condition::Op::kNe)
        return yaml_error(value, path + ".value",
                          fmt::format("expected a number for \"{}\" (strings only compare with == "
                                      "and !=)",
                                      op.Scalar()));
      c->value_is_string = true;
      c->string_value = value.Scalar();
    }
    c->text = fmt::format("{} {} {}", name, op.Scalar(), value.Scalar());
    return Status::Ok();
  }

  Status thresholds(const YAML::Node& n, const std::string& path, DecisionEngine::Thresholds* t) {
    if (!n.IsMap()) return yaml_error(n, path, "expected {challenge: number, decline: number}");
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      double* dst = key == "challenge" ? &t->challenge : key == "decline" ? &t->decline : nullptr;
      if (!dst)
        return yaml_error(kv.first, path + "." + key, "unknown key; expected challenge or decline");
      if (!as_double(kv.second, dst))
        return yaml_error(kv.second, path + "." + key, "expected a number");
    }
    if (!(t->challenge <= t->decline))
      return yaml_error(
          n, path,
          fmt::format("expected challenge <= decline, got {} > {}", t->challenge, t->decline));
    return Status::Ok();
  }
};

bool parse_action(const std::string& s, Action* a) {
  if (s == "approve") return *a = Action::kApprove, true;
  if (s == "challenge") return *a = Action::kChallenge, true;
  if (s == "decline") return *a = Action::kDecline, true;
  return false;
}

}  // namespace

const char* action_name(Action a) {
  switch (a) {
    case Action::kApprove:
      return "approve";
    case Action::kChallenge:
      return "challenge";
    case Action::kDecline:
      return "decline";
  }
  return "?";
}

DecisionEngine DecisionEngine::defaults() {
  return DecisionEngine();
}

Result<DecisionEngine> DecisionEngine::build(const YAML::Node& d) {
  DecisionEngine e;
  if (!d || d.IsNull()) return e;
  const std::string root = "decisions";
  if (!d.IsMap()) return yaml_error(d, root, "expected a map (thresholds, segments, rules, ...)");
  Builder b;
  for (const auto& kv : d) {
    const std::string key = kv.first.Scalar();
    if (key != "thresholds" && key != "segments" && key != "rules" && key != "review_on_decline" &&
        key != "step_up")
      return yaml_error(kv.first, root + "." + key,
                        "unknown key; expected thresholds, segments, rules, review_on_decline or "
                        "step_up");
  }
  if (d["thresholds"]) {
    Status s = b.thresholds(d["thresholds"], root + ".thresholds", &e.thresholds_);
    if (!s.ok()) return s;
  }
  if (const YAML::Node r = d["review_on_decline"]) {
    if (!r.IsScalar() || (r.Scalar() != "true" && r.Scalar() != "false"))
      return yaml_error(r, root + ".review_on_decline", "expected true or false");
    e.review_on_decline_ = r.Scalar() == "true";
  }
  if (const YAML::Node su = d["step_up"]) {
    if (!su.IsScalar() || su.Scalar().empty())
      return yaml_error(su, root + ".step_up", "expected a step-up method, e.g. 3ds or sms");
    e.step_up_ = su.Scalar();
  }
  if (const YAML::Node segs = d["segments"]) {
    if (!segs.IsSequence()) return yaml_error(segs, root + ".segments", "expected a list");
    for (size_t i = 0; i < segs.size(); ++i) {
      const std::string path = fmt::format("{}.segments[{}]", root, i);
      const YAML::Node n = segs[i];
      if (!n.IsMap()) return yaml_error(n, path, "expected {name, when, thresholds}");
      Segment seg;
      seg.name =
          n["name"] && n["name"].IsScalar() ? n["name"].Scalar() : fmt::format("segment{}", i);
      if (!n["when"]) return yaml_error(n, path + ".when", "missing (required)");
      Status s = b.condition(n["when"], path + ".when", &seg.when);
      if (!s.ok()) return s;
      seg.thresholds = e.thresholds_;
      if (!n["thresholds"]) return yaml_error(n, path + ".thresholds", "missing (required)");
      s = b.thresholds(n["thresholds"], path + ".thresholds", &seg.thresholds);
      if (!s.ok()) return s;
      e.segments_.push_back(std::move(seg));
    }
  }
  if (const YAML::Node rules = d["rules"]) {
    if (!rules.IsSequence()) return yaml_error(rules, root + ".rules", "expected a list");
    for (size_t i = 0; i < rules.size(); ++i) {
      const std::string path = fmt::format("{}.rules[{}]", root, i);
      const YAML::Node n = rules[i];
      if (!n.IsMap()) return yaml_error(n, path, "expected {name, when, action, reason}");
      Rule rule;
      rule.name = n["name"] && n["name"].IsScalar() ? n["name"].Scalar() : fmt::format("rule{}", i);
      if (!n["when"]) return yaml_error(n, path + ".when", "missing (required)");
      Status s = b.condition(n["when"], path + ".when", &rule.when);
      if (!s.ok()) return s;
      const YAML::Node action = n["action"];
      if (!action || !action.IsScalar() || !parse_action(action.Scalar(), &rule.action))
        return yaml_error(action ? action : n, path + ".action",
                          "expected approve, challenge or decline");
      rule.reason = n["reason"] && n["reason"].IsScalar() ? n["reason"].Scalar() : "";
      e.rules_.push_back(std::move(rule));
    }
  }
  e.fields_ = std::move(b.fields);
  e.prepare_reasons();
  return e;
}

void DecisionEngine::prepare_reasons() {
  band_reasons_.clear();
  auto add = [&](const Thresholds& t, const std::string& segment) {
    const std::string in_segment = segment.empty() ? "" : " (segment " + segment + ")";
    band_reasons_.push_back(
        {fmt::format(" < challenge threshold {}", t.challenge) + in_segment,
         fmt::format(" in [{}, {}): step-up {}", t.challenge, t.decline, step_up_) + in_segment,
         fmt::format(" >= decline threshold {}", t.decline) + in_segment});
  };
  add(thresholds_, "");
  for (const Segment& seg : segments_) add(seg.thresholds, seg.name);
}

bool DecisionEngine::holds(const Condition& c, const std::vector<FieldValue>& values) const {
  if (c.kind == Condition::Kind::kAll) {
    for (const auto& sub : c.all)
      if (!holds(sub, values)) return false;
    return true;
  }
  const FieldValue& v = values[c.field];
  if (std::holds_alternative<std::monostate>(v)) return false;
  const double* num = std::get_if<double>(&v);
  if (num && std::isnan(*num)) return false;
  const std::string_view* str = std::get_if<std::string_view>(&v);
  switch (c.kind) {
    case Condition::Kind::kIn:
      if (num) return std::find(c.numbers.begin(), c.numbers.end(), *num) != c.numbers.end();
      return std::find(c.strings.begin(), c.strings.end(), *str) != c.strings.end();
    case Condition::Kind::kRange:
      return num && *num >= c.numbers[0] && *num < c.numbers[1];
    case Condition::Kind::kCompare: {
      if (c.value_is_string) {
        // A number field compared with a string: compare its text.
        const std::string text = num ? fmt::format("{}", *num) : std::string(*str);
        return (c.op == Condition::Op::kEq) == (text == c.string_value);
      }
      double x;
      if (num) {
        x = *num;
      } else {
        const std::string s(*str);
        char* end = nullptr;
        x = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) return c.op == Condition::Op::kNe;
      }
      const double y = c.number_value;
      switch (c.op) {
        case Condition::Op::kLt:
          return x < y;
        case Condition::Op::kLe:
          return x <= y;
        case Condition::Op::kGt:
          return x > y;
        case Condition::Op::kGe:
          return x >= y;
        case Condition::Op::kEq:
          return x == y;
        case Condition::Op::kNe:
          return x != y;
      }
      return false;
    }
    case Condition::Kind::kAll:
      break;
  }
  return false;
}

Decision DecisionEngine::decide(double score, const std::vector<FieldValue>& values) const {
  Decision d;
  decide(score, values, &d);
  return d;
}

void DecisionEngine::decide(double score, const std::vector<FieldValue>& values,
                            Decision* out) const {
  Decision& d = *out;
  d.review = false;
  d.step_up.clear();
  d.reason.clear();
  d.rule.clear();
  d.segment.clear();
  auto reason = std::back_inserter(d.reason);
  for (const auto& rule : rules_) {
    if (!holds(rule.when, values)) continue;
    d.action = rule.action;
    d.rule = rule.name;
    fmt::format_to(reason, FMT_COMPILE("rule {}: {}"), rule.name,
                   rule.reason.empty() ? rule.when.text : rule.reason);
    if (rule.when.kind != Condition::Kind::kAll && !rule.reason.empty())
      fmt::format_to(reason, FMT_COMPILE(" ({} = {})"), fields_[rule.when.field],
                     fmt_value(values[rule.when.field]));
    d.review = d.action == Action::kDecline && review_on_decline_;
    if (d.action == Action::kChallenge) d.step_up = step_up_;
    return;
  }
  const Thresholds* t = &thresholds_;
  const BandReasons* text = &band_reasons_[0];
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (holds(segments_[i].when, values)) {
      t = &segments_[i].thresholds;
      text = &band_reasons_[1 + i];
      d.segment = segments_[i].name;
      break;
    }
  }
  if (std::isnan(score)) {
    d.action = Action::kChallenge;
    d.step_up = step_up_;
    d.reason = "score missing";
    if (!d.segment.empty()) {
      d.reason += " (segment ";
      d.reason += d.segment;
      d.reason += ')';
    }
    return;
  }
  fmt::format_to(reason, FMT_COMPILE("score {:.4f}"), score);
  if (score < t->challenge) {
    d.action = Action::kApprove;
    d.reason += text->approve;
  } else if (score < t->decline) {
    d.action = Action::kChallenge;
    d.step_up = step_up_;
    d.reason += text->challenge;
  } else {
    d.action = Action::kDecline;
    d.review = review_on_decline_;
    d.reason += text->decline;
  }
}

Decision DecisionEngine::decide(double score,
                                const std::function<FieldValue(std::string_view)>& lookup) const {
  std::vector<FieldValue> values;
  values.reserve(fields_.size());
  for (const auto& f : fields_) values.push_back(lookup(f));
  return decide(score, values);
}

}  // namespace millrace::decision
