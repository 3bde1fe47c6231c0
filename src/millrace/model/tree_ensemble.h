// TreeEnsemble: a format-neutral description of a gradient-boosted tree model,
// produced by the XGBoost and LightGBM loaders and compiled by GbdtModel.
//
// Split semantics are normalised to one rule, so the compiled scorer needs no
// per-format code: a numerical node sends a value x left iff x < threshold,
// compared in float32. XGBoost stores exactly this; LightGBM's "x <= t" in
// double is converted by the loader to the float threshold that splits every
// float identically (see lightgbm_text.h). Missing values (NaN) follow
// default_left. LightGBM's zero-as-missing nodes also send |x| <= 1e-35 there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace millrace::model {

struct TreeNode {
  enum class Kind : uint8_t { kLeaf, kNumerical, kCategorical };
  Kind kind = Kind::kLeaf;
  int32_t left = -1;  // child indices into Tree::nodes; -1 for a leaf
  int32_t right = -1;
  uint32_t feature = 0;
  float threshold = 0;        // numerical: left iff x < threshold
  bool default_left = false;  // where NaN goes
  bool zero_as_missing = false;
  // Categorical: x (NaN aside) is truncated to an integer c; c >= 0 and c in
  // `categories` goes left if category_left, else right; any other value goes
  // the other way. (LightGBM: in-set goes left; XGBoost: in-set goes right.)
  std::vector<uint32_t> categories;
  bool category_left = false;
  double leaf_value = 0;
};

struct Tree {
  std::vector<TreeNode> nodes;  // nodes[0] is the root
  uint32_t group = 0;           // output (class) this tree adds to
};

// How margins become outputs, with each source library's exact arithmetic.
enum class OutputTransform : uint8_t {
  kIdentity,
  kSigmoidXgboost,   // float: 1 / (1 + expf(-x)), as XGBoost computes it
  kSoftmaxXgboost,   // float exp, double sum
  kArgmaxXgboost,    // multi:softmax: index of the largest margin
  kExpXgboost,       // float expf
  kSigmoidLightgbm,  // double: 1 / (1 + exp(-sigmoid * x))
  kSoftmaxLightgbm,  // double
  kExpLightgbm,      // double exp
};

struct TreeEnsemble {
  std::string format;     // "xgboost" or "lightgbm"
  std::string objective;  // as named in the file
  std::vector<std::string> feature_names;
  uint32_t num_groups = 1;
  std::vector<double> base_margin;  // per group, added before the trees
  // XGBoost sums leaves in float, LightGBM in double; the compiled scorer keeps
  // the source's precision and its tree order so results match bit for bit.
  bool accumulate_double = false;
  bool average_output = false;  // LightGBM random forest: divide by trees per group
  OutputTransform transform = OutputTransform::kIdentity;
  double sigmoid_scale = 1;
  std::vector<Tree> trees;
};

}  // namespace millrace::model
