#include "millrace/model/gbdt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <utility>

#include <fmt/format.h>

namespace millrace::model {
namespace {

constexpr uint32_t kLeafBit = 1u << 31;
constexpr uint32_t kDefaultLeftBit = 1u << 30;
constexpr uint32_t kCategoricalBit = 1u << 29;
constexpr uint32_t kZeroMissingBit = 1u << 28;
constexpr uint32_t kCategoryLeftBit = 1u << 27;
constexpr uint32_t kSpecialBits = kCategoricalBit | kZeroMissingBit;
constexpr uint32_t kFeatureMask = (1u << 24) - 1;
constexpr size_t kBlockRows = 64;
// Binned layout: blocks of 16 trees walked per call of leaf_slots() for one row.
constexpr size_t kRowChunkBlocks = 8;

// Calls f.template operator()<D>() for the run-time depth d in [0, kMaxPaddedDepth].
template <typename F>
void with_depth(int d, F&& f) {
  switch (d) {
    case 0:
      f.template operator()<0>();
      break;
    case 1:
      f.template operator()<1>();
      break;
    case 2:
      f.template operator()<2>();
      break;
    case 3:
      f.template operator()<3>();
      break;
    case 4:
      f.template operator()<4>();
      break;
    case 5:
      f.template operator()<5>();
      break;
    case 6:
      f.template operator()<6>();
      break;
    case 7:
      f.template operator()<7>();
      break;
    case 8:
      f.template operator()<8>();
      break;
    default:
      break;
  }
}

using PaddedNode = GbdtModel::PaddedNode;
using FlatNode = GbdtModel::FlatNode;

// Padded trees read a "widened" row of 2F floats: [x with NaN -> -inf | x with
// NaN -> +inf]. A node whose missing values go left indexes the first half, one
// whose missing values go right the second, so one comparison (x >= threshold
// goes right) also routes NaN, with no test for it in the loop.
inline void widen_row(const float* row, size_t f, float* out) {
  for (size_t i = 0; i < f; ++i) {
    const float x = row[i];
    const bool nan = x != x;
    out[i] = nan ? -INFINITY : x;
    out[f + i] = nan ? INFINITY : x;
  }
}

inline uint32_t padded_step(const PaddedNode* n, uint32_t i, const float* wide) {
  const PaddedNode nd = n[i];
  return 2 * i + 1 + static_cast<uint32_t>(wide[nd.index] >= nd.threshold);
}

// One row: kLanes trees in lockstep, so the out-of-order core overlaps their
// dependent loads; leaves are then added in tree order.
template <int D, typename Acc>
void padded_row(const PaddedNode* nodes, const Acc* leaves, const uint32_t* group, size_t t_begin,
                size_t t_end, const float* wide, Acc* acc) {
  constexpr uint32_t kInner = (1u << D) - 1;
  constexpr uint32_t kLeaves = 1u << D;
  constexpr uint32_t kStride = 1u << D;  // node slots per tree (one unused: 64-byte aligned)
  constexpr size_t kLanes = 8;
  size_t t = t_begin;
  for (; t + kLanes <= t_end; t += kLanes) {
    const PaddedNode* n = nodes + t * kStride;
    uint32_t i[kLanes] = {};
    for (int d = 0; d < D; ++d)
      for (size_t k = 0; k < kLanes; ++k) i[k] = padded_step(n + k * kStride, i[k], wide);
    const Acc* l = leaves + t * kLeaves;
    for (size_t k = 0; k < kLanes; ++k) acc[group[t + k]] += l[k * kLeaves + i[k] - kInner];
  }
  for (; t < t_end; ++t) {
    const PaddedNode* n = nodes + t * kStride;
    uint32_t i = 0;
    for (int d = 0; d < D; ++d) i = padded_step(n, i, wide);
    acc[group[t]] += leaves[t * kLeaves + i - kInner];
  }
}

// A block of widened rows (row r at wide + r * wide_stride, accumulators at
// acc + r * groups): trees are taken in slices that fit in L1 together, and
// every row of the block walks a slice (8 trees in lockstep) before the next
// slice, so each row still adds its leaves in tree order.
template <int D, typename Acc>
void padded_block(const PaddedNode* nodes, const Acc* leaves, const uint32_t* group,
                  size_t num_trees, const float* wide, size_t wide_stride, size_t n,
                  uint32_t groups, Acc* acc) {
  constexpr size_t kTreeBytes = (1u << D) * (sizeof(PaddedNode) + sizeof(Acc));
  constexpr size_t kSlice = std::max<size_t>(8, 24 * 1024 / kTreeBytes / 8 * 8);
  for (size_t t0 = 0; t0 < num_trees; t0 += kSlice) {
    const size_t t1 = std::min(num_trees, t0 + kSlice);
    for (size_t r = 0; r < n; ++r)
      padded_row<D, Acc>(nodes, leaves, group, t0, t1, wide + r * wide_stride, acc + r * groups);
  }
}

// General layout: walk to a leaf, handling categorical and zero-as-missing nodes.
inline bool special_goes_left(const FlatNode& nd, float x, const uint32_t* cat_words) {
  const uint32_t flags = nd.feature;
  if (flags & kCategoricalBit) {
    if (std::isnan(x)) return flags & kDefaultLeftBit;
    bool in_set = false;
    if (x >= 0 && x < 16777216.0f) {
      uint32_t offset;
      std::memcpy(&offset, &nd.threshold, sizeof offset);
      const uint32_t c = static_cast<uint32_t>(x);
      const uint32_t words = cat_words[offset];
      in_set = (c >> 5) < words && ((cat_words[offset + 1 + (c >> 5)] >> (c & 31)) & 1u);
    }
    const bool category_left = flags & kCategoryLeftBit;
    return in_set == category_left;
  }
  // Zero as missing: NaN and |x| <= 1e-35 take the default direction.
  if (std::isnan(x) || (x >= -1e-35f && x <= 1e-35f)) return flags & kDefaultLeftBit;
  return x < nd.threshold;
}

inline uint32_t general_leaf(const FlatNode* nodes, uint32_t i, const float* row,
                             const uint32_t* cat_words) {
  for (;;) {
    const FlatNode& nd = nodes[i];
    const uint32_t flags = nd.feature;
    if (flags & kLeafBit) return nd.next;
    const float x = row[flags & kFeatureMask];
    bool left;
    if (flags & kSpecialBits) {
      left = special_goes_left(nd, x, cat_words);
    } else {
      left = std::isnan(x) ? (flags & kDefaultLeftBit) != 0 : x < nd.threshold;
    }
    i = nd.next + (left ? 0 : 1);
  }
}

// The output transforms, each with the arithmetic of the library that trained the model.
float xgb_sigmoid(float x) {
  const float e = std::min(-x, 88.7f);
  const float denom = std::exp(e) + 1.0f + 1e-16f;
  return 1.0f / denom;
}

}  // namespace

Result<std::shared_ptr<GbdtModel>> GbdtModel::load(const std::string& path, Parser parse) {
  auto text = read_file_to_string(path);
  if (!text.ok()) return text.status();
  auto e = parse(*text, path);
  if (!e.ok()) return e.status();
  auto m = compile(std::move(e.value()));
  if (!m.ok()) return Status::Error(path + ": " + m.status().message());
  return m;
}

Result<std::shared_ptr<GbdtModel>> GbdtModel::compile(TreeEnsemble e) {
  std::shared_ptr<GbdtModel> m(new GbdtModel());
  const size_t num_features = e.feature_names.size();
  if (num_features > kFeatureMask) return Status::Error("model has too many features");
  if (e.num_groups == 0 || e.num_groups > 256)
    return Status::Error(
        fmt::format("model has {} output groups; 1 to 256 are supported", e.num_groups));
  if (e.base_margin.size() != e.num_groups) e.base_margin.resize(e.num_groups, 0.0);
  m->feature_names_ = std::move(e.feature_names);
  m->format_ = e.format;
  m->objective_ = e.objective;
  m->num_groups_ = e.num_groups;
  m->num_outputs_ = e.transform == OutputTransform::kArgmaxXgboost ? 1 : e.num_groups;
  m->num_trees_ = e.trees.size();
  m->double_acc_ = e.accumulate_double;
  m->average_output_ = e.average_output;
  m->transform_ = e.transform;
  m->sigmoid_scale_ = e.sigmoid_scale;
  m->base_margin_ = e.base_margin;
  m->trees_per_group_.assign(e.num_groups, 0.0);

  bool paddable = true;
  std::vector<std::vector<int>> depths(e.trees.size());
  // Validate every tree and build the general layout (BFS, siblings adjacent).
  for (size_t t = 0; t < e.trees.size(); ++t) {
    const Tree& tree = e.trees[t];
    if (tree.group >= e.num_groups)
      return Status::Error(
          fmt::format("tree {}: output group {} >= {}", t, tree.group, e.num_groups));
    if (tree.nodes.empty()) return Status::Error(fmt::format("tree {}: no nodes", t));
    m->tree_group_.push_back(tree.group);
    m->trees_per_group_[tree.group] += 1;
    std::vector<int>& depth = depths[t];
    depth.assign(tree.nodes.size(), -1);
    depth[0] = 0;
    m->roots_.push_back(static_cast<uint32_t>(m->nodes_.size()));
    m->nodes_.push_back({});
    std::deque<std::pair<int32_t, uint32_t>> queue{{0, m->roots_.back()}};
    while (!queue.empty()) {
      auto [src, dst] = queue.front();
      queue.pop_front();
      const TreeNode& node = tree.nodes[src];
      FlatNode flat{};
      if (node.kind == TreeNode::Kind::kLeaf) {
        flat.feature = kLeafBit;
        flat.next = static_cast<uint32_t>(m->leaves_d_.size());
        m->leaves_d_.push_back(node.leaf_value);
        m->leaves_f_.push_back(static_cast<float>(node.leaf_value));
        m->nodes_[dst] = flat;
        continue;
      }
      for (int32_t child : {node.left, node.right}) {
        if (child < 0 || static_cast<size_t>(child) >= tree.nodes.size())
          return Status::Error(fmt::format("tree {} node {}: child index {} out of range [0, {})",
                                           t, src, child, tree.nodes.size()));
        if (depth[child] != -1)
          return Status::Error(
              fmt::format("tree {} node {}: node {} is reached twice (not a tree)", t, src, child));
        depth[child] = depth[src] + 1;
      }
      if (node.feature >= num_features)
        return Status::Error(fmt::format("tree {} node {}: feature index {} >= {} features", t, src,
                                         node.feature, num_features));
      m->max_depth_ = std::max(m->max_depth_, depth[src] + 1);
      flat.feature = node.feature | (node.default_left ? kDefaultLeftBit : 0);
      flat.threshold = node.threshold;
      // Widened rows send NaN left as -inf, which a threshold of -inf would send right.
      if (std::isnan(node.threshold) || (node.default_left && node.threshold == -INFINITY))
        paddable = false;
      if (node.kind == TreeNode::Kind::kCategorical) {
        paddable = false;
        flat.feature |= kCategoricalBit | (node.category_left ? kCategoryLeftBit : 0);
        uint32_t max_cat = 0;
        for (uint32_t c : node.categories) max_cat = std::max(max_cat, c);
        const uint32_t words = node.categories.empty() ? 0 : max_cat / 32 + 1;
        const auto offset = static_cast<uint32_t>(m->cat_words_.size());
        m->cat_words_.push_back(words);
        m->cat_words_.resize(m->cat_words_.size() + words, 0);
        for (uint32_t c : node.categories) m->cat_words_[offset + 1 + c / 32] |= 1u << (c % 32);
        std::memcpy(&flat.threshold, &offset, sizeof offset);
      } else if (node.zero_as_missing) {
        paddable = false;
        flat.feature |= kZeroMissingBit;
      }
      flat.next = static_cast<uint32_t>(m->nodes_.size());
      m->nodes_[dst] = flat;
      m->nodes_.push_back({});
      m->nodes_.push_back({});
      queue.emplace_back(node.left, flat.next);
      queue.emplace_back(node.right, flat.next + 1);
    }
  }
  if (m->max_depth_ > kMaxPaddedDepth) paddable = false;

  if (paddable) {
    const int d_max = m->max_depth_;
    const size_t inner = (size_t{1} << d_max) - 1;
    const size_t leaves = size_t{1} << d_max;
    // One slot per tree more than its 2^D - 1 nodes, and a 64-byte aligned
    // start, so each tree's top levels share one cache line.
    const size_t stride = size_t{1} << d_max;
    m->padded_nodes_.assign(e.trees.size() * stride + 8, PaddedNode{0.0f, 0});
    const auto addr = reinterpret_cast<uintptr_t>(m->padded_nodes_.data());
    m->padded_base_ = (64 - addr % 64) % 64 / sizeof(PaddedNode);
    m->padded_leaves_d_.assign(e.trees.size() * leaves, 0.0);
    for (size_t t = 0; t < e.trees.size(); ++t) {
      const Tree& tree = e.trees[t];
      PaddedNode* pn = m->padded_nodes_.data() + m->padded_base_ + t * stride;
      double* pl = m->padded_leaves_d_.data() + t * leaves;
      // (source node, heap position, depth); a leaf above d_max fills its whole subtree.
      std::vector<std::tuple<int32_t, size_t, int>> stack{{0, 0, 0}};
      while (!stack.empty()) {
        auto [src, pos, d] = stack.back();
        stack.pop_back();
        const TreeNode& node = tree.nodes[src];
        if (d == d_max) {
          pl[pos - inner] = node.leaf_value;
          continue;
        }
        if (node.kind == TreeNode::Kind::kLeaf) {
          pn[pos] = PaddedNode{0.0f, 0};  // either child leads to the same value
          stack.emplace_back(src, 2 * pos + 1, d + 1);
          stack.emplace_back(src, 2 * pos + 2, d + 1);
        } else {
          const uint32_t index =
              node.feature + (node.default_left ? 0 : static_cast<uint32_t>(num_features));
          pn[pos] = PaddedNode{node.threshold, index};
          stack.emplace_back(node.left, 2 * pos + 1, d + 1);
          stack.emplace_back(node.right, 2 * pos + 2, d + 1);
        }
      }
    }
    m->padded_leaves_f_.assign(m->padded_leaves_d_.begin(), m->padded_leaves_d_.end());
    if (!m->double_acc_) m->padded_leaves_d_.clear();
    m->padded_depth_ = d_max;
    m->padded_depth_built_ = d_max;
  }
  // The binned layout checks its own requirements (it also routes NaN left at
  // a -inf threshold, which the padded layout cannot).
  if (m->max_depth_ >= 1 && m->max_depth_ <= kMaxPaddedDepth) {
    m->binned_ = BinnedForest::build(e, num_features, m->max_depth_);
    m->use_binned_ = m->binned_ != nullptr;
  }
  if (!m->double_acc_) m->leaves_d_.clear();
  return m;
}

namespace {

// Adds the leaves at `slots` of trees [t_begin, t_end) to acc, in tree order.
template <typename Acc>
inline void add_leaves(const Acc* leaves, const uint32_t* slots, const uint32_t* group,
                       size_t t_begin, size_t t_end, uint32_t groups, Acc* acc) {
  if (groups == 1) {
    Acc a = acc[0];  // one register chain instead of a store and reload per tree
    for (size_t t = t_begin; t < t_end; ++t) a += leaves[slots[t - t_begin]];
    acc[0] = a;
    return;
  }
  for (size_t t = t_begin; t < t_end; ++t) acc[group[t]] += leaves[slots[t - t_begin]];
}

template <typename Acc>
const Acc* binned_leaves(const BinnedForest& f) {
  if constexpr (std::is_same_v<Acc, float>) {
    return f.leaves_f();
  } else {
    return f.leaves_d();
  }
}

}  // namespace

template <typename Acc>
void GbdtModel::margins_row(const float* row, Acc* acc) const {
  for (uint32_t g = 0; g < num_groups_; ++g) acc[g] = static_cast<Acc>(base_margin_[g]);
  const uint32_t* group = tree_group_.data();
  if (use_binned_) {
    const BinnedForest& f = *binned_;
    const Acc* leaves = binned_leaves<Acc>(f);
    alignas(64) uint8_t binned[BinnedForest::kBinnedRowBytes];
    alignas(64) uint32_t slots[kRowChunkBlocks * BinnedForest::kTreesPerBlock];
    f.bin_row(row, binned);
    for (size_t b0 = 0; b0 < f.num_blocks(); b0 += kRowChunkBlocks) {
      const size_t b1 = std::min(f.num_blocks(), b0 + kRowChunkBlocks);
      f.leaf_slots(binned, b0, b1, slots);
      add_leaves(leaves, slots, group, b0 * BinnedForest::kTreesPerBlock,
                 std::min(num_trees_, b1 * BinnedForest::kTreesPerBlock), num_groups_, acc);
    }
    return;
  }
  if (padded_depth_ >= 0) {
    const Acc* leaves;
    if constexpr (std::is_same_v<Acc, float>) {
      leaves = padded_leaves_f_.data();
    } else {
      leaves = padded_leaves_d_.data();
    }
    const size_t f = feature_names_.size();
    float stack_wide[1024];
    std::vector<float> heap_wide;
    float* wide = stack_wide;
    if (2 * f > std::size(stack_wide)) {
      heap_wide.resize(2 * f);
      wide = heap_wide.data();
    }
    widen_row(row, f, wide);
    with_depth(padded_depth_, [&]<int D>() {
      padded_row<D, Acc>(padded_nodes_.data() + padded_base_, leaves, group, 0, num_trees_, wide,
                         acc);
    });
    return;
  }
  const Acc* leaves;
  if constexpr (std::is_same_v<Acc, float>) {
    leaves = leaves_f_.data();
  } else {
    leaves = leaves_d_.data();
  }
  for (size_t t = 0; t < num_trees_; ++t)
    acc[group[t]] += leaves[general_leaf(nodes_.data(), roots_[t], row, cat_words_.data())];
}

template <typename Acc>
void GbdtModel::margins_batch(const float* rows, size_t n, size_t stride, Acc* acc) const {
  const uint32_t groups = num_groups_;
  for (size_t r = 0; r < n; ++r)
    for (uint32_t g = 0; g < groups; ++g) acc[r * groups + g] = static_cast<Acc>(base_margin_[g]);
  const uint32_t* group = tree_group_.data();
  if (use_binned_) {
    // Every row of the block is binned once; then each chunk of tree blocks
    // (about 32 KiB of nodes and leaves, so it stays in L1) is walked by every
    // row before the next chunk. Rows still add their leaves in tree order.
    const BinnedForest& f = *binned_;
    const Acc* leaves = binned_leaves<Acc>(f);
    constexpr size_t kRowBytes = BinnedForest::kBinnedRowBytes;
    alignas(64) uint8_t binned[kBlockRows * kRowBytes];
    for (size_t r = 0; r < n; ++r) f.bin_row(rows + r * stride, binned + r * kRowBytes);
    const size_t block_bytes =
        (size_t{1} << f.depth()) * BinnedForest::kTreesPerBlock * (4 + sizeof(Acc));
    const size_t chunk = std::clamp<size_t>(32 * 1024 / block_bytes, 1, kRowChunkBlocks);
    alignas(64) uint32_t slots[kRowChunkBlocks * BinnedForest::kTreesPerBlock];
    for (size_t b0 = 0; b0 < f.num_blocks(); b0 += chunk) {
      const size_t b1 = std::min(f.num_blocks(), b0 + chunk);
      const size_t t0 = b0 * BinnedForest::kTreesPerBlock;
      const size_t t1 = std::min(num_trees_, b1 * BinnedForest::kTreesPerBlock);
      for (size_t r = 0; r < n; ++r) {
        f.leaf_slots(binned + r * kRowBytes, b0, b1, slots);
        add_leaves(leaves, slots, group, t0, t1, groups, acc + r * groups);
      }
    }
    return;
  }
  if (padded_depth_ >= 0) {
    const Acc* leaves;
    if constexpr (std::is_same_v<Acc, float>) {
      leaves = padded_leaves_f_.data();
    } else {
      leaves = padded_leaves_d_.data();
    }
    const size_t f = feature_names_.size();
    float stack_wide[kBlockRows * 2 * 64];
    std::vector<float> heap_wide;
    float* wide = stack_wide;
    if (n * 2 * f > std::size(stack_wide)) {
      heap_wide.resize(n * 2 * f);
      wide = heap_wide.data();
    }
    for (size_t r = 0; r < n; ++r) widen_row(rows + r * stride, f, wide + r * 2 * f);
    with_depth(padded_depth_, [&]<int D>() {
      padded_block<D, Acc>(padded_nodes_.data() + padded_base_, leaves, group, num_trees_, wide,
                           2 * f, n, groups, acc);
    });
    return;
  }
  const Acc* leaves;
  if constexpr (std::is_same_v<Acc, float>) {
    leaves = leaves_f_.data();
  } else {
    leaves = leaves_d_.data();
  }
  for (size_t t = 0; t < num_trees_; ++t) {
    const uint32_t g = group[t];
    for (size_t r = 0; r < n; ++r)
      acc[r * groups + g] +=
          leaves[general_leaf(nodes_.data(), roots_[t], rows + r * stride, cat_words_.data())];
  }
}

template <typename Acc>
void GbdtModel::finish(const Acc* margins, double* out) const {
  const uint32_t k = num_groups_;
  switch (transform_) {
    case OutputTransform::kIdentity:
      for (uint32_t g = 0; g < k; ++g) out[g] = margins[g];
      break;
    case OutputTransform::kSigmoidXgboost:
      for (uint32_t g = 0; g < k; ++g) out[g] = xgb_sigmoid(static_cast<float>(margins[g]));
      break;
    case OutputTransform::kExpXgboost:
      for (uint32_t g = 0; g < k; ++g) out[g] = std::exp(static_cast<float>(margins[g]));
      break;
    case OutputTransform::kSoftmaxXgboost: {
      float wmax = static_cast<float>(margins[0]);
      for (uint32_t g = 1; g < k; ++g) wmax = std::max(static_cast<float>(margins[g]), wmax);
      double wsum = 0;
      float e[256];
      for (uint32_t g = 0; g < k; ++g) {
        e[g] = std::exp(static_cast<float>(margins[g]) - wmax);
        wsum += e[g];
      }
      for (uint32_t g = 0; g < k; ++g) out[g] = e[g] / static_cast<float>(wsum);
      break;
    }
    case OutputTransform::kArgmaxXgboost: {
      uint32_t best = 0;
      for (uint32_t g = 1; g < k; ++g)
        if (margins[g] > margins[best]) best = g;
      out[0] = best;
      break;
    }
    case OutputTransform::kSigmoidLightgbm:
      for (uint32_t g = 0; g < k; ++g)
        out[g] = 1.0 / (1.0 + std::exp(-sigmoid_scale_ * static_cast<double>(margins[g])));
      break;
    case OutputTransform::kExpLightgbm:
      for (uint32_t g = 0; g < k; ++g) out[g] = std::exp(static_cast<double>(margins[g]));
      break;
    case OutputTransform::kSoftmaxLightgbm: {
      double wmax = margins[0];
      for (uint32_t g = 1; g < k; ++g) wmax = std::max<double>(margins[g], wmax);
      double wsum = 0;
      for (uint32_t g = 0; g < k; ++g) {
        out[g] = std::exp(margins[g] - wmax);
        wsum += out[g];
      }
      for (uint32_t g = 0; g < k; ++g) out[g] /= wsum;
      break;
    }
  }
}

void GbdtModel::predict_margin_row(const float* row, double* margins) const {
  if (double_acc_) {
    double acc[256];
    margins_row<double>(row, acc);
    for (uint32_t g = 0; g < num_groups_; ++g)
      margins[g] = average_output_ ? acc[g] / trees_per_group_[g] : acc[g];
  } else {
    float acc[256];
    margins_row<float>(row, acc);
    for (uint32_t g = 0; g < num_groups_; ++g) margins[g] = acc[g];
  }
}

void GbdtModel::predict_row(const float* row, double* out) const {
  if (double_acc_) {
    double acc[256];
    margins_row<double>(row, acc);
    if (average_output_)
      for (uint32_t g = 0; g < num_groups_; ++g) acc[g] /= trees_per_group_[g];
    finish<double>(acc, out);
  } else {
    float acc[256];
    margins_row<float>(row, acc);
    finish<float>(acc, out);
  }
}

void GbdtModel::predict_batch(const float* rows, size_t n, size_t stride, double* out) const {
  const uint32_t groups = num_groups_;
  const size_t outs = num_outputs_;
  if (double_acc_) {
    std::vector<double> heap_acc;
    double stack_acc[kBlockRows * 4];
    double* acc = stack_acc;
    if (groups > 4) {
      heap_acc.resize(kBlockRows * groups);
      acc = heap_acc.data();
    }
    for (size_t r0 = 0; r0 < n; r0 += kBlockRows) {
      const size_t m = std::min(kBlockRows, n - r0);
      margins_batch<double>(rows + r0 * stride, m, stride, acc);
      for (size_t r = 0; r < m; ++r) {
        double* a = acc + r * groups;
        if (average_output_)
          for (uint32_t g = 0; g < groups; ++g) a[g] /= trees_per_group_[g];
        finish<double>(a, out + (r0 + r) * outs);
      }
    }
  } else {
    std::vector<float> heap_acc;
    float stack_acc[kBlockRows * 4];
    float* acc = stack_acc;
    if (groups > 4) {
      heap_acc.resize(kBlockRows * groups);
      acc = heap_acc.data();
    }
    for (size_t r0 = 0; r0 < n; r0 += kBlockRows) {
      const size_t m = std::min(kBlockRows, n - r0);
      margins_batch<float>(rows + r0 * stride, m, stride, acc);
      for (size_t r = 0; r < m; ++r) finish<float>(acc + r * groups, out + (r0 + r) * outs);
    }
  }
}

GbdtModel::Layout GbdtModel::layout() const {
  if (use_binned_) return Layout::kBinned;
  return padded_depth_ >= 0 ? Layout::kPadded : Layout::kGeneral;
}

const char* GbdtModel::layout_name(Layout layout) {
  switch (layout) {
    case Layout::kBinned:
      return "binned";
    case Layout::kPadded:
      return "padded";
    case Layout::kGeneral:
      break;
  }
  return "general";
}

bool GbdtModel::supports_layout(Layout layout) const {
  switch (layout) {
    case Layout::kBinned:
      return binned_ != nullptr;
    case Layout::kPadded:
      return padded_depth_built_ >= 0;
    case Layout::kGeneral:
      break;
  }
  return true;
}

bool GbdtModel::use_layout(Layout layout) {
  if (!supports_layout(layout)) return false;
  use_binned_ = layout == Layout::kBinned;
  padded_depth_ = layout == Layout::kGeneral ? -1 : padded_depth_built_;
  return true;
}

std::string GbdtModel::summary() const {
  return fmt::format("gbdt ({} {}): {} trees, max depth {}, {} features, {} output(s), {} layout",
                     format_, objective_, num_trees_, max_depth_, feature_names_.size(),
                     num_outputs_, layout_name(layout()));
}

}  // namespace millrace::model
