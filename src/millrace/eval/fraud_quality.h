// Quality of fraud scores as the fraud-detection handbook measures it (Le
// Borgne et al., chapter 4): AUC ROC, average precision and card precision@k,
// overall and per day, and for a drift period apart.
//
// AUC ROC: tied scores count one half, which is the Mann-Whitney statistic
// with tied scores at their average rank. Average precision: as scikit-learn
// defines it, sum over the distinct thresholds of (R_n - R_{n-1}) P_n.
// Both are millrace::model::roc_auc / average_precision (model/metrics.h).
//
// Card precision@k of one day: each card's score that day is the maximum of
// its transactions' scores, and the card is fraudulent that day when one of
// its transactions is; the k cards of highest score are what investigators
// check; the day's value is (fraudulent cards among them) / k. Cards already
// known to be compromised are left out: those with a fraud reported before
// the day starts (`known_since`), and, as the handbook does, the fraudulent
// cards found in the top k of an earlier day of the evaluation (once checked,
// a card is blocked). The overall value is the mean over the days.
//
// Days are [origin + n * 24 h, origin + (n + 1) * 24 h), in event time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "millrace/core/time.h"

namespace millrace::eval {

struct ScoredTransaction {
  TimeMs ts = 0;
  uint64_t card = 0;
  double score = 0;
  bool fraud = false;
};

struct QualityOptions {
  size_t k = 100;
  TimeMs day_origin = 0;          // days start at origin + n * 24 h (UTC midnights when 0)
  bool remove_detected = true;    // drop cards found in an earlier day's top k
  TimeMs drift_start = kMaxTime;  // with a value: the quality from it on, apart
};

struct DayQuality {
  int64_t day = 0;  // (start - origin) / 24 h
  TimeMs start = 0;
  size_t n = 0, n_fraud = 0;          // transactions of the day (all cards)
  size_t cards = 0, fraud_cards = 0;  // cards ranked that day (known ones left out)
  double auc = 0, ap = 0;             // NaN when the day lacks a class
  double card_precision = 0;
};

struct Quality {
  size_t n = 0, n_fraud = 0;
  double auc = 0, ap = 0;     // over every transaction
  double card_precision = 0;  // mean over days
  std::vector<DayQuality> days;
};

struct QualityReport {
  Quality overall;
  bool has_drift = false;
  Quality before_drift, after_drift;  // days before / from drift_start's day
};

// Card -> time from which it is known to be compromised (its earliest fraud
// report). Cards not in the map are never known.
using KnownCompromised = absl::flat_hash_map<uint64_t, TimeMs>;

// Card precision@k over the days of `txs` (in any order); `per_day`, when
// given, receives each day's value in day order.
double card_precision_at_k(const std::vector<ScoredTransaction>& txs, const KnownCompromised& known,
                           const QualityOptions& options,
                           std::vector<DayQuality>* per_day = nullptr);

Quality evaluate(const std::vector<ScoredTransaction>& txs, const KnownCompromised& known,
                 const QualityOptions& options);

QualityReport evaluate_with_drift(const std::vector<ScoredTransaction>& txs,
                                  const KnownCompromised& known, const QualityOptions& options);

// {"n":..,"n_fraud":..,"auc":..,"ap":..,"cp@k":..,"days":[...]} (NaN as null).
std::string quality_json(const Quality& q, size_t k, bool with_days);

}  // namespace millrace::eval
