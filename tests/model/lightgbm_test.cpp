// LightGBM text models: the fixtures in tests/data/models/ (see
// lightgbm_fixture_gen_test.cpp for how they and their reference outputs were
// made), threshold conversion, and rejection of broken files.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "millrace/model/binned_forest.h"
#include "millrace/model/gbdt.h"
#include "millrace/model/lightgbm_text.h"
#include "millrace/model/model.h"

namespace millrace::model {
namespace {

const std::string kDir = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/models/";

struct Rows {
  std::vector<std::string> header;
  std::vector<std::vector<double>> values;  // NaN for empty cells
};

Rows read_csv(const std::string& path) {
  std::ifstream in(path);
  Rows rows;
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    if (first) {
      rows.header = cells;
      first = false;
      continue;
    }
    std::vector<double> v;
    for (const auto& c : cells) v.push_back(c.empty() ? NAN : std::stod(c));
    rows.values.push_back(v);
  }
  return rows;
}

// Each output equals the saved reference (and XGBoost's, within 2e-6), row and batch alike.
void check_rows(const std::string& name, const GbdtModel& m) {
  Rows rows = read_csv(kDir + name + ".rows.csv");
  ASSERT_GT(rows.values.size(), 100u);
  const size_t cols = m.num_features();
  const size_t outs = m.num_outputs();
  ASSERT_EQ(rows.header.size(), cols + 2 * outs);
  std::vector<float> x;
  for (const auto& r : rows.values)
    for (size_t c = 0; c < cols; ++c) x.push_back(static_cast<float>(r[c]));
  std::vector<double> batch(rows.values.size() * outs), out(outs);
  m.predict_batch(x.data(), rows.values.size(), cols, batch.data());
  for (size_t r = 0; r < rows.values.size(); ++r) {
    m.predict_row(&x[r * cols], out.data());
    for (size_t k = 0; k < outs; ++k) {
      // Same leaves, same double sum in the same order: equal to the last bit.
      ASSERT_EQ(out[k], rows.values[r][cols + k]) << "row " << r << " output " << k;
      ASSERT_EQ(batch[r * outs + k], out[k]) << "row " << r;
      // XGBoost's float output on the equivalent model.
      ASSERT_NEAR(out[k], rows.values[r][cols + outs + k], 2e-6) << "row " << r;
    }
  }
}

// Checks every layout the model supports; `fast` says whether the padded
// (and, on AVX-512 VBMI builds, binned) layouts must be among them.
void check_fixture(const std::string& name, bool fast) {
  auto loaded = load_lightgbm_text(kDir + name + ".txt");
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  GbdtModel& model = **loaded;
  EXPECT_EQ(model.supports_layout(GbdtModel::Layout::kPadded), fast);
  EXPECT_EQ(model.supports_layout(GbdtModel::Layout::kBinned), fast && BinnedForest::available());
  const GbdtModel::Layout chosen = model.layout();
  size_t checked = 0;
  for (auto layout :
       {GbdtModel::Layout::kBinned, GbdtModel::Layout::kPadded, GbdtModel::Layout::kGeneral}) {
    if (!model.use_layout(layout)) continue;
    SCOPED_TRACE(name + " " + GbdtModel::layout_name(layout));
    check_rows(name, model);
    ++checked;
  }
  EXPECT_EQ(checked, fast ? 2u + BinnedForest::available() : 1u);
  EXPECT_TRUE(model.use_layout(chosen));
}

TEST(LightGbm, FixtureBinaryMissingNaN) {
  check_fixture("lgb_binary_nan", true);
}
TEST(LightGbm, FixtureBinaryMissingZero) {
  check_fixture("lgb_binary_zero", false);
}
TEST(LightGbm, FixtureBinaryMissingNone) {
  check_fixture("lgb_binary_none", true);
}
TEST(LightGbm, FixtureMulticlass) {
  check_fixture("lgb_multiclass", true);
}
TEST(LightGbm, FixtureRegressionDeepTrees) {
  check_fixture("lgb_regression_deep", false);
}

TEST(LightGbm, ThresholdToFloatSplitsEveryFloatAsDoubleCompare) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-10, 10);
  for (int i = 0; i < 20000; ++i) {
    double thr = u(rng);
    if (i % 3 == 0) thr = static_cast<float>(thr);  // exactly a float
    if (i % 5 == 0) thr = static_cast<double>(static_cast<float>(thr)) + 1e-12;
    const float t = lightgbm_threshold_to_float(thr);
    const float f = static_cast<float>(thr);
    for (float x : {f, std::nextafter(f, -INFINITY), std::nextafter(f, INFINITY), t,
                    std::nextafter(t, -INFINITY)}) {
      ASSERT_EQ(static_cast<double>(x) <= thr, x < t) << "thr " << thr << " x " << x;
    }
  }
  EXPECT_EQ(lightgbm_threshold_to_float(1e300), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::numeric_limits<float>::infinity() >= lightgbm_threshold_to_float(1e300));
}

// Broken files: each error names the file, where in it, and what was expected.
struct Broken {
  std::string what, edit_from, edit_to, message_part;
};

TEST(LightGbm, BrokenFilesAreRejectedWithWhereAndWhat) {
  auto text = read_file_to_string(kDir + "lgb_binary_nan.txt");
  ASSERT_TRUE(text.ok());
  const std::vector<Broken> cases = {
      {"not a model", "tree\nversion", "forest\nversion", "expected the first line \"tree\""},
      {"truncated", "end of trees", "", "expected a line \"end of trees\""},
      {"threshold count", "threshold=", "threshold=1 ", "Tree=0.threshold: expected"},
      {"decision type", "decision_type=", "decision_type=12 ", "Tree=0.decision_type[0]"},
      {"bad number", "leaf_value=", "leaf_value=abc ", "Tree=0.leaf_value"},
      {"feature range", "split_feature=", "split_feature=99 ", "feature index in [0, 8)"},
      {"objective", "objective=binary sigmoid:1", "objective=lambdarank",
       "unsupported objective \"lambdarank\""},
      {"missing key", "max_feature_idx=7\n", "", "header.max_feature_idx: missing"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    std::string broken = *text;
    const size_t at = broken.find(c.edit_from);
    ASSERT_NE(at, std::string::npos);
    broken.replace(at, c.edit_from.size(), c.edit_to);
    if (c.what == "threshold count" || c.what == "decision type" || c.what == "bad number" ||
        c.what == "feature range") {
      // Replace the first value rather than prepend one, except for the count case.
      if (c.what != "threshold count") {
        const size_t v = at + c.edit_to.size();
        broken.erase(v, broken.find_first_of(" \n", v) - v + 1);
      }
    }
    auto e = parse_lightgbm_text(broken, "broken.txt");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find("broken.txt:"), std::string::npos) << e.status().message();
    EXPECT_NE(e.status().message().find(c.message_part), std::string::npos) << e.status().message();
  }
}

TEST(LightGbm, ChildCycleIsRejected) {
  const std::string text =
      "tree\nmax_feature_idx=1\nobjective=regression\n\nTree=0\nnum_leaves=3\n"
      "split_feature=0 1\nthreshold=0.5 0.5\ndecision_type=8 8\nleft_child=1 0\n"
      "right_child=-1 -2\nleaf_value=1 2 3\n\nend of trees\n";
  auto e = parse_lightgbm_text(text, "cycle.txt");
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto m = GbdtModel::compile(std::move(e.value()));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("reached twice"), std::string::npos) << m.status().message();
}

TEST(LightGbm, SingleLeafTreesAndCategoricalSplit) {
  // Tree 0: x1 in {1, 3} goes left (leaf 10), else right (leaf 20); NaN right.
  // Tree 1: a single leaf of 0.5.
  const std::string text =
      "tree\nmax_feature_idx=1\nobjective=regression\nfeature_names=a b\n\nTree=0\n"
      "num_leaves=2\nnum_cat=1\nsplit_feature=1\nthreshold=0\ndecision_type=9\n"
      "left_child=-1\nright_child=-2\nleaf_value=10 20\ncat_boundaries=0 1\n"
      "cat_threshold=10\n\nTree=1\nnum_leaves=1\nleaf_value=0.5\n\nend of trees\n";
  auto e = parse_lightgbm_text(text, "cat.txt");
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto m = GbdtModel::compile(std::move(e.value()));
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto score = [&](float b) {
    float row[2] = {0, b};
    return (*m)->score(row);
  };
  EXPECT_EQ(score(1), 10.5);
  EXPECT_EQ(score(3), 10.5);
  EXPECT_EQ(score(3.7f), 10.5);  // truncated to 3
  EXPECT_EQ(score(2), 20.5);
  EXPECT_EQ(score(0), 20.5);
  EXPECT_EQ(score(-1), 20.5);
  EXPECT_EQ(score(40), 20.5);
  EXPECT_EQ(score(NAN), 20.5);
  EXPECT_EQ((*m)->feature_names(), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace millrace::model
