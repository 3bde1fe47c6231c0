// GbdtModel: a tree ensemble compiled into flat arrays for fast scoring.
//
// Three layouts; compile() picks the first the model allows:
//  - binned (BinnedForest, see binned_forest.h; CPUs with AVX-512 VBMI): every
//    split numerical without zero-as-missing, depth <= kMaxPaddedDepth, at most
//    64 features and 255 distinct thresholds per feature. Thresholds become
//    per-feature bins, trees are padded to complete arrays and walked 16 at a
//    time in vector lanes, without branches.
//  - padded (the portable form of the same idea; same split conditions, any
//    number of features and thresholds): each tree becomes a complete binary
//    tree of depth D in heap order (children of node i at 2i+1 and 2i+2), 8
//    bytes per internal node {threshold, index} in a 64-byte aligned stride of
//    2^D slots, plus 2^D leaf values. A leaf above depth D is copied into every
//    padded slot below it, so traversal is exactly D branch-free steps. Rows are
//    first "widened" to 2F floats, [NaN -> -inf | NaN -> +inf], and a node reads
//    the half matching its default direction, so right = (x >= t) routes missing
//    values too. One row walks 8 trees in lockstep (independent load chains for
//    the out-of-order core); a batch walks L1-sized slices of trees for a block
//    of 64 rows.
//  - general (any depth, categorical splits, zero-as-missing, or a NaN-goes-left
//    split at -inf, which widening cannot express): 12-byte nodes with
//    siblings adjacent (right child = left child + 1), walked until a leaf.
// Leaves are summed per row in tree order, in float for XGBoost models and in
// double for LightGBM ones, starting from the base margin, exactly as the source
// libraries do; the output transform repeats their arithmetic too. Every layout
// gives the same results, bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/model/binned_forest.h"
#include "millrace/model/model.h"
#include "millrace/model/tree_ensemble.h"

namespace millrace::model {

class GbdtModel final : public Model {
 public:
  static constexpr int kMaxPaddedDepth = 8;

  // Validates (child indices in range, no cycles, features < names) and compiles.
  static Result<std::shared_ptr<GbdtModel>> compile(TreeEnsemble ensemble);

  // Reads the file at `path`, parses it with `parse` (a format's parser, which
  // names `path` in its errors) and compiles the result.
  using Parser = Result<TreeEnsemble> (*)(std::string_view text, const std::string& origin);
  static Result<std::shared_ptr<GbdtModel>> load(const std::string& path, Parser parse);

  const std::vector<std::string>& feature_names() const override { return feature_names_; }
  size_t num_outputs() const override { return num_outputs_; }
  void predict_row(const float* row, double* out) const override;
  void predict_batch(const float* rows, size_t n, size_t row_stride, double* out) const override;
  std::string summary() const override;

  // Raw margins (before the output transform), num_groups per row.
  void predict_margin_row(const float* row, double* margins) const;

  size_t num_trees() const { return num_trees_; }
  int max_depth() const { return max_depth_; }
  enum class Layout { kBinned, kPadded, kGeneral };
  Layout layout() const;
  static const char* layout_name(Layout layout);
  // Layouts this model can use (kGeneral always; kBinned only on AVX-512 VBMI builds).
  bool supports_layout(Layout layout) const;
  // Switches to `layout` if supported (tests compare layouts on one model); false otherwise.
  bool use_layout(Layout layout);
  const std::string& format() const { return format_; }
  const std::string& objective() const { return objective_; }

  struct PaddedNode {
    float threshold;  // x >= threshold goes right
    uint32_t index;   // into the widened row: feature, or F + feature if NaN goes right
  };
  struct FlatNode {
    float threshold;   // numerical; for categorical, bits = offset into cat_words_
    uint32_t feature;  // low 24 bits; flags above
    uint32_t next;     // internal: left child (right = next + 1); leaf: leaf index
  };

 private:
  GbdtModel() = default;
  template <typename Acc>
  void margins_row(const float* row, Acc* acc) const;
  template <typename Acc>
  void margins_batch(const float* rows, size_t n, size_t stride, Acc* acc) const;
  template <typename Acc>
  void finish(const Acc* margins, double* out) const;

  std::vector<std::string> feature_names_;
  std::string format_, objective_;
  size_t num_outputs_ = 1;
  uint32_t num_groups_ = 1;
  size_t num_trees_ = 0;
  int max_depth_ = 0;
  bool double_acc_ = false;
  bool average_output_ = false;
  OutputTransform transform_ = OutputTransform::kIdentity;
  double sigmoid_scale_ = 1;
  std::vector<double> base_margin_;
  std::vector<uint32_t> tree_group_;
  std::vector<double> trees_per_group_;

  // Binned layout (in use when use_binned_).
  std::unique_ptr<BinnedForest> binned_;
  bool use_binned_ = false;

  // Padded layout (in use when !use_binned_ and padded_depth_ >= 0).
  int padded_depth_ = -1;
  int padded_depth_built_ = -1;
  std::vector<PaddedNode> padded_nodes_;  // from padded_base_: num_trees * 2^D slots
  size_t padded_base_ = 0;                // first 64-byte aligned slot
  std::vector<float> padded_leaves_f_;    // num_trees * 2^D
  std::vector<double> padded_leaves_d_;

  // General layout (always built).
  std::vector<FlatNode> nodes_;
  std::vector<uint32_t> roots_;
  std::vector<float> leaves_f_;
  std::vector<double> leaves_d_;
  std::vector<uint32_t> cat_words_;  // per categorical node: [n_words, words...]
};

}  // namespace millrace::model
