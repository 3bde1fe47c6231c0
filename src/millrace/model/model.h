// The scoring interface every millrace model implements (tree ensembles,
// logistic regression), and the one entry point that loads a model file of any
// supported format.
//
// A model scores rows of float features laid out in the model's own feature
// order (feature_names()); NaN marks a missing value. Scoring is const and
// touches no shared mutable state, so one Model may be used by any number of
// threads at once. There is one virtual call per row (or per batch), never one
// per tree node.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::model {

class Model {
 public:
  virtual ~Model() = default;

  // Names of the input features, in the order rows must hold them.
  virtual const std::vector<std::string>& feature_names() const = 0;
  size_t num_features() const { return feature_names().size(); }

  // Values written per row: 1, or the number of classes of a multi-class model.
  virtual size_t num_outputs() const = 0;

  // Scores one row of num_features() floats into out[0 .. num_outputs()).
  // Outputs are in the objective's output space (probabilities for logistic and
  // softmax objectives). Neither pointer is retained.
  virtual void predict_row(const float* row, double* out) const = 0;

  // Scores n rows; row i starts at rows + i * row_stride (row_stride >=
  // num_features()). Writes out[i * num_outputs() + k]. Equal, value for value,
  // to n calls of predict_row.
  virtual void predict_batch(const float* rows, size_t n, size_t row_stride, double* out) const = 0;

  // One line for humans: kind, objective, size (e.g. "gbdt xgboost binary:logistic, 300 trees").
  virtual std::string summary() const = 0;

  // The single score of a one-output model (first output of a multi-output one).
  double score(const float* row) const;
};

using ModelPtr = std::shared_ptr<const Model>;

// Loads a model file, recognising the format from its content: XGBoost JSON
// (an object with "learner"), millrace logistic-regression JSON (an object with
// "weights"), or LightGBM text (first line "tree"). Errors name the file, the
// path inside it and what was expected.
Result<ModelPtr> load_model_file(const std::string& path);

// Reads a whole file; errors name the file.
Result<std::string> read_file_to_string(const std::string& path);

}  // namespace millrace::model
