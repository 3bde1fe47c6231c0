#include "millrace/eval/fraud_quality.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>

#include <absl/container/flat_hash_set.h>
#include <fmt/format.h>

#include "millrace/model/metrics.h"

namespace millrace::eval {
namespace {

constexpr TimeMs kDayMs = 86'400'000;

int64_t day_of(TimeMs ts, TimeMs origin) {
  const TimeMs d = ts - origin;
  return d >= 0 ? d / kDayMs : -((-d + kDayMs - 1) / kDayMs);
}

// Transactions grouped by day, days in increasing order.
std::map<int64_t, std::vector<const ScoredTransaction*>> by_day(
    const std::vector<ScoredTransaction>& txs, TimeMs origin) {
  std::map<int64_t, std::vector<const ScoredTransaction*>> days;
  for (const auto& tx : txs) days[day_of(tx.ts, origin)].push_back(&tx);
  return days;
}

void auc_ap(const std::vector<const ScoredTransaction*>& txs, double* auc, double* ap) {
  std::vector<double> scores;
  std::vector<float> labels;
  scores.reserve(txs.size());
  labels.reserve(txs.size());
  for (const auto* tx : txs) {
    scores.push_back(tx->score);
    labels.push_back(tx->fraud ? 1.0f : 0.0f);
  }
  *auc = model::roc_auc(scores, labels);
  *ap = model::average_precision(scores, labels);
}

std::string num(double v) {
  return std::isnan(v) ? "null" : fmt::format("{:.6g}", v);
}

}  // namespace

double card_precision_at_k(const std::vector<ScoredTransaction>& txs, const KnownCompromised& known,
                           const QualityOptions& o, std::vector<DayQuality>* per_day) {
  struct Card {
    uint64_t card;
    double score;
    bool fraud;
  };
  absl::flat_hash_set<uint64_t> detected;
  double sum = 0;
  size_t days = 0;
  for (const auto& [day, list] : by_day(txs, o.day_origin)) {
    const TimeMs start = o.day_origin + day * kDayMs;
    absl::flat_hash_map<uint64_t, size_t> index;
    std::vector<Card> cards;
    for (const auto* tx : list) {
      if (detected.contains(tx->card)) continue;
      const auto k = known.find(tx->card);
      if (k != known.end() && k->second < start) continue;
      auto [it, inserted] = index.try_emplace(tx->card, cards.size());
      if (inserted) {
        cards.push_back({tx->card, tx->score, tx->fraud});
      } else {
        Card& c = cards[it->second];
        c.score = std::max(c.score, tx->score);
        c.fraud = c.fraud || tx->fraud;
      }
    }
    const size_t top = std::min(o.k, cards.size());
    std::partial_sort(cards.begin(), cards.begin() + top, cards.end(),
                      [](const Card& a, const Card& b) {
                        return a.score != b.score ? a.score > b.score : a.card < b.card;
                      });
    size_t hits = 0;
    for (size_t i = 0; i < top; ++i) {
      if (!cards[i].fraud) continue;
      ++hits;
      if (o.remove_detected) detected.insert(cards[i].card);
    }
    const double precision = o.k > 0 ? static_cast<double>(hits) / static_cast<double>(o.k) : NAN;
    sum += precision;
    ++days;
    if (per_day != nullptr) {
      DayQuality dq;
      dq.day = day;
      dq.start = start;
      dq.cards = cards.size();
      for (const auto& c : cards) dq.fraud_cards += c.fraud;
      dq.card_precision = precision;
      per_day->push_back(dq);
    }
  }
  return days > 0 ? sum / static_cast<double>(days) : NAN;
}

Quality evaluate(const std::vector<ScoredTransaction>& txs, const KnownCompromised& known,
                 const QualityOptions& o) {
  Quality q;
  q.card_precision = card_precision_at_k(txs, known, o, &q.days);
  std::vector<const ScoredTransaction*> all;
  all.reserve(txs.size());
  for (const auto& tx : txs) all.push_back(&tx);
  auc_ap(all, &q.auc, &q.ap);
  q.n = txs.size();
  for (const auto& tx : txs) q.n_fraud += tx.fraud;
  size_t i = 0;
  for (const auto& [day, list] : by_day(txs, o.day_origin)) {
    DayQuality& dq = q.days[i++];
    dq.n = list.size();
    for (const auto* tx : list) dq.n_fraud += tx->fraud;
    auc_ap(list, &dq.auc, &dq.ap);
  }
  return q;
}

QualityReport evaluate_with_drift(const std::vector<ScoredTransaction>& txs,
                                  const KnownCompromised& known, const QualityOptions& o) {
  QualityReport r;
  r.overall = evaluate(txs, known, o);
  if (o.drift_start >= kMaxTime) return r;
  r.has_drift = true;
  const int64_t drift_day = day_of(o.drift_start, o.day_origin);
  // The days keep their values from the whole evaluation (cards found before
  // the drift stay found); AUC and AP are recomputed over each period.
  for (int part = 0; part < 2; ++part) {
    Quality& q = part == 0 ? r.before_drift : r.after_drift;
    std::vector<const ScoredTransaction*> list;
    for (const auto& tx : txs)
      if ((day_of(tx.ts, o.day_origin) >= drift_day) == (part == 1)) list.push_back(&tx);
    auc_ap(list, &q.auc, &q.ap);
    q.n = list.size();
    for (const auto* tx : list) q.n_fraud += tx->fraud;
    double sum = 0;
    for (const auto& d : r.overall.days)
      if ((d.day >= drift_day) == (part == 1)) {
        q.days.push_back(d);
        sum += d.card_precision;
      }
    q.card_precision = q.days.empty() ? NAN : sum / static_cast<double>(q.days.size());
  }
  return r;
}

std::string quality_json(const Quality& q, size_t k, bool with_days) {
  std::string out = fmt::format(R"({{"n":{},"n_fraud":{},"auc":{},"ap":{},"cp@{}":{})", q.n,
                                q.n_fraud, num(q.auc), num(q.ap), k, num(q.card_precision));
  if (with_days) {
    out += R"(,"days":[)";
    for (size_t i = 0; i < q.days.size(); ++i) {
      const auto& d = q.days[i];
      fmt::format_to(std::back_inserter(out),
                     R"({}{{"day":{},"start":{},"n":{},"n_fraud":{},"cards":{},"fraud_cards":{},)"
                     R"("auc":{},"ap":{},"cp@{}":{}}})",
                     i ? "," : "", d.day, d.start, d.n, d.n_fraud, d.cards, d.fraud_cards,
                     num(d.auc), num(d.ap), k, num(d.card_precision));
    }
    out += "]";
  }
  out += "}";
  return out;
}

}  // namespace millrace::eval
