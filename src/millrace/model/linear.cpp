#include "millrace/model/linear.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace millrace::model {

LogisticModel::LogisticModel(std::vector<std::string> features, std::vector<double> weights,
                             double bias)
    : features_(std::move(features)), weights_(std::move(weights)), bias_(bias) {}

Result<std::shared_ptr<LogisticModel>> LogisticModel::parse(std::string_view json,
                                                            const std::string& origin) {
  auto err = [&](const std::string& path, const std::string& what) {
    return Status::Error(fmt::format("{}: {}: {}", origin, path, what));
  };
  auto doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return err("(document)", "expected valid JSON");
  if (!doc.is_object()) return err("(document)", "expected an object");
  if (doc.contains("kind") && doc["kind"] != "logistic_regression")
    return err("kind", "expected \"logistic_regression\"");
  if (!doc.contains("features") || !doc["features"].is_array())
    return err("features", "expected an array of feature names");
  if (!doc.contains("weights") || !doc["weights"].is_array())
    return err("weights", "expected an array of numbers");
  if (!doc.contains("bias") || !doc["bias"].is_number()) return err("bias", "expected a number");
  const auto& f = doc["features"];
  const auto& w = doc["weights"];
  if (w.size() != f.size())
    return err("weights",
               fmt::format("expected {} numbers (one per feature), got {}", f.size(), w.size()));
  std::vector<std::string> names;
  std::vector<double> weights;
  for (size_t i = 0; i < f.size(); ++i) {
    if (!f[i].is_string()) return err(fmt::format("features[{}]", i), "expected a string");
    if (!w[i].is_number()) return err(fmt::format("weights[{}]", i), "expected a number");
    names.push_back(f[i].get<std::string>());
    weights.push_back(w[i].get<double>());
  }
  return std::make_shared<LogisticModel>(std::move(names), std::move(weights),
                                         doc["bias"].get<double>());
}

Result<std::shared_ptr<LogisticModel>> LogisticModel::load(const std::string& path) {
  auto text = read_file_to_string(path);
  if (!text.ok()) return text.status();
  return parse(*text, path);
}

void LogisticModel::predict_row(const float* row, double* out) const {
  double z = bias_;
  for (size_t i = 0; i < weights_.size(); ++i)
    if (!std::isnan(row[i])) z += weights_[i] * row[i];
  *out = 1.0 / (1.0 + std::exp(-z));
}

void LogisticModel::predict_batch(const float* rows, size_t n, size_t row_stride,
                                  double* out) const {
  for (size_t r = 0; r < n; ++r) predict_row(rows + r * row_stride, out + r);
}

std::string LogisticModel::summary() const {
  return fmt::format("logistic regression: {} features", features_.size());
}

}  // namespace millrace::model
