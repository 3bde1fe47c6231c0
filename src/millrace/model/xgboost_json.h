// Loader of XGBoost models saved as JSON (XGBoost 1.7 and 2.x, booster "gbtree").
//
// What is read (everything else is ignored):
//   learner.learner_model_param.{base_score, num_class, num_feature}
//       base_score is a string ("5E-1", or "[5E-1]" in newer releases). For
//       logistic objectives it is a probability; the margin added before the
//       trees is -log(1/base_score - 1), computed in float as XGBoost does.
//   learner.objective.name
//       binary:logistic, reg:logistic (sigmoid), reg:squarederror / reg:linear /
//       reg:pseudohubererror / reg:absoluteerror / binary:logitraw (identity;
//       base_score is the margin itself), multi:softprob (softmax), multi:softmax (class index),
//       count:poisson, reg:gamma, reg:tweedie (exp; margin log(base_score)).
//   learner.feature_names (optional; "f0".."fN-1" when absent)
//   learner.gradient_booster.model.{trees, tree_info}
//       per tree: left_children, right_children, split_indices,
//       split_conditions (threshold, or the leaf value at a leaf), default_left,
//       split_type (0 numerical, 1 categorical) with categories,
//       categories_nodes, categories_segments, categories_sizes.
// Splits: x < threshold in float32 goes left; NaN goes to the default child;
// a categorical split sends categories in the set right, all else left.
// JSON extensions XGBoost writes (NaN, Infinity) are accepted.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "millrace/core/status.h"
#include "millrace/model/gbdt.h"
#include "millrace/model/tree_ensemble.h"

namespace millrace::model {

// Parses XGBoost JSON text; `origin` (a file name) prefixes every error, which
// also names the path inside the document and what was expected there.
Result<TreeEnsemble> parse_xgboost_json(std::string_view text, const std::string& origin);

Result<std::shared_ptr<GbdtModel>> load_xgboost_json(const std::string& path);

}  // namespace millrace::model
