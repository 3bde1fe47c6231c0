// Test helpers: random data and XGBoost models trained through the C API, the
// reference every millrace tree scorer is compared against.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "millrace/model/tree_ensemble.h"
#include "millrace/model/xgboost_booster.h"

namespace millrace::model::testing {

struct Dataset {
  size_t rows = 0, cols = 0;
  std::vector<float> x;  // row-major, NaN = missing
  std::vector<float> y;
};

// Features uniform in [-2, 2] (some on a coarse grid, so many rows share
// values), `missing` of them NaN; categorical columns hold integers 0..9.
// The label depends on a few features: 0/1 for classification, a class index
// for `classes` > 2, or a noisy real value for regression.
inline Dataset make_dataset(size_t rows, size_t cols, uint32_t seed, double missing, int classes,
                            const std::vector<bool>& categorical = {}) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::uniform_real_distribution<double> p(0.0, 1.0);
  Dataset d;
  d.rows = rows;
  d.cols = cols;
  d.x.resize(rows * cols);
  d.y.resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    float* row = &d.x[r * cols];
    for (size_t c = 0; c < cols; ++c) {
      if (c < categorical.size() && categorical[c]) {
        row[c] = static_cast<float>(rng() % 10);
      } else {
        row[c] = c % 3 == 2 ? std::round(u(rng) * 4.0f) / 4.0f : u(rng);
      }
      if (p(rng) < missing) row[c] = std::nanf("");
    }
    auto v = [&](size_t c) { return std::isnan(row[c % cols]) ? 0.5f : row[c % cols]; };
    double s = v(0) + 0.7 * v(1) * v(2) - 0.5 * v(3) + (std::isnan(row[4 % cols]) ? 1.0 : 0.0);
    if (!categorical.empty() && categorical[0]) s += (static_cast<int>(v(0)) % 3 == 1) ? 2.0 : -1.0;
    s += 0.3 * (p(rng) - 0.5);
    if (classes == 0) {
      d.y[r] = static_cast<float>(s);
    } else if (classes == 2) {
      d.y[r] = s > 0.3 ? 1.0f : 0.0f;
    } else {
      d.y[r] = static_cast<float>(static_cast<int>(std::fabs(s) * 1.7) % classes);
    }
  }
  return d;
}

struct TrainSpec {
  std::string objective = "binary:logistic";
  int rounds = 10;
  int depth = 6;
  int num_class = 0;
  std::vector<std::pair<std::string, std::string>> extra;
};

inline XgbBooster train_booster(const Dataset& d, const TrainSpec& spec,
                                const std::vector<bool>& categorical = {}) {
  auto m = XgbMatrix::dense(d.x.data(), d.rows, d.cols);
  EXPECT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->set_labels(d.y).ok());
  if (!categorical.empty()) {
    std::vector<std::string> types;
    for (bool c : categorical) types.push_back(c ? "c" : "q");
    EXPECT_TRUE(m->set_feature_types(types).ok());
  }
  auto b = XgbBooster::create({&m.value()});
  EXPECT_TRUE(b.ok()) << b.status().message();
  auto set = [&](const std::string& k, const std::string& v) {
    Status s = b->set_param(k, v);
    EXPECT_TRUE(s.ok()) << s.message();
  };
  set("objective", spec.objective);
  set("max_depth", std::to_string(spec.depth));
  set("eta", "0.3");
  set("nthread", "1");
  set("tree_method", "hist");
  set("min_child_weight", "0");
  set("lambda", "0.1");
  set("seed", "7");
  if (spec.num_class > 0) set("num_class", std::to_string(spec.num_class));
  for (const auto& [k, v] : spec.extra) set(k, v);
  for (int i = 0; i < spec.rounds; ++i) {
    Status s = b->update(i, *m);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return std::move(b.value());
}

// Rows that probe the splits: random rows, NaNs, and values exactly on a
// threshold of the model or one float below it.
inline std::vector<float> probe_rows(const TreeEnsemble& e, size_t cols, size_t n, uint32_t seed,
                                     const std::vector<bool>& categorical = {}) {
  std::vector<std::pair<uint32_t, float>> splits;
  for (const auto& t : e.trees)
    for (const auto& node : t.nodes)
      if (node.kind == TreeNode::Kind::kNumerical) splits.push_back({node.feature, node.threshold});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.5f, 2.5f);
  std::uniform_real_distribution<double> p(0.0, 1.0);
  std::vector<float> x(n * cols);
  for (size_t r = 0; r < n; ++r) {
    float* row = &x[r * cols];
    for (size_t c = 0; c < cols; ++c) {
      const bool cat = c < categorical.size() && categorical[c];
      row[c] = cat ? static_cast<float>(static_cast<int>(rng() % 13) - 1) : u(rng);
      if (p(rng) < 0.15) row[c] = std::nanf("");
    }
    if (!splits.empty() && r % 2 == 1) {
      for (int k = 0; k < 8; ++k) {
        auto [f, t] = splits[rng() % splits.size()];
        row[f] = (rng() % 2) ? t : std::nextafter(t, -INFINITY);
      }
    }
  }
  return x;
}

}  // namespace millrace::model::testing
