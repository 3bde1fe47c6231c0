// Training of gradient-boosted trees through libxgboost, from a CSV table.
//
// Rows are ordered by the time column (stable; numeric values compare as
// numbers, other values as strings, which orders RFC 3339 times of one zone),
// or kept in file order when there is none; the last valid_fraction of them is
// the validation set. The split is never random, so validation measures the
// model on data from after its training data, as in production.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::model {

struct TrainOptions {
  std::string data_path;
  std::string label;
  std::string time_column;            // empty: "time", "timestamp" or "ts" if present
  std::vector<std::string> features;  // empty: every column but label, time and id
  std::string out_dir;
  std::string objective = "binary:logistic";
  int trees = 100;
  int depth = 6;
  double eta = 0.1;
  double valid_fraction = 0.2;
  int early_stopping = 0;  // rounds without validation AUC gain before stopping; 0: never
  int threads = 0;         // 0: XGBoost's default
};

struct TrainReport {
  std::string model_path, meta_path;
  size_t train_rows = 0, valid_rows = 0;
  int trees_trained = 0, trees_kept = 0;
  double valid_auc = 0, valid_average_precision = 0;
};

// Called after each boosting round with (round, rounds, validation AUC).
using TrainProgress = std::function<void(int, int, double)>;

// Trains and writes out_dir/model.json (XGBoost JSON) and out_dir/model.meta.json:
//   {"model_file", "format", "features": [...], "label", "time_column",
//    "training_data": {"path", "xxh3", "rows", "train_rows", "valid_rows"},
//    "hyperparameters": {"objective", "trees", "depth", "eta", "valid_fraction",
//                        "early_stopping", "trees_kept"},
//    "validation": {"auc", "average_precision", "rows"}, "created_at"}
Result<TrainReport> train_gbdt(const TrainOptions& options, const TrainProgress& progress = {});

}  // namespace millrace::model
