#include "millrace/model/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace millrace::model {
namespace {

std::vector<size_t> order_by_score_desc(const std::vector<double>& scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return idx;
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<float>& labels) {
  const auto idx = order_by_score_desc(scores);
  double pos = 0, neg = 0, area = 0;
  size_t i = 0;
  while (i < idx.size()) {
    size_t j = i;
    double p = 0, n = 0;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      (labels[idx[j]] > 0.5f ? p : n) += 1;
      ++j;
    }
    // Negatives in this tie group rank below every positive seen before it,
    // and tie with the group's positives.
    area += n * (pos + p / 2);
    pos += p;
    neg += n;
    i = j;
  }
  if (pos == 0 || neg == 0) return NAN;
  return area / (pos * neg);
}

double average_precision(const std::vector<double>& scores, const std::vector<float>& labels) {
  const auto idx = order_by_score_desc(scores);
  double total_pos = 0;
  for (float l : labels) total_pos += l > 0.5f;
  if (total_pos == 0) return NAN;
  double tp = 0, seen = 0, ap = 0;
  size_t i = 0;
  while (i < idx.size()) {
    size_t j = i;
    double p = 0;
    while (j < idx.size() && scores[idx[j]] == scores[idx[i]]) {
      p += labels[idx[j]] > 0.5f;
      ++j;
    }
    tp += p;
    seen += static_cast<double>(j - i);
    ap += p * (tp / seen);  // recall step p/total_pos times precision
    i = j;
  }
  return ap / total_pos;
}

}  // namespace millrace::model
