// ScoreQuality: the quality of a model's scores once labels are known, over a
// window of the most recent labelled scores. Used to report a shadow
// (challenger) model's quality beside the champion's: feed both the same
// labelled events and compare summary(). Not thread-safe: feed it from one
// thread (e.g. the operator joining delayed labels to scores).
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

namespace millrace::model {

class ScoreQuality {
 public:
  explicit ScoreQuality(size_t window = 100000) : window_(window) {}

  void add(double score, bool label);
  size_t count() const { return scores_.size(); }
  double auc() const;                // NaN until both classes are seen
  double average_precision() const;  // NaN until a positive is seen
  double mean_score() const;
  // "n=1200 auc=0.9312 ap=0.5120 mean=0.0410"
  std::string summary() const;

 private:
  size_t window_;
  std::deque<double> scores_;
  std::deque<float> labels_;
};

}  // namespace millrace::model
