// Thin RAII wrappers over the libxgboost C API: used by `millrace train` to
// train models, and by tests and benchmarks as the reference predictor.
// Not thread-safe; one booster per thread. XGBoost's own threads are limited
// by the "nthread" parameter.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::model {

// A DMatrix over dense float rows (NaN = missing), copied in.
class XgbMatrix {
 public:
  static Result<XgbMatrix> dense(const float* data, size_t rows, size_t cols);
  XgbMatrix(XgbMatrix&& o) noexcept : handle_(o.handle_) { o.handle_ = nullptr; }
  XgbMatrix& operator=(XgbMatrix&&) = delete;
  ~XgbMatrix();

  Status set_labels(const std::vector<float>& labels);
  Status set_feature_names(const std::vector<std::string>& names);
  // "q" (numerical) or "c" (categorical) per feature.
  Status set_feature_types(const std::vector<std::string>& types);
  void* handle() const { return handle_; }

 private:
  explicit XgbMatrix(void* h) : handle_(h) {}
  void* handle_;
};

class XgbBooster {
 public:
  static Result<XgbBooster> create(const std::vector<const XgbMatrix*>& cache);
  static Result<XgbBooster> from_json(const std::string& json);
  XgbBooster(XgbBooster&& o) noexcept : handle_(o.handle_) { o.handle_ = nullptr; }
  XgbBooster& operator=(XgbBooster&&) = delete;
  ~XgbBooster();

  Status set_param(const std::string& name, const std::string& value);
  // Names saved in the model's JSON (learner.feature_names).
  Status set_feature_names(const std::vector<std::string>& names);
  Status update(int iteration, const XgbMatrix& train);
  // The evaluation line XGBoost prints, e.g. "[3]\tvalid-auc:0.91".
  Result<std::string> eval(int iteration, const std::vector<const XgbMatrix*>& sets,
                           const std::vector<std::string>& names);
  Result<std::string> save_json() const;

  // Predictions through a DMatrix: type 0 output, 1 margin, 6 leaf indices.
  Result<std::vector<float>> predict(const XgbMatrix& m, int type) const;
  // In-place prediction over dense rows (no DMatrix); type 0 output, 1 margin.
  // The returned pointer is XGBoost's buffer, valid until the next call.
  Result<const float*> predict_dense(const float* data, size_t rows, size_t cols, int type) const;

  void* handle() const { return handle_; }

 private:
  explicit XgbBooster(void* h) : handle_(h) {}
  void* handle_;
};

}  // namespace millrace::model
