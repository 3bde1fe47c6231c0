// LogisticModel: logistic regression over named features, scored in double.
//
// File format (JSON):
//   {"kind": "logistic_regression",            (optional)
//    "features": ["amount", "hour", ...],
//    "weights": [0.8, -0.1, ...],               (same length as features)
//    "bias": -2.5}
// score = 1 / (1 + exp(-(bias + sum_i weights[i] * x[i]))). A missing value
// (NaN) contributes nothing to the sum. Errors name the file and the field.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/model/model.h"

namespace millrace::model {

class LogisticModel final : public Model {
 public:
  LogisticModel(std::vector<std::string> features, std::vector<double> weights, double bias);

  static Result<std::shared_ptr<LogisticModel>> parse(std::string_view json,
                                                      const std::string& origin);
  static Result<std::shared_ptr<LogisticModel>> load(const std::string& path);

  const std::vector<std::string>& feature_names() const override { return features_; }
  size_t num_outputs() const override { return 1; }
  void predict_row(const float* row, double* out) const override;
  void predict_batch(const float* rows, size_t n, size_t row_stride, double* out) const override;
  std::string summary() const override;

  const std::vector<double>& weights() const { return weights_; }
  double bias() const { return bias_; }

 private:
  std::vector<std::string> features_;
  std::vector<double> weights_;
  double bias_;
};

}  // namespace millrace::model
