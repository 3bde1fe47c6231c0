// Equality of the compiled scorer with libxgboost on models trained here.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "millrace/model/binned_forest.h"
#include "millrace/model/gbdt.h"
#include "millrace/model/xgboost_json.h"
#include "tests/support/temp_dir.h"
#include "xgb_test_util.h"

namespace millrace::model {
namespace {

using testing::Dataset;
using testing::TrainSpec;

struct Case {
  std::string name;
  TrainSpec spec;
  size_t rows = 600, cols = 12, probes = 400;
  int classes = 2;
  std::vector<bool> categorical;
};

// The layout compile() should pick for a model of plain numerical splits of
// depth <= 8 over at most 64 features.
GbdtModel::Layout fastest_layout() {
  return BinnedForest::available() ? GbdtModel::Layout::kBinned : GbdtModel::Layout::kPadded;
}

// Compares millrace (single row and batch, in every layout the model supports)
// with XGBoost's output and margin on `x` (c.probes rows of c.cols). Margins
// are summed in float in tree order, as XGBoost does, so they must match bit for
// bit; outputs within 1e-6. Returns the layouts checked.
std::vector<GbdtModel::Layout> check_rows(const Case& c, const XgbBooster& booster, GbdtModel& m,
                                          const std::vector<float>& x) {
  auto dm = XgbMatrix::dense(x.data(), c.probes, c.cols);
  EXPECT_TRUE(dm.ok());
  if (!c.categorical.empty()) {
    std::vector<std::string> types;
    for (bool cat : c.categorical) types.push_back(cat ? "c" : "q");
    EXPECT_TRUE(dm->set_feature_types(types).ok());
  }
  auto want = booster.predict(*dm, 0);
  auto want_margin = booster.predict(*dm, 1);
  EXPECT_TRUE(want.ok() && want_margin.ok());
  if (!want.ok() || !want_margin.ok()) return {};
  const size_t outs = m.num_outputs();
  const size_t groups = want_margin->size() / c.probes;
  EXPECT_EQ(want->size(), c.probes * outs);

  std::vector<GbdtModel::Layout> checked;
  const GbdtModel::Layout chosen = m.layout();
  for (auto layout :
       {GbdtModel::Layout::kBinned, GbdtModel::Layout::kPadded, GbdtModel::Layout::kGeneral}) {
    if (!m.use_layout(layout)) continue;
    SCOPED_TRACE(GbdtModel::layout_name(layout));
    checked.push_back(layout);
    std::vector<double> batch(c.probes * outs);
    m.predict_batch(x.data(), c.probes, c.cols, batch.data());
    std::vector<double> row_out(outs), margin(groups);
    size_t margin_mismatches = 0;
    for (size_t r = 0; r < c.probes; ++r) {
      const float* row = &x[r * c.cols];
      m.predict_row(row, row_out.data());
      m.predict_margin_row(row, margin.data());
      for (size_t g = 0; g < groups; ++g)
        if (static_cast<float>(margin[g]) != (*want_margin)[r * groups + g]) ++margin_mismatches;
      for (size_t k = 0; k < outs; ++k) {
        const double w = (*want)[r * outs + k];
        EXPECT_NEAR(row_out[k], w, 1e-6) << "row " << r << " output " << k;
        EXPECT_EQ(row_out[k], batch[r * outs + k]) << "row " << r;
        if (std::fabs(row_out[k] - w) > 1e-6 || row_out[k] != batch[r * outs + k]) return checked;
      }
    }
    EXPECT_EQ(margin_mismatches, 0u) << "margins differing from XGBoost's (bit for bit)";
  }
  EXPECT_TRUE(m.use_layout(chosen));
  return checked;
}

// Trains the case's model through libxgboost and checks millrace against it.
void check_equal(const Case& c) {
  SCOPED_TRACE(c.name);
  Dataset d = testing::make_dataset(c.rows, c.cols, 11, 0.1, c.classes, c.categorical);
  XgbBooster booster = testing::train_booster(d, c.spec, c.categorical);
  auto json = booster.save_json();
  ASSERT_TRUE(json.ok()) << json.status().message();
  auto ensemble = parse_xgboost_json(*json, c.name);
  ASSERT_TRUE(ensemble.ok()) << ensemble.status().message();
  std::vector<float> x = testing::probe_rows(*ensemble, c.cols, c.probes, 5, c.categorical);
  auto compiled = GbdtModel::compile(*ensemble);
  ASSERT_TRUE(compiled.ok()) << compiled.status().message();
  GbdtModel& m = **compiled;
  EXPECT_EQ(m.num_trees(), static_cast<size_t>(c.spec.rounds * std::max(1, c.spec.num_class)));
  const bool fast = c.categorical.empty() && m.max_depth() <= GbdtModel::kMaxPaddedDepth;
  EXPECT_EQ(m.layout(), fast ? fastest_layout() : GbdtModel::Layout::kGeneral);
  const auto checked = check_rows(c, booster, m, x);
  EXPECT_EQ(checked.size(), fast ? 2u + BinnedForest::available() : 1u);
}

TEST(GbdtXgboost, BinaryLogisticDepths1To8Padded) {
  for (int depth : {1, 2, 3, 5, 6, 8}) {
    Case c;
    c.name = "binary depth " + std::to_string(depth);
    c.spec.depth = depth;
    c.spec.rounds = depth == 1 ? 1 : 40;
    check_equal(c);
  }
}

TEST(GbdtXgboost, DeepTreesUseGeneralLayout) {
  for (int depth : {9, 12}) {
    Case c;
    c.name = "binary depth " + std::to_string(depth);
    c.spec.depth = depth;
    c.spec.rounds = 25;
    c.rows = 3000;
    c.cols = 16;
    check_equal(c);
  }
}

TEST(GbdtXgboost, ThousandTrees) {
  Case c;
  c.name = "binary 1000 trees depth 6";
  c.spec.rounds = 1000;
  c.spec.depth = 6;
  c.rows = 800;
  c.probes = 200;
  check_equal(c);
}

TEST(GbdtXgboost, RegressionSquaredError) {
  Case c;
  c.name = "reg:squarederror";
  c.spec.objective = "reg:squarederror";
  c.spec.depth = 5;
  c.spec.rounds = 60;
  c.classes = 0;
  check_equal(c);
}

TEST(GbdtXgboost, RegLogisticWithBaseScore) {
  Case c;
  c.name = "reg:logistic base_score 0.2";
  c.spec.objective = "reg:logistic";
  c.spec.extra = {{"base_score", "0.2"}};
  c.spec.depth = 4;
  c.spec.rounds = 30;
  check_equal(c);
}

TEST(GbdtXgboost, MultiSoftprob) {
  Case c;
  c.name = "multi:softprob";
  c.spec.objective = "multi:softprob";
  c.spec.num_class = 3;
  c.spec.depth = 4;
  c.spec.rounds = 20;
  c.classes = 3;
  check_equal(c);
}

TEST(GbdtXgboost, CategoricalSplits) {
  Case c;
  c.name = "categorical";
  c.categorical = {true, false, false, true, false, false};
  c.cols = 6;
  c.spec.depth = 4;
  c.spec.rounds = 20;
  c.spec.extra = {{"max_cat_to_onehot", "1"}};
  check_equal(c);
  // The model really has categorical splits, so the general layout was used.
  Dataset d = testing::make_dataset(c.rows, c.cols, 11, 0.1, 2, c.categorical);
  XgbBooster b = testing::train_booster(d, c.spec, c.categorical);
  auto e = parse_xgboost_json(*b.save_json(), "categorical");
  ASSERT_TRUE(e.ok());
  size_t cat_nodes = 0;
  for (const auto& t : e->trees)
    for (const auto& n : t.nodes) cat_nodes += n.kind == TreeNode::Kind::kCategorical;
  EXPECT_GT(cat_nodes, 0u);
  EXPECT_EQ((*GbdtModel::compile(*e))->layout(), GbdtModel::Layout::kGeneral);
}

TEST(GbdtXgboost, PoissonAndLogitraw) {
  Case c;
  c.name = "count:poisson";
  c.spec.objective = "count:poisson";
  c.classes = 3;  // labels 0, 1, 2 as counts
  c.spec.depth = 4;
  c.spec.rounds = 20;
  check_equal(c);
  Case raw;
  raw.name = "binary:logitraw";
  raw.spec.objective = "binary:logitraw";
  raw.spec.depth = 3;
  raw.spec.rounds = 20;
  check_equal(raw);
}

TEST(GbdtXgboost, SavedFileLoadsThroughGenericLoader) {
  Dataset d = testing::make_dataset(300, 5, 3, 0.1, 2);
  TrainSpec spec;
  spec.rounds = 5;
  spec.depth = 3;
  XgbBooster b = testing::train_booster(d, spec);
  const std::string path = ::millrace::testing::process_temp_dir() + "/gbdt_generic_loader.json";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    auto json = b.save_json();
    std::fwrite(json->data(), 1, json->size(), f);
    std::fclose(f);
  }
  auto m = load_model_file(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->feature_names(), (std::vector<std::string>{"f0", "f1", "f2", "f3", "f4"}));
  auto want = b.predict_dense(d.x.data(), 1, 5, 0);
  ASSERT_TRUE(want.ok());
  EXPECT_NEAR((*m)->score(d.x.data()), (*want)[0], 1e-6);
}

}  // namespace
}  // namespace millrace::model
