// Generator of the LightGBM fixtures in tests/data/models/ (lgb_*.txt with
// lgb_*.rows.csv). No LightGBM is installed here, so the models are XGBoost
// models trained through the C API and rewritten in LightGBM's text format:
//  - each float threshold t (XGBoost: x < t goes left) becomes the double
//    halfway between t and the float below it, so LightGBM's x <= threshold in
//    double splits every float the same way, while rounding it to float would not;
//  - decision_type carries the default direction with missing type NaN, Zero
//    or None, and the rows given to XGBoost are rewritten to match: for Zero,
//    zeros become NaN; for None, NaN becomes 0;
//  - the base margin is added to the leaves of the first tree of each class.
// Reference outputs: XGBoost's leaf indices (pred_leaf) for each row select
// the leaves, which are summed in double in tree order and transformed in
// double, as LightGBM computes; XGBoost's own float output is saved beside.
//
// Run (rewrites the fixtures):
//   millrace_tests --gtest_also_run_disabled_tests --gtest_filter='*GenerateLightGbmFixtures*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "millrace/model/xgboost_json.h"
#include "xgb_test_util.h"

namespace millrace::model {
namespace {

enum class Missing { kNaN, kZero, kNone };

struct Fixture {
  std::string name;
  std::string objective;  // XGBoost
  int num_class = 0;
  int depth = 4;
  int rounds = 30;
  Missing missing = Missing::kNaN;
};

std::string lightgbm_threshold(float t) {
  const double below = std::nextafter(t, -INFINITY);
  const double mid = below + (static_cast<double>(t) - below) / 2;
  return fmt::format("{:.17g}", mid);
}

void generate(const Fixture& fx) {
  const size_t cols = 8;
  const int classes =
      fx.num_class > 1 ? fx.num_class : (fx.objective == "reg:squarederror" ? 0 : 2);
  testing::Dataset d = testing::make_dataset(800, cols, 21, 0.12, classes);
  testing::TrainSpec spec;
  spec.objective = fx.objective;
  spec.num_class = fx.num_class;
  spec.depth = fx.depth;
  spec.rounds = fx.rounds;
  XgbBooster booster = testing::train_booster(d, spec);
  auto json = booster.save_json();
  ASSERT_TRUE(json.ok());
  auto e = parse_xgboost_json(*json, fx.name);
  ASSERT_TRUE(e.ok()) << e.status().message();
  const size_t groups = e->num_groups;

  // The LightGBM tree of each XGBoost tree: internal nodes renumbered in BFS
  // order from 0, leaves numbered in the order met; leaf_of maps node -> leaf.
  std::vector<std::map<int, int>> leaf_of(e->trees.size());
  std::vector<std::vector<double>> leaf_values(e->trees.size());
  std::string trees_text;
  std::vector<bool> first_of_group(groups, true);
  for (size_t t = 0; t < e->trees.size(); ++t) {
    const Tree& tree = e->trees[t];
    const double add = first_of_group[tree.group] ? e->base_margin[tree.group] : 0.0;
    first_of_group[tree.group] = false;
    std::map<int, int> internal_id;
    std::vector<int> order;
    std::vector<int> queue{0};
    for (size_t q = 0; q < queue.size(); ++q) {
      const TreeNode& n = tree.nodes[queue[q]];
      if (n.kind == TreeNode::Kind::kLeaf) {
        leaf_of[t][queue[q]] = static_cast<int>(leaf_values[t].size());
        leaf_values[t].push_back(n.leaf_value + add);
      } else {
        internal_id[queue[q]] = static_cast<int>(order.size());
        order.push_back(queue[q]);
        queue.push_back(n.left);
        queue.push_back(n.right);
      }
    }
    auto child = [&](int c) {
      return tree.nodes[c].kind == TreeNode::Kind::kLeaf ? ~leaf_of[t][c] : internal_id[c];
    };
    std::string feature, threshold, decision, left, right, gain, ivalue, icount, lvalue, lcount;
    for (int id : order) {
      const TreeNode& n = tree.nodes[id];
      int missing_type = fx.missing == Missing::kNaN ? 2 : fx.missing == Missing::kZero ? 1 : 0;
      const int dt = (missing_type << 2) | (n.default_left ? 2 : 0);
      feature += fmt::format("{} ", n.feature);
      threshold += lightgbm_threshold(n.threshold) + " ";
      decision += fmt::format("{} ", dt);
      left += fmt::format("{} ", child(n.left));
      right += fmt::format("{} ", child(n.right));
      gain += "1 ";
      ivalue += "0 ";
      icount += "100 ";
    }
    for (double v : leaf_values[t]) {
      lvalue += fmt::format("{:.17g} ", v);
      lcount += "10 ";
    }
    auto strip = [](std::string s) {
      if (!s.empty()) s.pop_back();
      return s;
    };
    trees_text += fmt::format("Tree={}\nnum_leaves={}\nnum_cat=0\n", t, leaf_values[t].size());
    if (!order.empty()) {
      trees_text += fmt::format(
          "split_feature={}\nsplit_gain={}\nthreshold={}\ndecision_type={}\nleft_child={}\n"
          "right_child={}\n",
          strip(feature), strip(gain), strip(threshold), strip(decision), strip(left),
          strip(right));
    }
    trees_text += fmt::format("leaf_value={}\nleaf_weight={}\nleaf_count={}\n", strip(lvalue),
                              strip(lcount), strip(lcount));
    if (!order.empty())
      trees_text += fmt::format("internal_value={}\ninternal_weight={}\ninternal_count={}\n",
                                strip(ivalue), strip(icount), strip(icount));
    trees_text += "is_linear=0\nshrinkage=0.3\n\n\n";
  }
  std::string objective = fx.objective == "binary:logistic" ? "binary sigmoid:1"
                          : fx.objective == "multi:softprob"
                              ? fmt::format("multiclass num_class:{}", fx.num_class)
                              : "regression";
  std::string names, infos;
  for (size_t c = 0; c < cols; ++c) {
    names += fmt::format("{}f{}", c ? " " : "", c);
    infos += fmt::format("{}[-2:2]", c ? " " : "");
  }
  std::string text = fmt::format(
      "tree\nversion=v3\nnum_class={}\nnum_tree_per_iteration={}\nlabel_index=0\n"
      "max_feature_idx={}\nobjective={}\nfeature_names={}\nfeature_infos={}\n\n{}end of trees\n\n"
      "feature_importances:\nf0=1\n\nparameters:\n[boosting: gbdt]\nend of parameters\n\n"
      "pandas_categorical:null\n",
      std::max<size_t>(1, groups), groups, cols - 1, objective, names, infos, trees_text);

  // Rows: random values, NaNs, zeros and tiny values, values on thresholds.
  std::vector<float> x = testing::probe_rows(*e, cols, 300, 9);
  for (size_t i = 0; i < x.size(); i += 7) x[i] = (i / 7) % 3 == 0 ? 0.0f : x[i];
  for (size_t i = 3; i < x.size(); i += 29) x[i] = 1e-36f;
  // What XGBoost must see to route rows as LightGBM will.
  std::vector<float> xgb_x = x;
  for (float& v : xgb_x) {
    if (fx.missing == Missing::kZero && v >= -1e-35f && v <= 1e-35f) v = NAN;
    if (fx.missing == Missing::kNone && std::isnan(v)) v = 0.0f;
  }
  auto dm = XgbMatrix::dense(xgb_x.data(), 300, cols);
  ASSERT_TRUE(dm.ok());
  auto leaves = booster.predict(*dm, 6);
  auto xgb_out = booster.predict(*dm, 0);
  ASSERT_TRUE(leaves.ok() && xgb_out.ok());
  const size_t outs = xgb_out->size() / 300;
  ASSERT_EQ(leaves->size(), 300 * e->trees.size());

  std::string csv;
  for (size_t c = 0; c < cols; ++c) csv += fmt::format("f{},", c);
  for (size_t k = 0; k < outs; ++k) csv += fmt::format("expected{},", k);
  for (size_t k = 0; k < outs; ++k) csv += fmt::format("xgboost{}{}", k, k + 1 < outs ? "," : "\n");
  for (size_t r = 0; r < 300; ++r) {
    std::vector<double> margin(groups, 0.0);
    for (size_t t = 0; t < e->trees.size(); ++t) {
      const int node = static_cast<int>((*leaves)[r * e->trees.size() + t]);
      margin[e->trees[t].group] += leaf_values[t][leaf_of[t].at(node)];
    }
    std::vector<double> out(groups);
    if (fx.objective == "binary:logistic") {
      out[0] = 1.0 / (1.0 + std::exp(-margin[0]));
    } else if (fx.objective == "multi:softprob") {
      double wmax = margin[0], sum = 0;
      for (double m : margin) wmax = std::max(wmax, m);
      for (size_t g = 0; g < groups; ++g) sum += out[g] = std::exp(margin[g] - wmax);
      for (double& o : out) o /= sum;
    } else {
      out = margin;
    }
    for (size_t c = 0; c < cols; ++c) {
      const float v = x[r * cols + c];
      csv += std::isnan(v) ? "," : fmt::format("{:.9g},", v);
    }
    for (size_t k = 0; k < outs; ++k) csv += fmt::format("{:.17g},", out[k]);
    for (size_t k = 0; k < outs; ++k)
      csv += fmt::format("{:.9g}{}", (*xgb_out)[r * outs + k], k + 1 < outs ? "," : "\n");
  }
  const std::string dir = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/models/";
  for (auto [path, body] :
       {std::pair{dir + fx.name + ".txt", &text}, {dir + fx.name + ".rows.csv", &csv}}) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    std::fwrite(body->data(), 1, body->size(), f);
    std::fclose(f);
  }
}

TEST(LightGbmFixtures, DISABLED_GenerateLightGbmFixtures) {
  generate({"lgb_binary_nan", "binary:logistic", 0, 5, 40, Missing::kNaN});
  generate({"lgb_binary_zero", "binary:logistic", 0, 4, 25, Missing::kZero});
  generate({"lgb_binary_none", "binary:logistic", 0, 4, 25, Missing::kNone});
  generate({"lgb_multiclass", "multi:softprob", 3, 4, 15, Missing::kNaN});
  generate({"lgb_regression_deep", "reg:squarederror", 0, 10, 20, Missing::kNaN});
}

}  // namespace
}  // namespace millrace::model
