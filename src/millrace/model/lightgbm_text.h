// Loader of LightGBM models saved in LightGBM's text format (model.txt).
//
// Read from the header: num_class, num_tree_per_iteration, max_feature_idx,
// objective, feature_names, average_output. Objectives: binary (sigmoid:s),
// cross_entropy / xentropy (sigmoid), multiclass (softmax), multiclassova
// (sigmoid per class), regression* / huber / fair / quantile / mape (identity),
// poisson / gamma / tweedie (exp). Per "Tree=i" block: num_leaves, num_cat,
// split_feature, threshold, decision_type, left_child, right_child,
// leaf_value, cat_boundaries, cat_threshold. Child index c < 0 means leaf ~c.
// Trees go round-robin to the num_tree_per_iteration outputs.
//
// Split semantics (decision_type bits: 0 categorical, 1 default left,
// 2-3 missing type 0 none / 1 zero / 2 NaN):
//  - numerical: x <= threshold goes left, compared in double. As the input is
//    a float, this equals x < t' in float with t' the successor of the largest
//    float <= threshold, which is what the compiled scorer stores.
//  - missing none: NaN is treated as 0.0; zero: NaN and |x| <= 1e-35 take the
//    default direction; NaN: NaN takes the default direction.
//  - categorical: NaN and negative values go right; int(x) in the bitset goes left.
// Leaves are summed in double, as LightGBM does.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "millrace/core/status.h"
#include "millrace/model/gbdt.h"
#include "millrace/model/tree_ensemble.h"

namespace millrace::model {

Result<TreeEnsemble> parse_lightgbm_text(std::string_view text, const std::string& origin);

Result<std::shared_ptr<GbdtModel>> load_lightgbm_text(const std::string& path);

// The float t such that, for every float x, x < t exactly when (double)x <= threshold.
float lightgbm_threshold_to_float(double threshold);

}  // namespace millrace::model
