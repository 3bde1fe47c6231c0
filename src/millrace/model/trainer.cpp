#include "millrace/model/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <fmt/format.h>
#include <xgboost/c_api.h>
#include <nlohmann/json.hpp>

#include "millrace/core/hash.h"
#include "millrace/model/csv_table.h"
#include "millrace/model/metrics.h"
#include "millrace/model/model.h"
#include "millrace/model/xgboost_booster.h"

namespace millrace::model {
namespace {

std::string utc_now_rfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status write_file(const std::string& path, const std::string& body) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Error(tmp + ": cannot open for writing");
    out << body;
    if (!out.flush()) return Status::Error(tmp + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::Error(path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<TrainReport> train_gbdt(const TrainOptions& o, const TrainProgress& progress) {
  if (o.trees < 1) return Status::Error("--trees: expected at least 1");
  if (o.depth < 1 || o.depth > 32) return Status::Error("--depth: expected 1 to 32");
  if (!(o.eta > 0 && o.eta <= 1)) return Status::Error("--eta: expected a value in (0, 1]");
  if (!(o.valid_fraction > 0 && o.valid_fraction < 1))
    return Status::Error("--valid-fraction: expected a value in (0, 1)");
  auto table = read_csv(o.data_path);
  if (!table.ok()) return table.status();
  const CsvTable& t = *table;
  const int label_col = t.column(o.label);
  if (label_col < 0)
    return Status::Error(fmt::format("{}: no column \"{}\" (--label); columns are: {}", o.data_path,
                                     o.label, fmt::join(t.header, ", ")));
  int time_col = -1;
  if (!o.time_column.empty()) {
    time_col = t.column(o.time_column);
    if (time_col < 0)
      return Status::Error(
          fmt::format("{}: no column \"{}\" (--time)", o.data_path, o.time_column));
  } else {
    for (const char* name : {"time", "timestamp", "ts"})
      if ((time_col = t.column(name)) >= 0) break;
  }
  std::vector<std::string> features = o.features;
  if (features.empty()) {
    for (size_t c = 0; c < t.header.size(); ++c)
      if (static_cast<int>(c) != label_col && static_cast<int>(c) != time_col &&
          t.header[c] != "id")
        features.push_back(t.header[c]);
  }
  if (features.empty()) return Status::Error(o.data_path + ": no feature columns");
  const size_t n = t.rows.size(), f = features.size();
  if (n < 10)
    return Status::Error(fmt::format("{}: {} rows; expected at least 10", o.data_path, n));

  // Time order (stable), then the last valid_fraction rows validate.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  if (time_col >= 0) {
    // Epoch milliseconds need a double (a float is off by minutes).
    std::vector<double> times(n);
    bool numeric = true;
    for (size_t r = 0; r < n && numeric; ++r) {
      const std::string& cell = t.rows[r][time_col];
      char* end = nullptr;
      times[r] = std::strtod(cell.c_str(), &end);
      numeric = !cell.empty() && end == cell.c_str() + cell.size();
    }
    if (numeric) {
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return times[a] < times[b]; });
    } else {
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return t.rows[a][time_col] < t.rows[b][time_col];
      });
    }
  }
  const auto valid_rows = static_cast<size_t>(std::floor(n * o.valid_fraction));
  const size_t train_rows = n - valid_rows;
  if (valid_rows < 1 || train_rows < 1)
    return Status::Error("--valid-fraction leaves no training or no validation rows");

  std::vector<std::vector<float>> cols;
  for (const auto& name : features) {
    const int c = t.column(name);
    if (c < 0) return Status::Error(fmt::format("{}: no feature column \"{}\"", o.data_path, name));
    auto v = t.numeric_column(c);
    if (!v.ok()) return v.status();
    cols.push_back(std::move(v.value()));
  }
  auto labels_all = t.numeric_column(label_col);
  if (!labels_all.ok()) return labels_all.status();
  std::vector<float> xtr(train_rows * f), xva(valid_rows * f), ytr(train_rows), yva(valid_rows);
  for (size_t i = 0; i < n; ++i) {
    const size_t r = order[i];
    const float y = (*labels_all)[r];
    if (std::isnan(y))
      return Status::Error(
          fmt::format("{}:{}: column \"{}\": the label is empty", o.data_path, r + 2, o.label));
    float* dst = i < train_rows ? &xtr[i * f] : &xva[(i - train_rows) * f];
    for (size_t c = 0; c < f; ++c) dst[c] = cols[c][r];
    (i < train_rows ? ytr[i] : yva[i - train_rows]) = y;
  }

  auto dtrain = XgbMatrix::dense(xtr.data(), train_rows, f);
  auto dvalid = XgbMatrix::dense(xva.data(), valid_rows, f);
  if (!dtrain.ok()) return dtrain.status();
  if (!dvalid.ok()) return dvalid.status();
  for (auto* m : {&dtrain.value(), &dvalid.value()}) {
    Status s = m->set_feature_names(features);
    if (!s.ok()) return s;
  }
  if (Status s = dtrain->set_labels(ytr); !s.ok()) return s;
  if (Status s = dvalid->set_labels(yva); !s.ok()) return s;
  auto booster = XgbBooster::create({&dtrain.value(), &dvalid.value()});
  if (!booster.ok()) return booster.status();
  const bool binary = o.objective == "binary:logistic" || o.objective == "reg:logistic";
  std::vector<std::pair<std::string, std::string>> params = {
      {"objective", o.objective},
      {"max_depth", std::to_string(o.depth)},
      {"eta", fmt::format("{}", o.eta)},
      {"tree_method", "hist"},
      {"eval_metric", binary ? "auc" : "rmse"},
      {"seed", "0"}};
  if (o.threads > 0) params.emplace_back("nthread", std::to_string(o.threads));
  for (const auto& [k, v] : params)
    if (Status s = booster->set_param(k, v); !s.ok()) return s;

  double best = binary ? -1 : 1e300;
  int best_round = 0, rounds = 0;
  for (int i = 0; i < o.trees; ++i) {
    if (Status s = booster->update(i, *dtrain); !s.ok()) return s;
    rounds = i + 1;
    auto line = booster->eval(i, {&dvalid.value()}, {"valid"});
    if (!line.ok()) return line.status();
    const size_t colon = line->rfind(':');
    const double metric = colon == std::string::npos ? NAN : std::atof(line->c_str() + colon + 1);
    const bool better = binary ? metric > best : metric < best;
    if (better) {
      best = metric;
      best_round = i;
    }
    if (progress) progress(i + 1, o.trees, metric);
    if (o.early_stopping > 0 && i - best_round >= o.early_stopping) break;
  }
  if (Status s = booster->set_feature_names(features); !s.ok()) return s;
  int kept = rounds;
  std::string json;
  if (o.early_stopping > 0 && best_round + 1 < rounds) {
    kept = best_round + 1;
    BoosterHandle sliced = nullptr;
    if (XGBoosterSlice(booster->handle(), 0, kept, 1, &sliced) != 0)
      return Status::Error(std::string("xgboost slice: ") + XGBGetLastError());
    bst_ulong len = 0;
    const char* buf = nullptr;
    const int rc = XGBoosterSaveModelToBuffer(sliced, R"({"format": "json"})", &len, &buf);
    if (rc == 0) json.assign(buf, len);
    XGBoosterFree(sliced);
    if (rc != 0) return Status::Error(std::string("xgboost save: ") + XGBGetLastError());
  } else {
    auto j = booster->save_json();
    if (!j.ok()) return j.status();
    json = std::move(j.value());
  }

  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return Status::Error(o.out_dir + ": " + ec.message());
  TrainReport report;
  report.model_path = (std::filesystem::path(o.out_dir) / "model.json").string();
  report.meta_path = (std::filesystem::path(o.out_dir) / "model.meta.json").string();
  if (Status s = write_file(report.model_path, json); !s.ok()) return s;

  // Validation quality of the model as millrace will serve it.
  auto model = load_model_file(report.model_path);
  if (!model.ok()) return model.status();
  std::vector<double> scores(valid_rows * (*model)->num_outputs());
  (*model)->predict_batch(xva.data(), valid_rows, f, scores.data());
  report.train_rows = train_rows;
  report.valid_rows = valid_rows;
  report.trees_trained = rounds;
  report.trees_kept = kept;
  auto data = read_file_to_string(o.data_path);
  if (!data.ok()) return data.status();
  nlohmann::json meta;
  meta["model_file"] = "model.json";
  meta["format"] = "xgboost-json";
  meta["features"] = features;
  meta["label"] = o.label;
  meta["time_column"] = time_col >= 0 ? t.header[time_col] : "";
  meta["training_data"] = {{"path", o.data_path},
                           {"xxh3", fmt::format("{:016x}", hash_bytes(data->data(), data->size()))},
                           {"rows", n},
                           {"train_rows", train_rows},
                           {"valid_rows", valid_rows}};
  meta["hyperparameters"] = {{"objective", o.objective},
                             {"trees", o.trees},
                             {"depth", o.depth},
                             {"eta", o.eta},
                             {"valid_fraction", o.valid_fraction},
                             {"early_stopping", o.early_stopping},
                             {"trees_kept", kept}};
  if (binary && (*model)->num_outputs() == 1) {
    report.valid_auc = roc_auc(scores, yva);
    report.valid_average_precision = average_precision(scores, yva);
    auto num = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
    meta["validation"] = {{"auc", num(report.valid_auc)},
                          {"average_precision", num(report.valid_average_precision)},
                          {"rows", valid_rows}};
  } else {
    double se = 0;
    for (size_t i = 0; i < valid_rows && (*model)->num_outputs() == 1; ++i)
      se += (scores[i] - yva[i]) * (scores[i] - yva[i]);
    meta["validation"] = {{"rmse", std::sqrt(se / valid_rows)}, {"rows", valid_rows}};
  }
  meta["created_at"] = utc_now_rfc3339();
  if (Status s = write_file(report.meta_path, meta.dump(2) + "\n"); !s.ok()) return s;
  return report;
}

}  // namespace millrace::model
