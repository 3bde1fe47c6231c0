#include "millrace/decision/decision_engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "millrace/decision/decision_record.h"

namespace millrace::decision {
namespace {

const char* kSpec = R"(
decisions:
  thresholds: {challenge: 0.3, decline: 0.7}
  step_up: sms
  segments:
    - name: gambling
      when: {field: merchant_category, in: ["7995", "7801"]}
      thresholds: {challenge: 0.2, decline: 0.5}
    - name: large_amount
      when: {field: amount, min: 1000}
      thresholds: {challenge: 0.1, decline: 0.6}
  rules:
    - name: impossible_travel
      when: {field: travel_speed_kmh, op: ">", value: 900}
      action: decline
      reason: impossible travel
    - name: trusted_small
      when:
        - {field: card_trusted, op: "==", value: 1}
        - {field: amount, max: 20}
      action: approve
)";

DecisionEngine build(const std::string& yaml) {
  auto e = DecisionEngine::build(YAML::Load(yaml)["decisions"]);
  EXPECT_TRUE(e.ok()) << e.status().message();
  return std::move(e.value());
}

Decision decide(const DecisionEngine& e, double score, const std::map<std::string, FieldValue>& v) {
  return e.decide(score, [&](std::string_view name) -> FieldValue {
    auto it = v.find(std::string(name));
    return it == v.end() ? FieldValue{} : it->second;
  });
}

TEST(DecisionEngine, DefaultBands) {
  const DecisionEngine e = DecisionEngine::defaults();
  EXPECT_TRUE(e.fields().empty());
  EXPECT_EQ(e.decide(0.0, std::vector<FieldValue>{}).action, Action::kApprove);
  EXPECT_EQ(e.decide(0.2999, std::vector<FieldValue>{}).action, Action::kApprove);
  const Decision c = e.decide(0.3, std::vector<FieldValue>{});
  EXPECT_EQ(c.action, Action::kChallenge);
  EXPECT_EQ(c.step_up, "3ds");
  EXPECT_FALSE(c.review);
  EXPECT_EQ(e.decide(0.6999, std::vector<FieldValue>{}).action, Action::kChallenge);
  const Decision d = e.decide(0.7, std::vector<FieldValue>{});
  EXPECT_EQ(d.action, Action::kDecline);
  EXPECT_TRUE(d.review);
  EXPECT_NE(d.reason.find(">= decline threshold 0.7"), std::string::npos) << d.reason;
  EXPECT_EQ(e.decide(NAN, std::vector<FieldValue>{}).action, Action::kChallenge);
}

// The reason of every band, whole: the score to four decimals, the band's
// thresholds as written, the step-up method and the segment. One engine
// reused for many events keeps each reason its own (no text of the event
// before).
TEST(DecisionEngine, ReasonTextsPerBandAndSegment) {
  const DecisionEngine e = build(kSpec);
  auto reason = [&](double score, const char* mcc) {
    return decide(e, score, {{"merchant_category", mcc}, {"amount", 50.0}}).reason;
  };
  EXPECT_EQ(reason(0.25, "5411"), "score 0.2500 < challenge threshold 0.3");
  EXPECT_EQ(reason(0.123456, "5411"), "score 0.1235 < challenge threshold 0.3");
  EXPECT_EQ(reason(0.5, "5411"), "score 0.5000 in [0.3, 0.7): step-up sms");
  EXPECT_EQ(reason(0.75, "5411"), "score 0.7500 >= decline threshold 0.7");
  EXPECT_EQ(reason(0.1, "7995"), "score 0.1000 < challenge threshold 0.2 (segment gambling)");
  EXPECT_EQ(reason(0.3, "7995"), "score 0.3000 in [0.2, 0.5): step-up sms (segment gambling)");
  EXPECT_EQ(reason(0.5, "7801"), "score 0.5000 >= decline threshold 0.5 (segment gambling)");
  EXPECT_EQ(reason(NAN, "7995"), "score missing (segment gambling)");
  EXPECT_EQ(reason(NAN, "5411"), "score missing");
  Decision d;
  const std::vector<FieldValue> gambling = {std::string_view("7995"), 50.0, {}, {}};
  const std::vector<FieldValue> other = {std::string_view("5411"), 50.0, {}, {}};
  e.decide(0.9, gambling, &d);
  EXPECT_EQ(d.reason, "score 0.9000 >= decline threshold 0.5 (segment gambling)");
  e.decide(0.1, other, &d);
  EXPECT_EQ(d.reason, "score 0.1000 < challenge threshold 0.3");
  EXPECT_EQ(d.segment, "");
  EXPECT_EQ(d.step_up, "");
  const DecisionEngine defaults = DecisionEngine::defaults();
  EXPECT_EQ(defaults.decide(0.31, std::vector<FieldValue>{}).reason,
            "score 0.3100 in [0.3, 0.7): step-up 3ds");
}

TEST(DecisionEngine, SegmentsOverrideThresholdsFirstMatchWins) {
  const DecisionEngine e = build(kSpec);
  EXPECT_EQ(e.fields(), (std::vector<std::string>{"merchant_category", "amount", "travel_speed_kmh",
                                                  "card_trusted"}));
  // 0.55: challenge by default, decline in gambling, challenge for large amounts.
  EXPECT_EQ(decide(e, 0.55, {{"merchant_category", "5411"}, {"amount", 50.0}}).action,
            Action::kChallenge);
  const Decision g = decide(e, 0.55, {{"merchant_category", "7995"}, {"amount", 5000.0}});
  EXPECT_EQ(g.action, Action::kDecline);
  EXPECT_EQ(g.segment, "gambling");
  EXPECT_NE(g.reason.find("segment gambling"), std::string::npos);
  const Decision big = decide(e, 0.15, {{"merchant_category", "5411"}, {"amount", 1000.0}});
  EXPECT_EQ(big.action, Action::kChallenge);
  EXPECT_EQ(big.step_up, "sms");
  EXPECT_EQ(big.segment, "large_amount");
  EXPECT_EQ(decide(e, 0.15, {{"amount", 999.99}}).action, Action::kApprove);  // [min, max)
  // Numeric category values match the list's numbers.
  EXPECT_EQ(decide(e, 0.25, {{"merchant_category", 7801.0}}).segment, "gambling");
}

TEST(DecisionEngine, HardRulesComeBeforeTheScore) {
  const DecisionEngine e = build(kSpec);
  const Decision travel = decide(e, 0.01, {{"travel_speed_kmh", 1200.0}, {"amount", 5.0}});
  EXPECT_EQ(travel.action, Action::kDecline);
  EXPECT_EQ(travel.rule, "impossible_travel");
  EXPECT_TRUE(travel.review);
  EXPECT_NE(travel.reason.find("impossible travel"), std::string::npos) << travel.reason;
  EXPECT_NE(travel.reason.find("1200"), std::string::npos) << travel.reason;
  EXPECT_EQ(decide(e, 0.01, {{"travel_speed_kmh", 900.0}}).rule, "");  // not > 900
  // All conditions of a list must hold.
  EXPECT_EQ(decide(e, 0.95, {{"card_trusted", 1.0}, {"amount", 10.0}}).action, Action::kApprove);
  EXPECT_EQ(decide(e, 0.95, {{"card_trusted", 1.0}, {"amount", 30.0}}).action, Action::kDecline);
  // A missing field never satisfies a condition.
  EXPECT_EQ(decide(e, 0.95, {{"amount", 10.0}}).rule, "");
  // Rules apply in order: travel first.
  EXPECT_EQ(
      decide(e, 0.5, {{"travel_speed_kmh", 1000.0}, {"card_trusted", 1.0}, {"amount", 1.0}}).rule,
      "impossible_travel");
}

TEST(DecisionEngine, ValuesByIndexMatchLookup) {
  const DecisionEngine e = build(kSpec);
  std::vector<FieldValue> v = {std::string_view("7995"), 20.0, 10.0, FieldValue{}};
  const Decision d = e.decide(0.45, v);
  EXPECT_EQ(d.action, Action::kChallenge);
  EXPECT_EQ(d.segment, "gambling");
}

TEST(DecisionEngine, BadYamlNamesTheFieldLineAndExpectation) {
  struct Case {
    std::string yaml, message;
  };
  const std::vector<Case> cases = {
      {"decisions:\n  thresholds: {challenge: 0.8, decline: 0.7}\n",
       "decisions.thresholds (line 2): expected challenge <= decline"},
      {"decisions:\n  thresholds: {challenge: low}\n",
       "decisions.thresholds.challenge (line 2): expected a number"},
      {"decisions:\n  treshold: 1\n", "decisions.treshold (line 2): unknown key"},
      {"decisions:\n  rules:\n    - name: r\n      when: {field: x, op: \"=>\", value: 1}\n"
       "      action: decline\n",
       "decisions.rules[0].when.op (line 4): expected one of <, <=, >, >=, ==, !=; got \"=>\""},
      {"decisions:\n  rules:\n    - when: {field: x, op: \">\", value: 1}\n      action: block\n",
       "decisions.rules[0].action (line 4): expected approve, challenge or decline"},
      {"decisions:\n  rules:\n    - when: {field: x, op: \">\", value: abc}\n      action: "
       "decline\n",
       "decisions.rules[0].when.value (line 3): expected a number for \">\""},
      {"decisions:\n  segments:\n    - name: s\n      thresholds: {decline: 0.5}\n",
       "decisions.segments[0].when (line 3): missing (required)"},
      {"decisions:\n  segments:\n    - when: {field: a, min: 5, max: 1}\n      thresholds: {}\n",
       "decisions.segments[0].when (line 3): expected min < max"},
      {"decisions:\n  rules:\n    - when: {op: \">\", value: 1}\n      action: decline\n",
       "decisions.rules[0].when.field (line 3): expected the name"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.yaml);
    auto e = DecisionEngine::build(YAML::Load(c.yaml)["decisions"]);
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find(c.message), std::string::npos) << e.status().message();
  }
}

TEST(DecisionEngine, RecordCarriesModelVersionAndExtras) {
  const DecisionEngine e = build(kSpec);
  const Decision d = decide(e, 0.4, {{"amount", 12.0}});
  auto r = decision_record("tx1", 0.4, d, "fraud", "7", {{"amount", 12.0}, {"id", "ignored"}});
  EXPECT_EQ(r["id"], "tx1");
  EXPECT_EQ(r["action"], "challenge");
  EXPECT_EQ(r["step_up"], "sms");
  EXPECT_EQ(r["model"], "fraud");
  EXPECT_EQ(r["model_version"], "7");
  EXPECT_EQ(r["amount"], 12.0);
  EXPECT_FALSE(r.contains("rule"));
  EXPECT_EQ(r["reason"], d.reason);
}

}  // namespace
}  // namespace millrace::decision
