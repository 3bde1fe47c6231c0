#include "millrace/model/model.h"

#include <sys/stat.h>

#include <cstdio>
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
  // One read into a string of the file's size (a stream copied through an
  // ostringstream grew and copied the text several times: a measurable part
  // of a pipeline's start with a few MB of batch files).
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::Error(path + ": cannot open for reading");
  std::string text;
  struct stat st;
  if (::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode))
    text.resize(static_cast<size_t>(st.st_size));
  size_t got = std::fread(text.data(), 1, text.size(), f);
  text.resize(got);
  // A file that grew, or one whose size is not known (a pipe): the rest.
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Status::Error(path + ": read error");
  return text;
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
