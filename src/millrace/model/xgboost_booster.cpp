#include "millrace/model/xgboost_booster.h"

#include <cmath>

#include <fmt/format.h>
#include <xgboost/c_api.h>

namespace millrace::model {
namespace {

Status xgb_error(const char* what) {
  return Status::Error(fmt::format("xgboost {}: {}", what, XGBGetLastError()));
}

}  // namespace

Result<XgbMatrix> XgbMatrix::dense(const float* data, size_t rows, size_t cols) {
  DMatrixHandle h = nullptr;
  if (XGDMatrixCreateFromMat(data, rows, cols, std::nanf(""), &h) != 0) return xgb_error("DMatrix");
  return XgbMatrix(h);
}

XgbMatrix::~XgbMatrix() {
  if (handle_) XGDMatrixFree(handle_);
}

Status XgbMatrix::set_labels(const std::vector<float>& labels) {
  if (XGDMatrixSetFloatInfo(handle_, "label", labels.data(), labels.size()) != 0)
    return xgb_error("labels");
  return Status::Ok();
}

static Status set_strings(void* h, const char* field, const std::vector<std::string>& v) {
  std::vector<const char*> p;
  p.reserve(v.size());
  for (const auto& s : v) p.push_back(s.c_str());
  if (XGDMatrixSetStrFeatureInfo(h, field, p.data(), p.size()) != 0) return xgb_error(field);
  return Status::Ok();
}

Status XgbMatrix::set_feature_names(const std::vector<std::string>& names) {
  return set_strings(handle_, "feature_name", names);
}

Status XgbMatrix::set_feature_types(const std::vector<std::string>& types) {
  return set_strings(handle_, "feature_type", types);
}

Result<XgbBooster> XgbBooster::create(const std::vector<const XgbMatrix*>& cache) {
  std::vector<DMatrixHandle> hs;
  hs.reserve(cache.size());
  for (auto* m : cache) hs.push_back(m->handle());
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(hs.data(), hs.size(), &h) != 0) return xgb_error("booster");
  return XgbBooster(h);
}

Result<XgbBooster> XgbBooster::from_json(const std::string& json) {
  BoosterHandle h = nullptr;
  if (XGBoosterCreate(nullptr, 0, &h) != 0) return xgb_error("booster");
  XgbBooster b(h);
  if (XGBoosterLoadModelFromBuffer(h, json.data(), json.size()) != 0) return xgb_error("load");
  return b;
}

XgbBooster::~XgbBooster() {
  if (handle_) XGBoosterFree(handle_);
}

Status XgbBooster::set_param(const std::string& name, const std::string& value) {
  if (XGBoosterSetParam(handle_, name.c_str(), value.c_str()) != 0)
    return xgb_error(("parameter " + name).c_str());
  return Status::Ok();
}

Status XgbBooster::set_feature_names(const std::vector<std::string>& names) {
  std::vector<const char*> p;
  p.reserve(names.size());
  for (const auto& n : names) p.push_back(n.c_str());
  if (XGBoosterSetStrFeatureInfo(handle_, "feature_name", p.data(), p.size()) != 0)
    return xgb_error("feature names");
  return Status::Ok();
}

Status XgbBooster::update(int iteration, const XgbMatrix& train) {
  if (XGBoosterUpdateOneIter(handle_, iteration, train.handle()) != 0) return xgb_error("update");
  return Status::Ok();
}

Result<std::string> XgbBooster::eval(int iteration, const std::vector<const XgbMatrix*>& sets,
                                     const std::vector<std::string>& names) {
  std::vector<DMatrixHandle> hs;
  std::vector<const char*> ns;
  hs.reserve(sets.size());
  ns.reserve(names.size());
  for (auto* m : sets) hs.push_back(m->handle());
  for (const auto& n : names) ns.push_back(n.c_str());
  const char* out = nullptr;
  if (XGBoosterEvalOneIter(handle_, iteration, hs.data(), ns.data(), hs.size(), &out) != 0)
    return xgb_error("eval");
  return std::string(out);
}

Result<std::string> XgbBooster::save_json() const {
  bst_ulong len = 0;
  const char* out = nullptr;
  if (XGBoosterSaveModelToBuffer(handle_, R"({"format": "json"})", &len, &out) != 0)
    return xgb_error("save");
  return std::string(out, len);
}

Result<std::vector<float>> XgbBooster::predict(const XgbMatrix& m, int type) const {
  const std::string config = fmt::format(
      R"({{"type": {}, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false}})",
      type);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDMatrix(handle_, m.handle(), config.c_str(), &shape, &dim, &out) != 0)
    return xgb_error("predict");
  size_t n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  return std::vector<float>(out, out + n);
}

Result<const float*> XgbBooster::predict_dense(const float* data, size_t rows, size_t cols,
                                               int type) const {
  const std::string array =
      fmt::format(R"({{"data": [{}, true], "shape": [{}, {}], "typestr": "<f4", "version": 3}})",
                  reinterpret_cast<uintptr_t>(data), rows, cols);
  const std::string config = fmt::format(
      R"({{"type": {}, "training": false, "iteration_begin": 0, "iteration_end": 0, "strict_shape": false, "missing": NaN, "cache_id": 0}})",
      type);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDense(handle_, array.c_str(), config.c_str(), nullptr, &shape, &dim,
                                &out) != 0)
    return xgb_error("inplace predict");
  return out;
}

}  // namespace millrace::model
