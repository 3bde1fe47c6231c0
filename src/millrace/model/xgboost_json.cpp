#include "millrace/model/xgboost_json.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace millrace::model {
namespace {

// Numbers parse straight to float (strtof), so thresholds round exactly as
// XGBoost's own float parser rounds them.
using Json = nlohmann::basic_json<std::map, std::vector, std::string, bool, std::int64_t,
                                  std::uint64_t, float>;

// XGBoost writes NaN and Infinity, which JSON lacks: outside strings NaN
// becomes null and Infinity 1e999 (parsed as infinity).
std::string standardize_json(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool in_string = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < in.size()) {
        out += in[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (in.compare(i, 3, "NaN") == 0) {
      out += "null";
      i += 2;
      continue;
    } else if (in.compare(i, 8, "Infinity") == 0) {
      out += "1e999";
      i += 7;
      continue;
    }
    out += c;
  }
  return out;
}

// Walks a document, building errors that name the file and the JSON path.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  Status error(const std::string& path, const std::string& what) const {
    return Status::Error(fmt::format("{}: {}: {}", origin_, path, what));
  }

  Result<const Json*> member(const Json& obj, const std::string& path, const char* key) const {
    const std::string p = path.empty() ? key : path + "." + key;
    if (!obj.is_object()) return error(path, "expected an object");
    auto it = obj.find(key);
    if (it == obj.end()) return error(p, "missing (required)");
    return &*it;
  }

  // XGBoost writes most scalar parameters as strings ("5E-1", "3").
  Result<double> number(const Json& j, const std::string& path) const {
    if (j.is_number()) return j.get<double>();
    if (j.is_string()) {
      std::string s = j.get<std::string>();
      if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
      char* end = nullptr;
      const double v = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return v;
    }
    return error(path, fmt::format("expected a number (or a number in a string), got {}",
                                   j.dump().substr(0, 40)));
  }

  Result<std::vector<int64_t>> ints(const Json& obj, const std::string& path, const char* key,
                                    size_t expected) const {
    auto m = member(obj, path, key);
    if (!m.ok()) return m.status();
    const Json& a = **m;
    const std::string p = path + "." + key;
    if (!a.is_array() || a.size() != expected)
      return error(p, fmt::format("expected an array of {} integers, got {}", expected,
                                  a.is_array() ? fmt::format("{} elements", a.size())
                                               : std::string(a.type_name())));
    std::vector<int64_t> v;
    v.reserve(expected);
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].is_boolean()) {
        v.push_back(a[i].get<bool>() ? 1 : 0);
      } else if (a[i].is_number_integer()) {
        v.push_back(a[i].get<int64_t>());
      } else {
        return error(fmt::format("{}[{}]", p, i), "expected an integer");
      }
    }
    return v;
  }

  Result<std::vector<float>> floats(const Json& obj, const std::string& path, const char* key,
                                    size_t expected) const {
    auto m = member(obj, path, key);
    if (!m.ok()) return m.status();
    const Json& a = **m;
    const std::string p = path + "." + key;
    if (!a.is_array() || a.size() != expected)
      return error(p, fmt::format("expected an array of {} numbers, got {}", expected,
                                  a.is_array() ? fmt::format("{} elements", a.size())
                                               : std::string(a.type_name())));
    std::vector<float> v;
    v.reserve(expected);
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].is_null()) {
        v.push_back(std::nanf(""));
      } else if (a[i].is_number()) {
        v.push_back(a[i].get<float>());
      } else {
        return error(fmt::format("{}[{}]", p, i), "expected a number");
      }
    }
    return v;
  }

 private:
  std::string origin_;
};

Status read_tree(const Reader& rd, const Json& jt, const std::string& path, uint32_t num_feature,
                 Tree* tree) {
  MR_TRY_ASSIGN(param, rd.member(jt, path, "tree_param"));
  MR_TRY_ASSIGN(num_nodes_j, rd.member(*param, path + ".tree_param", "num_nodes"));
  MR_TRY_ASSIGN(num_nodes_d, rd.number(*num_nodes_j, path + ".tree_param.num_nodes"));
  if (num_nodes_d < 1 || num_nodes_d > 1e8 || num_nodes_d != std::floor(num_nodes_d))
    return rd.error(path + ".tree_param.num_nodes", "expected a positive integer");
  const auto n = static_cast<size_t>(num_nodes_d);
  if (auto leaf_vec = param->find("size_leaf_vector"); leaf_vec != param->end()) {
    MR_TRY_ASSIGN(size, rd.number(*leaf_vec, path + ".tree_param.size_leaf_vector"));
    if (size > 1)
      return rd.error(path + ".tree_param.size_leaf_vector",
                      "vector leaves (multi-target trees) are not supported; expected 0 or 1");
  }
  MR_TRY_ASSIGN(left, rd.ints(jt, path, "left_children", n));
  MR_TRY_ASSIGN(right, rd.ints(jt, path, "right_children", n));
  MR_TRY_ASSIGN(index, rd.ints(jt, path, "split_indices", n));
  MR_TRY_ASSIGN(cond, rd.floats(jt, path, "split_conditions", n));
  MR_TRY_ASSIGN(dleft, rd.ints(jt, path, "default_left", n));
  std::vector<int64_t> split_type(n, 0);
  if (jt.contains("split_type")) {
    MR_TRY_ASSIGN(st, rd.ints(jt, path, "split_type", n));
    split_type = std::move(st);
  }
  // Categorical splits: node ids, and for each a segment of `categories`.
  std::map<int64_t, std::vector<uint32_t>> node_categories;
  if (jt.contains("categories_nodes")) {
    const Json& cn = jt["categories_nodes"];
    if (!cn.is_array()) return rd.error(path + ".categories_nodes", "expected an array");
    const size_t k = cn.size();
    MR_TRY_ASSIGN(nodes, rd.ints(jt, path, "categories_nodes", k));
    MR_TRY_ASSIGN(segments, rd.ints(jt, path, "categories_segments", k));
    MR_TRY_ASSIGN(sizes, rd.ints(jt, path, "categories_sizes", k));
    MR_TRY_ASSIGN(cats_j, rd.member(jt, path, "categories"));
    if (!cats_j->is_array()) return rd.error(path + ".categories", "expected an array");
    MR_TRY_ASSIGN(cats, rd.ints(jt, path, "categories", cats_j->size()));
    for (size_t i = 0; i < k; ++i) {
      if (segments[i] < 0 || sizes[i] < 0 ||
          static_cast<size_t>(segments[i] + sizes[i]) > cats.size())
        return rd.error(fmt::format("{}.categories_segments[{}]", path, i),
                        fmt::format("segment [{}, {}+{}) outside categories (size {})", segments[i],
                                    segments[i], sizes[i], cats.size()));
      std::vector<uint32_t>& set = node_categories[nodes[i]];
      for (int64_t j = segments[i]; j < segments[i] + sizes[i]; ++j) {
        if (cats[j] < 0 || cats[j] >= (1 << 24))
          return rd.error(fmt::format("{}.categories[{}]", path, j),
                          "expected a category in [0, 2^24)");
        set.push_back(static_cast<uint32_t>(cats[j]));
      }
    }
  }
  tree->nodes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    TreeNode& node = tree->nodes[i];
    if (left[i] == -1) {
      if (right[i] != -1)
        return rd.error(fmt::format("{}.right_children[{}]", path, i),
                        "expected -1 (left child is -1, so the node is a leaf)");
      node.kind = TreeNode::Kind::kLeaf;
      node.leaf_value = cond[i];
      continue;
    }
    if (left[i] < 0 || static_cast<size_t>(left[i]) >= n || right[i] < 0 ||
        static_cast<size_t>(right[i]) >= n)
      return rd.error(
          fmt::format("{}.left_children[{}]", path, i),
          fmt::format("expected child indices in [0, {}), got {} and {}", n, left[i], right[i]));
    if (index[i] < 0 || index[i] >= num_feature)
      return rd.error(
          fmt::format("{}.split_indices[{}]", path, i),
          fmt::format("expected a feature index in [0, {}), got {}", num_feature, index[i]));
    node.left = static_cast<int32_t>(left[i]);
    node.right = static_cast<int32_t>(right[i]);
    node.feature = static_cast<uint32_t>(index[i]);
    node.default_left = dleft[i] != 0;
    if (split_type[i] == 0) {
      node.kind = TreeNode::Kind::kNumerical;
      node.threshold = cond[i];
      if (std::isnan(cond[i]))
        return rd.error(fmt::format("{}.split_conditions[{}]", path, i),
                        "expected a threshold, got NaN on a numerical split");
    } else if (split_type[i] == 1) {
      node.kind = TreeNode::Kind::kCategorical;
      node.category_left = false;  // XGBoost: categories in the set go right
      auto it = node_categories.find(static_cast<int64_t>(i));
      if (it == node_categories.end())
        return rd.error(fmt::format("{}.split_type[{}]", path, i),
                        "categorical split without an entry in categories_nodes");
      node.categories = it->second;
    } else {
      return rd.error(
          fmt::format("{}.split_type[{}]", path, i),
          fmt::format("expected 0 (numerical) or 1 (categorical), got {}", split_type[i]));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<TreeEnsemble> parse_xgboost_json(std::string_view text, const std::string& origin) {
  Reader rd(origin);
  Json doc = Json::parse(standardize_json(text), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return rd.error("(document)", "expected valid JSON");
  MR_TRY_ASSIGN(learner, rd.member(doc, "", "learner"));
  MR_TRY_ASSIGN(lmp, rd.member(*learner, "learner", "learner_model_param"));
  const std::string lmp_path = "learner.learner_model_param";
  MR_TRY_ASSIGN(base_score_j, rd.member(*lmp, lmp_path, "base_score"));
  MR_TRY_ASSIGN(base_score, rd.number(*base_score_j, lmp_path + ".base_score"));
  MR_TRY_ASSIGN(num_feature_j, rd.member(*lmp, lmp_path, "num_feature"));
  MR_TRY_ASSIGN(num_feature_d, rd.number(*num_feature_j, lmp_path + ".num_feature"));
  if (num_feature_d < 0 || num_feature_d > (1 << 24))
    return rd.error(lmp_path + ".num_feature", "expected a feature count in [0, 2^24]");
  const auto num_feature = static_cast<uint32_t>(num_feature_d);
  double num_class = 0;
  if (lmp->contains("num_class")) {
    MR_TRY_ASSIGN(nc, rd.number((*lmp)["num_class"], lmp_path + ".num_class"));
    num_class = nc;
  }
  if (lmp->contains("num_target")) {
    MR_TRY_ASSIGN(nt, rd.number((*lmp)["num_target"], lmp_path + ".num_target"));
    if (nt > 1)
      return rd.error(lmp_path + ".num_target",
                      "multi-target models are not supported; expected 1");
  }

  TreeEnsemble e;
  e.format = "xgboost";
  MR_TRY_ASSIGN(obj, rd.member(*learner, "learner", "objective"));
  MR_TRY_ASSIGN(obj_name, rd.member(*obj, "learner.objective", "name"));
  if (!obj_name->is_string()) return rd.error("learner.objective.name", "expected a string");
  e.objective = obj_name->get<std::string>();
  const auto bs = static_cast<float>(base_score);
  float margin = bs;
  const std::string& o = e.objective;
  if (o == "binary:logistic" || o == "reg:logistic") {
    if (!(bs > 0.0f && bs < 1.0f))
      return rd.error(lmp_path + ".base_score", "expected a probability in (0, 1)");
    margin = -std::log(1.0f / bs - 1.0f);
    e.transform = OutputTransform::kSigmoidXgboost;
  } else if (o == "reg:squarederror" || o == "reg:linear" || o == "reg:pseudohubererror" ||
             o == "reg:absoluteerror" || o == "binary:logitraw") {
    e.transform = OutputTransform::kIdentity;
  } else if (o == "multi:softprob" || o == "multi:softmax") {
    e.transform =
        o == "multi:softprob" ? OutputTransform::kSoftmaxXgboost : OutputTransform::kArgmaxXgboost;
  } else if (o == "count:poisson" || o == "reg:gamma" || o == "reg:tweedie") {
    if (!(bs > 0.0f)) return rd.error(lmp_path + ".base_score", "expected a positive number");
    margin = std::log(bs);
    e.transform = OutputTransform::kExpXgboost;
  } else {
    return rd.error("learner.objective.name",
                    fmt::format("unsupported objective \"{}\"; expected one of binary:logistic, "
                                "reg:logistic, binary:logitraw, reg:squarederror, multi:softprob, "
                                "multi:softmax, count:poisson, reg:gamma, reg:tweedie",
                                o));
  }
  e.num_groups = num_class > 1 ? static_cast<uint32_t>(num_class) : 1;
  if (e.num_groups > 256) return rd.error(lmp_path + ".num_class", "expected at most 256 classes");
  e.base_margin.assign(e.num_groups, margin);

  if (auto names = learner->find("feature_names");
      names != learner->end() && names->is_array() && !names->empty()) {
    if (names->size() != num_feature)
      return rd.error(
          "learner.feature_names",
          fmt::format("expected {} names (num_feature), got {}", num_feature, names->size()));
    for (size_t i = 0; i < names->size(); ++i) {
      if (!(*names)[i].is_string())
        return rd.error(fmt::format("learner.feature_names[{}]", i), "expected a string");
      e.feature_names.push_back((*names)[i].get<std::string>());
    }
  } else {
    for (uint32_t i = 0; i < num_feature; ++i) e.feature_names.push_back(fmt::format("f{}", i));
  }

  MR_TRY_ASSIGN(gb, rd.member(*learner, "learner", "gradient_booster"));
  MR_TRY_ASSIGN(gb_name, rd.member(*gb, "learner.gradient_booster", "name"));
  if (!gb_name->is_string() || gb_name->get<std::string>() != "gbtree")
    return rd.error("learner.gradient_booster.name",
                    fmt::format("expected \"gbtree\" (dart and gblinear are not supported), got {}",
                                gb_name->dump()));
  MR_TRY_ASSIGN(model, rd.member(*gb, "learner.gradient_booster", "model"));
  const std::string model_path = "learner.gradient_booster.model";
  MR_TRY_ASSIGN(trees, rd.member(*model, model_path, "trees"));
  if (!trees->is_array()) return rd.error(model_path + ".trees", "expected an array of trees");
  MR_TRY_ASSIGN(tree_info, rd.ints(*model, model_path, "tree_info", trees->size()));
  e.trees.resize(trees->size());
  for (size_t t = 0; t < trees->size(); ++t) {
    const std::string path = fmt::format("{}.trees[{}]", model_path, t);
    if (tree_info[t] < 0 || tree_info[t] >= e.num_groups)
      return rd.error(
          fmt::format("{}.tree_info[{}]", model_path, t),
          fmt::format("expected a class in [0, {}), got {}", e.num_groups, tree_info[t]));
    e.trees[t].group = static_cast<uint32_t>(tree_info[t]);
    Status s = read_tree(rd, (*trees)[t], path, num_feature, &e.trees[t]);
    if (!s.ok()) return s;
  }
  return e;
}

Result<std::shared_ptr<GbdtModel>> load_xgboost_json(const std::string& path) {
  return GbdtModel::load(path, parse_xgboost_json);
}

}  // namespace millrace::model
