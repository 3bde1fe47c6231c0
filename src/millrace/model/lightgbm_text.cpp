#include "millrace/model/lightgbm_text.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace millrace::model {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// One "key=value" block (the header, or one tree) with the line of each key.
struct Block {
  std::map<std::string, std::pair<std::string, size_t>> values;
  std::map<std::string, size_t> flags;  // bare lines such as "average_output"
  size_t first_line = 0;
};

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  Status error(size_t line, const std::string& where, const std::string& what) const {
    return Status::Error(fmt::format("{}:{}: {}: {}", origin_, line, where, what));
  }

  Result<std::string> get(const Block& b, const std::string& where, const std::string& key) const {
    auto it = b.values.find(key);
    if (it == b.values.end()) return error(b.first_line, where + "." + key, "missing (required)");
    return it->second.first;
  }

  Result<long> integer(const Block& b, const std::string& where, const std::string& key) const {
    auto v = get(b, where, key);
    if (!v.ok()) return v.status();
    char* end = nullptr;
    const long x = std::strtol(v->c_str(), &end, 10);
    if (v->empty() || *end != '\0')
      return error(b.values.at(key).second, where + "." + key,
                   fmt::format("expected an integer, got \"{}\"", *v));
    return x;
  }

  template <typename T>
  Result<std::vector<T>> list(const Block& b, const std::string& where, const std::string& key,
                              size_t expected) const {
    auto v = get(b, where, key);
    if (!v.ok()) return v.status();
    const size_t line = b.values.at(key).second;
    auto parts = split_spaces(*v);
    if (parts.size() != expected)
      return error(line, where + "." + key,
                   fmt::format("expected {} values, got {}", expected, parts.size()));
    std::vector<T> out;
    out.reserve(expected);
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string s(parts[i]);
      char* end = nullptr;
      if constexpr (std::is_same_v<T, double>) {
        out.push_back(std::strtod(s.c_str(), &end));
      } else {
        out.push_back(static_cast<T>(std::strtoll(s.c_str(), &end, 10)));
      }
      if (*end != '\0')
        return error(line, fmt::format("{}.{}[{}]", where, key, i),
                     fmt::format("expected a number, got \"{}\"", s));
    }
    return out;
  }

 private:
  std::string origin_;
};

Status read_tree(const Parser& p, const Block& b, const std::string& where, uint32_t num_features,
                 Tree* tree) {
  MR_TRY_ASSIGN(num_leaves, p.integer(b, where, "num_leaves"));
  if (num_leaves < 1 || num_leaves > (1 << 24))
    return p.error(b.first_line, where + ".num_leaves", "expected a positive count");
  if (auto it = b.values.find("is_linear"); it != b.values.end() && it->second.first != "0")
    return p.error(it->second.second, where + ".is_linear",
                   "linear trees are not supported; expected 0");
  const auto leaves = static_cast<size_t>(num_leaves);
  MR_TRY_ASSIGN(leaf_value, p.list<double>(b, where, "leaf_value", leaves));
  if (leaves == 1) {
    tree->nodes.resize(1);
    tree->nodes[0].leaf_value = leaf_value[0];
    return Status::Ok();
  }
  const size_t inner = leaves - 1;
  MR_TRY_ASSIGN(feature, p.list<int64_t>(b, where, "split_feature", inner));
  MR_TRY_ASSIGN(threshold, p.list<double>(b, where, "threshold", inner));
  MR_TRY_ASSIGN(decision, p.list<int64_t>(b, where, "decision_type", inner));
  MR_TRY_ASSIGN(left, p.list<int64_t>(b, where, "left_child", inner));
  MR_TRY_ASSIGN(right, p.list<int64_t>(b, where, "right_child", inner));
  long num_cat = 0;
  if (b.values.count("num_cat")) {
    MR_TRY_ASSIGN(nc, p.integer(b, where, "num_cat"));
    num_cat = nc;
  }
  std::vector<int64_t> cat_boundaries, cat_threshold;
  if (num_cat > 0) {
    MR_TRY_ASSIGN(cb, p.list<int64_t>(b, where, "cat_boundaries", num_cat + 1));
    cat_boundaries = std::move(cb);
    MR_TRY_ASSIGN(
        ct, p.list<int64_t>(b, where, "cat_threshold",
                            static_cast<size_t>(std::max<int64_t>(0, cat_boundaries.back()))));
    cat_threshold = std::move(ct);
  }
  // Internal nodes keep their indices; leaf k becomes node inner + k.
  tree->nodes.assign(inner + leaves, TreeNode{});
  auto child = [&](int64_t c) -> int32_t {
    return c >= 0 ? static_cast<int32_t>(c) : static_cast<int32_t>(inner + ~c);
  };
  for (size_t i = 0; i < inner; ++i) {
    const size_t line = b.values.at("split_feature").second;
    for (int64_t c : {left[i], right[i]})
      if (c >= static_cast<int64_t>(inner) || (c < 0 && ~c >= static_cast<int64_t>(leaves)))
        return p.error(b.values.at("left_child").second, fmt::format("{}.left_child[{}]", where, i),
                       fmt::format("child {} is neither a node in [0, {}) nor a leaf ~[0, {})", c,
                                   inner, leaves));
    if (feature[i] < 0 || feature[i] >= num_features)
      return p.error(
          line, fmt::format("{}.split_feature[{}]", where, i),
          fmt::format("expected a feature index in [0, {}), got {}", num_features, feature[i]));
    TreeNode& n = tree->nodes[i];
    n.left = child(left[i]);
    n.right = child(right[i]);
    n.feature = static_cast<uint32_t>(feature[i]);
    const int64_t dt = decision[i];
    const int missing_type = static_cast<int>((dt >> 2) & 3);
    if (dt < 0 || dt > 15 || missing_type == 3)
      return p.error(b.values.at("decision_type").second,
                     fmt::format("{}.decision_type[{}]", where, i),
                     fmt::format("expected bits 0 (categorical), 1 (default left), 2-3 (missing "
                                 "type 0, 1 or 2), got {}",
                                 dt));
    if (dt & 1) {
      n.kind = TreeNode::Kind::kCategorical;
      n.category_left = true;
      const auto cat_idx = static_cast<int64_t>(threshold[i]);
      if (cat_idx < 0 || cat_idx >= num_cat)
        return p.error(b.values.at("threshold").second, fmt::format("{}.threshold[{}]", where, i),
                       fmt::format("expected a categorical split index in [0, {}), got {}", num_cat,
                                   threshold[i]));
      const int64_t begin = cat_boundaries[cat_idx], end = cat_boundaries[cat_idx + 1];
      if (begin < 0 || end < begin || end > static_cast<int64_t>(cat_threshold.size()))
        return p.error(b.values.at("cat_boundaries").second, where + ".cat_boundaries",
                       "expected non-decreasing offsets into cat_threshold");
      for (int64_t w = begin; w < end; ++w)
        for (int bit = 0; bit < 32; ++bit)
          if ((static_cast<uint64_t>(cat_threshold[w]) >> bit) & 1)
            n.categories.push_back(static_cast<uint32_t>((w - begin) * 32 + bit));
      // NaN goes right when the missing type is NaN, else it is read as category 0.
      const bool zero_in_set = !n.categories.empty() && n.categories.front() == 0;
      n.default_left = missing_type == 2 ? false : zero_in_set;
      continue;
    }
    n.kind = TreeNode::Kind::kNumerical;
    n.threshold = lightgbm_threshold_to_float(threshold[i]);
    const bool default_left = (dt & 2) != 0;
    if (missing_type == 0) {
      n.default_left = 0.0 <= threshold[i];  // NaN is read as 0
    } else if (missing_type == 1) {
      n.default_left = default_left;
      n.zero_as_missing = true;
    } else {
      n.default_left = default_left;
    }
  }
  for (size_t k = 0; k < leaves; ++k) tree->nodes[inner + k].leaf_value = leaf_value[k];
  return Status::Ok();
}

}  // namespace

float lightgbm_threshold_to_float(double threshold) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (std::isnan(threshold)) return static_cast<float>(threshold);
  if (threshold >= kMax) return std::numeric_limits<float>::infinity();
  if (threshold < -kMax) return static_cast<float>(-kMax);  // only -inf is <= it
  float f = static_cast<float>(threshold);
  if (static_cast<double>(f) > threshold)
    f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return std::nextafter(f, std::numeric_limits<float>::infinity());
}

Result<TreeEnsemble> parse_lightgbm_text(std::string_view text, const std::string& origin) {
  Parser p(origin);
  // Split into blocks: the header, then one per "Tree=i" line, up to "end of trees".
  std::vector<Block> blocks(1);
  size_t line_no = 0;
  bool saw_end = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = trim(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++line_no;
    if (line_no == 1) {
      if (line != "tree")
        return p.error(1, "(header)", "expected the first line \"tree\" (a LightGBM text model)");
      blocks[0].first_line = 1;
      continue;
    }
    if (line.empty()) continue;
    if (line == "end of trees") {
      saw_end = true;
      break;
    }
    if (line.substr(0, 5) == "Tree=") {
      blocks.emplace_back();
      blocks.back().first_line = line_no;
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      blocks.back().flags[std::string(line)] = line_no;
    } else {
      blocks.back().values[std::string(line.substr(0, eq))] = {std::string(line.substr(eq + 1)),
                                                               line_no};
    }
  }
  if (!saw_end) return p.error(line_no, "(trees)", "expected a line \"end of trees\"");
  const Block& h = blocks[0];
  TreeEnsemble e;
  e.format = "lightgbm";
  e.accumulate_double = true;
  e.average_output = h.flags.count("average_output") > 0;
  MR_TRY_ASSIGN(max_feature_idx, p.integer(h, "header", "max_feature_idx"));
  if (max_feature_idx < 0 || max_feature_idx >= (1 << 24))
    return p.error(h.values.at("max_feature_idx").second, "header.max_feature_idx",
                   "expected an index in [0, 2^24)");
  const auto num_features = static_cast<uint32_t>(max_feature_idx + 1);
  long num_class = 1, per_iteration = 1;
  if (h.values.count("num_class")) {
    MR_TRY_ASSIGN(nc, p.integer(h, "header", "num_class"));
    num_class = nc;
  }
  if (h.values.count("num_tree_per_iteration")) {
    MR_TRY_ASSIGN(pi, p.integer(h, "header", "num_tree_per_iteration"));
    per_iteration = pi;
  }
  if (per_iteration < 1 || per_iteration > 256)
    return p.error(h.first_line, "header.num_tree_per_iteration", "expected 1 to 256");
  e.num_groups = static_cast<uint32_t>(per_iteration);
  e.base_margin.assign(e.num_groups, 0.0);
  if (h.values.count("feature_names")) {
    for (auto name : split_spaces(h.values.at("feature_names").first))
      e.feature_names.emplace_back(name);
    if (e.feature_names.size() != num_features)
      return p.error(h.values.at("feature_names").second, "header.feature_names",
                     fmt::format("expected {} names (max_feature_idx + 1), got {}", num_features,
                                 e.feature_names.size()));
  } else {
    for (uint32_t i = 0; i < num_features; ++i)
      e.feature_names.push_back(fmt::format("Column_{}", i));
  }
  MR_TRY_ASSIGN(objective, p.get(h, "header", "objective"));
  e.objective = objective;
  const auto words = split_spaces(objective);
  const std::string kind = words.empty() ? "" : std::string(words[0]);
  for (size_t i = 1; i < words.size(); ++i)
    if (words[i].substr(0, 8) == "sigmoid:")
      e.sigmoid_scale = std::strtod(std::string(words[i].substr(8)).c_str(), nullptr);
  if (kind == "binary" || kind == "multiclassova") {
    e.transform = OutputTransform::kSigmoidLightgbm;
  } else if (kind == "cross_entropy" || kind == "xentropy") {
    e.transform = OutputTransform::kSigmoidLightgbm;
    e.sigmoid_scale = 1;
  } else if (kind == "multiclass" || kind == "softmax") {
    e.transform = OutputTransform::kSoftmaxLightgbm;
  } else if (kind.substr(0, 10) == "regression" || kind == "huber" || kind == "fair" ||
             kind == "quantile" || kind == "mape") {
    e.transform = OutputTransform::kIdentity;
  } else if (kind == "poisson" || kind == "gamma" || kind == "tweedie") {
    e.transform = OutputTransform::kExpLightgbm;
  } else {
    return p.error(h.values.at("objective").second, "header.objective",
                   fmt::format("unsupported objective \"{}\"; expected binary, multiclass, "
                               "multiclassova, cross_entropy, regression*, huber, fair, quantile, "
                               "mape, poisson, gamma or tweedie",
                               objective));
  }
  if (e.transform == OutputTransform::kSoftmaxLightgbm && num_class != per_iteration)
    return p.error(h.first_line, "header.num_class",
                   fmt::format("expected num_class = num_tree_per_iteration ({}), got {}",
                               per_iteration, num_class));
  e.trees.resize(blocks.size() - 1);
  for (size_t t = 0; t + 1 < blocks.size(); ++t) {
    const std::string where = fmt::format("Tree={}", t);
    e.trees[t].group = static_cast<uint32_t>(t % per_iteration);
    Status s = read_tree(p, blocks[t + 1], where, num_features, &e.trees[t]);
    if (!s.ok()) return s;
  }
  return e;
}

Result<std::shared_ptr<GbdtModel>> load_lightgbm_text(const std::string& path) {
  return GbdtModel::load(path, parse_lightgbm_text);
}

}  // namespace millrace::model
