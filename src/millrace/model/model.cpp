#include "millrace/model/model.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "millrace/model/lightgbm_text.h"
#include "millrace/model/linear.h"
#include "millrace/model/xgboost_json.h"

namespace millrace::model {

double Model::score(const float* row) const {
  if (num_outputs() == 1) {
    double out;
    predict_row(row, &out);
    return out;
  }
  std::vector<double> out(num_outputs());
  predict_row(row, out.data());
  return out[0];
}

Result<std::string> read_file_to_string(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::Error(path + ": read error");
  return ss.str();
}

Result<ModelPtr> load_model_file(const std::string& path) {
  auto text = read_file_to_string(path);
  if (!text.ok()) return text.status();
  const std::string& s = *text;
  size_t i = s.find_first_not_of(" \t\r\n");
  if (i == std::string::npos) return Status::Error(path + ": empty file; expected a model");
  if (s.compare(i, 4, "tree") == 0) {
    auto e = parse_lightgbm_text(s, path);
    if (!e.ok()) return e.status();
    auto m = GbdtModel::compile(std::move(e.value()));
    if (!m.ok()) return Status::Error(path + ": " + m.status().message());
    return ModelPtr(std::move(m.value()));
  }
  if (s[i] == '{') {
    // XGBoost documents hold "learner" near the top; anything else is linear.
    if (s.find("\"learner\"") != std::string::npos) {
      auto e = parse_xgboost_json(s, path);
      if (!e.ok()) return e.status();
      auto m = GbdtModel::compile(std::move(e.value()));
      if (!m.ok()) return Status::Error(path + ": " + m.status().message());
      return ModelPtr(std::move(m.value()));
    }
    auto m = LogisticModel::parse(s, path);
    if (!m.ok()) return m.status();
    return ModelPtr(std::move(m.value()));
  }
  return Status::Error(path +
                       ": unrecognised model format; expected XGBoost JSON, millrace logistic "
                       "regression JSON or LightGBM text (first line \"tree\")");
}

}  // namespace millrace::model
