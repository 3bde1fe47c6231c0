#include "millrace/model/score_quality.h"

#include <cmath>

#include <fmt/format.h>

#include "millrace/model/metrics.h"

namespace millrace::model {

void ScoreQuality::add(double score, bool label) {
  scores_.push_back(score);
  labels_.push_back(label ? 1.0f : 0.0f);
  if (scores_.size() > window_) {
    scores_.pop_front();
    labels_.pop_front();
  }
}

double ScoreQuality::auc() const {
  return roc_auc({scores_.begin(), scores_.end()}, {labels_.begin(), labels_.end()});
}

double ScoreQuality::average_precision() const {
  return model::average_precision({scores_.begin(), scores_.end()},
                                  {labels_.begin(), labels_.end()});
}

double ScoreQuality::mean_score() const {
  double s = 0;
  for (double v : scores_) s += v;
  return scores_.empty() ? NAN : s / scores_.size();
}

std::string ScoreQuality::summary() const {
  return fmt::format("n={} auc={:.4f} ap={:.4f} mean={:.4f}", count(), auc(), average_precision(),
                     mean_score());
}

}  // namespace millrace::model
