// Quality metrics of binary scores against 0/1 labels.
#pragma once

#include <vector>

namespace millrace::model {

// Area under the ROC curve; tied scores count one half. NaN if only one class.
double roc_auc(const std::vector<double>& scores, const std::vector<float>& labels);

// Average precision: sum over positives, in decreasing score order, of the
// precision at that positive's rank (ties grouped), divided by the positives.
// NaN if there is no positive.
double average_precision(const std::vector<double>& scores, const std::vector<float>& labels);

}  // namespace millrace::model
