// The compiled layouts (binned, padded, general) against a brute-force walk of
// the source trees, on generated ensembles that reach the edges of each layout:
// depth 1 and exactly the padding limit, trees shallower than others, block
// remainders, infinite thresholds, values exactly on thresholds, all-missing
// rows, several output groups, double sums, and models that must fall back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "millrace/model/binned_forest.h"
#include "millrace/model/gbdt.h"

namespace millrace::model {
namespace {

using Layout = GbdtModel::Layout;
constexpr float kInf = std::numeric_limits<float>::infinity();
const std::vector<float> kDefaultGrid = {-1.5f, -0.5f, -0.0f, 0.25f, 0.5f, 1.0f, 2.0f, kInf};

struct Shape {
  size_t features = 10;
  size_t trees = 40;
  int min_depth = 1, max_depth = 6;
  uint32_t groups = 1;
  bool double_sum = false;
  std::vector<float> grid;  // thresholds are drawn from it (default: a small grid)
};

// Grows a random tree: every node above the tree's depth splits with
// probability 0.8, and the first path down always splits, so the tree reaches
// exactly `depth`.
void grow(Tree& tree, int32_t at, int depth, int left_to_go, bool on_spine, std::mt19937& rng,
          const Shape& s) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  TreeNode& node = tree.nodes[at];
  if (left_to_go == 0 || (!on_spine && u(rng) < 0.2)) {
    node.kind = TreeNode::Kind::kLeaf;
    node.leaf_value = u(rng) * 2 - 1;
    return;
  }
  node.kind = TreeNode::Kind::kNumerical;
  node.feature = static_cast<uint32_t>(rng() % s.features);
  node.threshold = s.grid[rng() % s.grid.size()];
  node.default_left = rng() % 2;
  node.left = static_cast<int32_t>(tree.nodes.size());
  node.right = node.left + 1;
  const int32_t left = node.left, right = node.right;
  tree.nodes.resize(tree.nodes.size() + 2);
  grow(tree, left, depth, left_to_go - 1, on_spine, rng, s);
  grow(tree, right, depth, left_to_go - 1, false, rng, s);
}

TreeEnsemble make_ensemble(Shape s, uint32_t seed) {
  std::mt19937 rng(seed);
  if (s.grid.empty()) s.grid = kDefaultGrid;
  TreeEnsemble e;
  e.format = s.double_sum ? "lightgbm" : "xgboost";
  e.objective = "test";
  for (size_t f = 0; f < s.features; ++f) e.feature_names.push_back("f" + std::to_string(f));
  e.num_groups = s.groups;
  for (uint32_t g = 0; g < s.groups; ++g) e.base_margin.push_back(0.1 * g - 0.3);
  e.accumulate_double = s.double_sum;
  for (size_t t = 0; t < s.trees; ++t) {
    Tree tree;
    tree.group = static_cast<uint32_t>(t % s.groups);
    tree.nodes.resize(1);
    const int depth = s.min_depth + static_cast<int>(rng() % (s.max_depth - s.min_depth + 1));
    grow(tree, 0, depth, depth, true, rng, s);
    e.trees.push_back(std::move(tree));
  }
  return e;
}

// The definition: walk each tree (x < threshold goes left, NaN to the default
// child), add the leaves in tree order in the model's precision.
template <typename Acc>
std::vector<Acc> reference_margins(const TreeEnsemble& e, const float* row) {
  std::vector<Acc> acc(e.num_groups);
  for (uint32_t g = 0; g < e.num_groups; ++g) acc[g] = static_cast<Acc>(e.base_margin[g]);
  for (const Tree& tree : e.trees) {
    const TreeNode* n = &tree.nodes[0];
    while (n->kind != TreeNode::Kind::kLeaf) {
      const float x = row[n->feature];
      const bool left = std::isnan(x) ? n->default_left : x < n->threshold;
      n = &tree.nodes[left ? n->left : n->right];
    }
    acc[tree.group] += static_cast<Acc>(n->leaf_value);
  }
  return acc;
}

// Rows mixing values exactly on the grid, one float either side of them,
// infinities, NaN and random values; the first two rows are all-missing and
// all-zero.
std::vector<float> make_rows(const Shape& s, size_t n, size_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> grid = s.grid;
  if (grid.empty()) grid = kDefaultGrid;
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  std::vector<float> x(n * stride, 777.0f);  // padding past the features must be ignored
  for (size_t r = 0; r < n; ++r) {
    for (size_t c = 0; c < s.features; ++c) {
      float v;
      const float g = grid[rng() % grid.size()];
      switch (rng() % 6) {
        case 0:
          v = std::nanf("");
          break;
        case 1:
          v = std::nextafter(g, -kInf);
          break;
        case 2:
          v = std::nextafter(g, kInf);
          break;
        case 3:
          v = u(rng);
          break;
        default:
          v = g;
      }
      if (r == 0) v = std::nanf("");
      if (r == 1) v = 0.0f;
      x[r * stride + c] = v;
    }
  }
  return x;
}

// Checks `m` in every layout it supports, row and batch, bit for bit against
// the reference; returns the layouts checked.
std::vector<Layout> check_layouts(GbdtModel& m, const TreeEnsemble& e, const Shape& s) {
  const size_t n = 150, stride = s.features + 3;
  const std::vector<float> x = make_rows(s, n, stride, 7);
  const size_t groups = e.num_groups;
  std::vector<Layout> checked;
  const Layout chosen = m.layout();
  for (Layout layout : {Layout::kBinned, Layout::kPadded, Layout::kGeneral}) {
    if (!m.use_layout(layout)) continue;
    SCOPED_TRACE(GbdtModel::layout_name(layout));
    checked.push_back(layout);
    std::vector<double> batch(n * groups), margins(groups);
    m.predict_batch(x.data(), n, stride, batch.data());
    size_t mismatches = 0;
    for (size_t r = 0; r < n; ++r) {
      const float* row = &x[r * stride];
      m.predict_margin_row(row, margins.data());
      for (size_t g = 0; g < groups; ++g) {
        const double want = s.double_sum ? reference_margins<double>(e, row)[g]
                                         : reference_margins<float>(e, row)[g];
        mismatches += margins[g] != want;
        mismatches += batch[r * groups + g] != want;
      }
    }
    EXPECT_EQ(mismatches, 0u);
  }
  EXPECT_TRUE(m.use_layout(chosen));
  return checked;
}

Layout fastest() {
  return BinnedForest::available() ? Layout::kBinned : Layout::kPadded;
}

struct Result3 {
  Layout chosen;
  std::vector<Layout> checked;
};

Result3 compile_and_check(const Shape& s, uint32_t seed) {
  TreeEnsemble e = make_ensemble(s, seed);
  auto m = GbdtModel::compile(e);
  EXPECT_TRUE(m.ok()) << m.status().message();
  if (!m.ok()) return {};
  return {(*m)->layout(), check_layouts(**m, e, s)};
}

TEST(GbdtLayouts, StumpsOnlyDepthOne) {
  for (size_t trees : {1, 15, 16, 17, 37}) {
    SCOPED_TRACE(trees);
    Shape s;
    s.trees = trees;
    s.min_depth = s.max_depth = 1;
    auto r = compile_and_check(s, 1);
    EXPECT_EQ(r.chosen, fastest());
    EXPECT_EQ(r.checked.size(), 2u + BinnedForest::available());
  }
}

TEST(GbdtLayouts, DepthExactlyThePaddingLimit) {
  Shape s;
  s.trees = 70;  // 4 full blocks of 16 walked together, then 6 trees in a last block
  s.min_depth = s.max_depth = GbdtModel::kMaxPaddedDepth;
  auto r = compile_and_check(s, 2);
  EXPECT_EQ(r.chosen, fastest());
  EXPECT_EQ(r.checked.size(), 2u + BinnedForest::available());
}

TEST(GbdtLayouts, OneLevelPastTheLimitUsesGeneral) {
  Shape s;
  s.trees = 30;
  s.min_depth = 2;
  s.max_depth = GbdtModel::kMaxPaddedDepth + 1;
  auto r = compile_and_check(s, 3);
  EXPECT_EQ(r.chosen, Layout::kGeneral);
  EXPECT_EQ(r.checked, std::vector<Layout>{Layout::kGeneral});
}

TEST(GbdtLayouts, TreesShallowerThanOthersAtEveryDepth) {
  for (int depth = 2; depth <= GbdtModel::kMaxPaddedDepth; ++depth) {
    SCOPED_TRACE(depth);
    Shape s;
    s.trees = 100;
    s.min_depth = 1;
    s.max_depth = depth;
    auto r = compile_and_check(s, 10 + depth);
    EXPECT_EQ(r.chosen, fastest());
    EXPECT_EQ(r.checked.size(), 2u + BinnedForest::available());
  }
}

TEST(GbdtLayouts, SeveralGroupsAndDoubleSums) {
  Shape s;
  s.trees = 99;
  s.groups = 3;
  s.max_depth = 5;
  auto r = compile_and_check(s, 4);
  EXPECT_EQ(r.chosen, fastest());
  s.double_sum = true;
  s.groups = 1;
  r = compile_and_check(s, 5);
  EXPECT_EQ(r.chosen, fastest());
  EXPECT_EQ(r.checked.size(), 2u + BinnedForest::available());
}

TEST(GbdtLayouts, SixtyFourFeaturesBinnedSixtyFiveNot) {
  Shape s;
  s.trees = 50;
  s.features = 64;
  auto r = compile_and_check(s, 6);
  EXPECT_EQ(r.chosen, fastest());
  s.features = 65;
  r = compile_and_check(s, 6);
  EXPECT_EQ(r.chosen, Layout::kPadded);
  EXPECT_EQ(r.checked, (std::vector<Layout>{Layout::kPadded, Layout::kGeneral}));
}

TEST(GbdtLayouts, At255ThresholdsPerFeatureBinnedAt256Not) {
  for (size_t cuts : {255, 256}) {
    SCOPED_TRACE(cuts);
    Shape s;
    s.features = 1;
    for (size_t i = 0; i < cuts; ++i) s.grid.push_back(-4.0f + 0.03125f * static_cast<float>(i));
    // Enough depth-8 trees that every grid value is used.
    s.trees = 64;
    s.min_depth = s.max_depth = 8;
    TreeEnsemble e = make_ensemble(s, 8);
    size_t used = 0;
    std::vector<bool> seen(cuts);
    for (const Tree& t : e.trees)
      for (const TreeNode& n : t.nodes)
        if (n.kind == TreeNode::Kind::kNumerical) {
          const auto i = static_cast<size_t>((n.threshold + 4.0f) / 0.03125f);
          used += !seen[i];
          seen[i] = true;
        }
    ASSERT_EQ(used, cuts);
    auto m = GbdtModel::compile(e);
    ASSERT_TRUE(m.ok());
    const auto checked = check_layouts(**m, e, s);
    EXPECT_EQ((*m)->layout(), cuts == 255 ? fastest() : Layout::kPadded);
    EXPECT_EQ(checked.size(), cuts == 255 ? 2u + BinnedForest::available() : 2u);
  }
}

TEST(GbdtLayouts, MinusInfinityThresholdWithMissingGoingLeft) {
  // x < -inf is false for every x, yet NaN goes left: the binned layout keeps
  // this (NaN is bin 0), the padded one cannot (it widens NaN to -inf).
  Shape s;
  s.trees = 40;
  s.grid = {-kInf, -1.0f, 0.0f, 1.0f, kInf};
  TreeEnsemble e = make_ensemble(s, 12);
  size_t left_at_minus_inf = 0;
  for (const Tree& t : e.trees)
    for (const TreeNode& n : t.nodes)
      left_at_minus_inf +=
          n.kind == TreeNode::Kind::kNumerical && n.default_left && n.threshold == -kInf;
  ASSERT_GT(left_at_minus_inf, 0u);
  auto r = compile_and_check(s, 12);
  EXPECT_EQ(r.chosen, BinnedForest::available() ? Layout::kBinned : Layout::kGeneral);
  EXPECT_EQ(r.checked.back(), Layout::kGeneral);
  EXPECT_EQ(r.checked.size(), 1u + BinnedForest::available());
}

TEST(GbdtLayouts, CategoricalSplitFallsBackToGeneral) {
  Shape s;
  s.trees = 30;
  TreeEnsemble e = make_ensemble(s, 9);
  // Turn one split of the last tree into a categorical one.
  for (TreeNode& n : e.trees.back().nodes) {
    if (n.kind != TreeNode::Kind::kNumerical) continue;
    n.kind = TreeNode::Kind::kCategorical;
    n.categories = {1, 3};
    break;
  }
  auto m = GbdtModel::compile(e);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->layout(), Layout::kGeneral);
  EXPECT_FALSE((*m)->supports_layout(Layout::kBinned));
  EXPECT_FALSE((*m)->supports_layout(Layout::kPadded));
  EXPECT_FALSE((*m)->use_layout(Layout::kBinned));
  EXPECT_EQ((*m)->layout(), Layout::kGeneral);
}

TEST(GbdtLayouts, AllMissingRowTakesEveryDefaultDirection) {
  // One tree per combination of default directions along its path: an
  // all-NaN row must reach the leaf the defaults name, in every layout.
  Shape s;
  s.features = 3;
  TreeEnsemble e = make_ensemble(s, 11);
  e.trees.clear();
  for (int mask = 0; mask < 8; ++mask) {
    Tree t;
    t.nodes.resize(1);
    int32_t at = 0;
    for (int d = 0; d < 3; ++d) {
      TreeNode& n = t.nodes[at];
      n.kind = TreeNode::Kind::kNumerical;
      n.feature = static_cast<uint32_t>(d);
      n.threshold = 0.5f;
      n.default_left = (mask >> d) & 1;
      n.left = static_cast<int32_t>(t.nodes.size());
      n.right = n.left + 1;
      const int32_t next = n.default_left ? n.left : n.right;
      t.nodes.resize(t.nodes.size() + 2);
      for (int32_t c : {t.nodes[at].left, t.nodes[at].right}) {
        t.nodes[c].kind = TreeNode::Kind::kLeaf;
        t.nodes[c].leaf_value = c == next ? 0 : -100;
      }
      at = next;
    }
    t.nodes[at].leaf_value = std::ldexp(1.0, mask);
    e.trees.push_back(std::move(t));
  }
  e.base_margin = {0};
  auto m = GbdtModel::compile(e);
  ASSERT_TRUE(m.ok());
  const float nan_row[3] = {NAN, NAN, NAN};
  for (Layout layout : {Layout::kBinned, Layout::kPadded, Layout::kGeneral}) {
    if (!(*m)->use_layout(layout)) continue;
    SCOPED_TRACE(GbdtModel::layout_name(layout));
    double margin = 0;
    (*m)->predict_margin_row(nan_row, &margin);
    EXPECT_EQ(margin, 255.0);  // every tree reached its 2^mask leaf
  }
  check_layouts(**m, e, s);
}

}  // namespace
}  // namespace millrace::model
