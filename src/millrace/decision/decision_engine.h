// DecisionEngine: turns a model score into an action with a reason, from the
// `decisions:` section of a pipeline spec.
//
//   decisions:
//     thresholds: {challenge: 0.3, decline: 0.7}   # the defaults
//     review_on_decline: true                      # declines also go to review (default)
//     step_up: 3ds                                 # how to challenge: 3ds | sms | ... (default
//     3ds) segments:                # first match replaces the thresholds
//       - name: gambling
//         when: {field: merchant_category, in: ["7995", "7801"]}
//         thresholds: {challenge: 0.2, decline: 0.5}
//       - name: large_amount
//         when: {field: amount, min: 1000}       # range [min, max); either end optional
//         thresholds: {challenge: 0.1, decline: 0.6}
//     rules:                   # hard rules, checked before the score, in order
//       - name: impossible_travel
//         when: {field: travel_speed_kmh, op: ">", value: 900}
//         action: decline
//         reason: impossible travel              # optional; default names the rule
//
// The score bands: score < challenge -> approve; challenge <= score < decline
// -> challenge (step-up); score >= decline -> decline (and review). A missing
// (NaN) score is challenged. A condition ("when") is {field, op, value} with op
// one of < <= > >= == !=, {field, in: [values]}, {field, min, max}, or a list
// of conditions that must all hold. A condition on a missing field is false.
// Numbers compare as numbers; strings compare for (in)equality and `in`.
//
// Per event the runtime passes the values of fields() in that order, resolved
// once at bind time, so deciding does no name lookups. A DecisionEngine is
// immutable after build(); decide() may run on any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "millrace/core/status.h"

namespace millrace::decision {

enum class Action : uint8_t { kApprove, kChallenge, kDecline };
const char* action_name(Action a);

// A field's value for one event: missing, a number, or a string.
using FieldValue = std::variant<std::monostate, double, std::string_view>;

struct Decision {
  Action action = Action::kApprove;
  bool review = false;  // also send to manual review
  std::string step_up;  // for kChallenge: the step-up method ("3ds", "sms")
  std::string reason;   // human-readable: the rule, or the score against its band
  std::string rule;     // the hard rule that decided, or ""
  std::string segment;  // the segment whose thresholds applied, or ""
};

class DecisionEngine {
 public:
  // Builds from the `decisions:` node (a null/absent node gives the defaults).
  // Errors name the field (e.g. decisions.segments[1].when.op), its line in the
  // YAML, and what was expected.
  static Result<DecisionEngine> build(const YAML::Node& decisions);
  static DecisionEngine defaults();

  // Names of the fields the rules and segments read, in the order decide()
  // expects their values.
  const std::vector<std::string>& fields() const { return fields_; }

  // values[i] is the value of fields()[i] for this event (size == fields().size()).
  Decision decide(double score, const std::vector<FieldValue>& values) const;
  // The same into *out, reusing its strings' memory (no allocation once they
  // have grown: for scoring every event).
  void decide(double score, const std::vector<FieldValue>& values, Decision* out) const;
  // Convenience: looks each field up by name (slower; for tools and tests).
  Decision decide(double score, const std::function<FieldValue(std::string_view)>& lookup) const;

  struct Thresholds {
    double challenge = 0.3, decline = 0.7;
  };
  struct Condition {
    enum class Kind : uint8_t { kCompare, kIn, kRange, kAll } kind = Kind::kCompare;
    size_t field = 0;
    enum class Op : uint8_t { kLt, kLe, kGt, kGe, kEq, kNe } op = Op::kEq;
    bool value_is_string = false;  // kCompare: compare with string_value or number_value
    double number_value = 0;
    std::string string_value;
    std::vector<std::string> strings;  // kIn strings
    std::vector<double> numbers;       // kIn numbers; kRange {min, max}
    std::vector<Condition> all;
    std::string text;  // for reasons, e.g. "travel_speed_kmh > 900"
  };
  struct Rule {
    std::string name;
    Condition when;
    Action action = Action::kDecline;
    std::string reason;
  };
  struct Segment {
    std::string name;
    Condition when;
    Thresholds thresholds;
  };

 private:
  DecisionEngine() { prepare_reasons(); }
  bool holds(const Condition& c, const std::vector<FieldValue>& values) const;
  // What follows "score S" in the reason of each band, per set of thresholds
  // (the defaults, then each segment's): formatted once, not per event.
  struct BandReasons {
    std::string approve, challenge, decline;
  };
  void prepare_reasons();
  std::vector<BandReasons> band_reasons_;  // [0]: the defaults; [1 + i]: segments_[i]

  Thresholds thresholds_;
  bool review_on_decline_ = true;
  std::string step_up_ = "3ds";
  std::vector<Rule> rules_;
  std::vector<Segment> segments_;
  std::vector<std::string> fields_;
};

}  // namespace millrace::decision
