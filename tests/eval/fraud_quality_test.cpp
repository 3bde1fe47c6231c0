#include "millrace/eval/fraud_quality.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "millrace/model/metrics.h"

namespace millrace::eval {
namespace {

constexpr TimeMs kDay = 86'400'000;

// scikit-learn's documented examples: y = [0, 0, 1, 1], scores = [0.1, 0.4,
// 0.35, 0.8]: roc_auc_score 0.75, average_precision_score 0.8333.
TEST(FraudQuality, AucAndApOfTheScikitLearnExample) {
  std::vector<ScoredTransaction> txs = {
      {0, 1, 0.1, false}, {0, 2, 0.4, false}, {0, 3, 0.35, true}, {0, 4, 0.8, true}};
  const Quality q = evaluate(txs, {}, {});
  EXPECT_DOUBLE_EQ(q.auc, 0.75);
  EXPECT_NEAR(q.ap, 5.0 / 6, 1e-12);
  EXPECT_EQ(q.n, 4u);
  EXPECT_EQ(q.n_fraud, 2u);
}

// Ties: positives {0.5, 0.9}, negatives {0.5, 0.2}. AUC: pairs (0.5, 0.5)
// tie = 1/2, the three others won: 3.5 / 4. AP: threshold 0.9 gives recall
// 1/2 at precision 1; threshold 0.5 takes both tied rows: recall 1 at
// precision 2/3: 1/2 * 1 + 1/2 * 2/3.
TEST(FraudQuality, TiesCountAtTheirAverageRank) {
  std::vector<ScoredTransaction> txs = {
      {0, 1, 0.5, true}, {0, 2, 0.5, false}, {0, 3, 0.2, false}, {0, 4, 0.9, true}};
  const Quality q = evaluate(txs, {}, {});
  EXPECT_DOUBLE_EQ(q.auc, 0.875);
  EXPECT_NEAR(q.ap, 0.5 + 0.5 * 2 / 3, 1e-12);
}

TEST(FraudQuality, AucMatchesBruteForcePairsOnRandomTiedScores) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 50; ++round) {
    const size_t n = 2 + rng() % 200;
    std::vector<ScoredTransaction> txs(n);
    for (auto& tx : txs) {
      tx.score = static_cast<double>(rng() % 11) / 10;  // many ties
      tx.fraud = rng() % 4 == 0;
    }
    double wins = 0, pairs = 0;
    for (const auto& p : txs)
      for (const auto& q : txs)
        if (p.fraud && !q.fraud) {
          pairs += 1;
          wins += p.score > q.score ? 1 : p.score == q.score ? 0.5 : 0;
        }
    const Quality q = evaluate(txs, {}, {});
    if (pairs == 0) {
      EXPECT_TRUE(std::isnan(q.auc));
      continue;
    }
    EXPECT_NEAR(q.auc, wins / pairs, 1e-12);
    // AP against its definition, sum over thresholds of (R_n - R_{n-1}) P_n.
    double positives = 0;
    for (const auto& tx : txs) positives += tx.fraud;
    double ap = 0, last_recall = 0;
    for (int t = 10; t >= 0; --t) {
      double tp = 0, taken = 0;
      for (const auto& tx : txs)
        if (tx.score >= t / 10.0 - 1e-12) {
          taken += 1;
          tp += tx.fraud;
        }
      if (taken == 0) continue;
      ap += (tp / positives - last_recall) * (tp / taken);
      last_recall = tp / positives;
    }
    EXPECT_NEAR(q.ap, ap, 1e-12);
  }
}

// Two days, k = 2. Day 0: card 1 (max of 0.9 fraud and 0.1) and card 3
// (0.7, fraud) are fraudulent, card 2 (0.8) is not: top 2 = {1, 2}: 1/2;
// card 1 is found. Day 1: card 1 (found: out), card 3 (0.6, fraud), card 4
// (0.5), card 5 (0.99, fraud, reported before the day: out): top 2 = {3, 4}:
// 1/2. Mean 0.5.
std::vector<ScoredTransaction> two_days() {
  return {{10, 1, 0.9, true},        {20, 1, 0.1, false},       {30, 2, 0.8, false},
          {40, 3, 0.7, true},        {kDay + 1, 1, 0.95, true}, {kDay + 2, 3, 0.6, true},
          {kDay + 3, 4, 0.5, false}, {kDay + 4, 5, 0.99, true}};
}

TEST(FraudQuality, CardPrecisionAtKAsTheHandbookDefinesIt) {
  QualityOptions o;
  o.k = 2;
  const KnownCompromised known = {{5, kDay - 1}};
  std::vector<DayQuality> days;
  EXPECT_DOUBLE_EQ(card_precision_at_k(two_days(), known, o, &days), 0.5);
  ASSERT_EQ(days.size(), 2u);
  EXPECT_DOUBLE_EQ(days[0].card_precision, 0.5);
  EXPECT_DOUBLE_EQ(days[1].card_precision, 0.5);
  EXPECT_EQ(days[0].cards, 3u);
  EXPECT_EQ(days[0].fraud_cards, 2u);
  EXPECT_EQ(days[1].cards, 2u);  // cards 1 (found) and 5 (known) left out

  // Card 5 reported during day 1, not before it: it stays, and tops the day.
  EXPECT_DOUBLE_EQ(card_precision_at_k(two_days(), {{5, kDay + 1}}, o), (0.5 + 1.0) / 2);
  // Without leaving found cards out: day 1's top 2 = {1, 3}.
  o.remove_detected = false;
  EXPECT_DOUBLE_EQ(card_precision_at_k(two_days(), known, o), (0.5 + 1.0) / 2);
  // k above the number of cards still divides by k: day 0 finds cards 1 and
  // 3 (2 / 10), which leaves day 1 only card 4, genuine (0 / 10).
  o.k = 10;
  o.remove_detected = true;
  EXPECT_DOUBLE_EQ(card_precision_at_k(two_days(), known, o), (0.2 + 0.0) / 2);
}

TEST(FraudQuality, PerDayAndDriftPeriods) {
  QualityOptions o;
  o.k = 2;
  o.drift_start = kDay + 5;  // day 1 is the drift period
  const QualityReport r = evaluate_with_drift(two_days(), {{5, kDay - 1}}, o);
  ASSERT_TRUE(r.has_drift);
  ASSERT_EQ(r.overall.days.size(), 2u);
  EXPECT_EQ(r.overall.days[0].n, 4u);
  EXPECT_EQ(r.overall.days[0].n_fraud, 2u);
  // Day 0: frauds 0.9, 0.7 against 0.1, 0.8: 3 of 4 pairs.
  EXPECT_DOUBLE_EQ(r.overall.days[0].auc, 0.75);
  // Day 1: frauds 0.95, 0.6, 0.99 against 0.5: all won.
  EXPECT_DOUBLE_EQ(r.overall.days[1].auc, 1.0);
  EXPECT_EQ(r.before_drift.n, 4u);
  EXPECT_EQ(r.after_drift.n, 4u);
  EXPECT_DOUBLE_EQ(r.before_drift.auc, 0.75);
  EXPECT_DOUBLE_EQ(r.after_drift.auc, 1.0);
  EXPECT_DOUBLE_EQ(r.before_drift.card_precision, 0.5);
  EXPECT_DOUBLE_EQ(r.after_drift.card_precision, 0.5);
  const std::string json = quality_json(r.overall, 2, true);
  EXPECT_NE(json.find(R"("cp@2":0.5)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("days":[{"day":0)"), std::string::npos) << json;
}

TEST(FraudQuality, OneClassGivesNaNNotACrash) {
  const Quality q = evaluate({{0, 1, 0.3, false}, {0, 2, 0.4, false}}, {}, {});
  EXPECT_TRUE(std::isnan(q.auc));
  EXPECT_TRUE(std::isnan(q.ap));
  EXPECT_DOUBLE_EQ(q.card_precision, 0.0);
  EXPECT_NE(quality_json(q, 100, false).find(R"("auc":null)"), std::string::npos);
}

}  // namespace
}  // namespace millrace::eval
