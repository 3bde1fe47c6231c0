#include "millrace/model/registry.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

namespace millrace::model {
namespace fs = std::filesystem;

namespace {

bool is_number(const std::string& s) {
  return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), ::isdigit);
}

bool version_less(const std::string& a, const std::string& b) {
  if (is_number(a) && is_number(b)) return std::stoll(a) < std::stoll(b);
  if (is_number(a) != is_number(b)) return is_number(a);
  return a < b;
}

bool valid_component(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// model.meta.json "features", when present, name the model's inputs.
Status apply_meta_features(const nlohmann::json& meta, const std::string& where, LoadedModel* lm) {
  if (!meta.is_object() || !meta.contains("features")) return Status::Ok();
  const auto& f = meta["features"];
  if (!f.is_array() || f.size() != lm->model->num_features())
    return Status::Error(
        fmt::format("{}: features: expected an array of {} names (the model's inputs)", where,
                    lm->model->num_features()));
  std::vector<std::string> names;
  for (const auto& n : f) {
    if (!n.is_string()) return Status::Error(where + ": features: expected strings");
    names.push_back(n.get<std::string>());
  }
  lm->features = std::move(names);
  return Status::Ok();
}

}  // namespace

Result<ModelSnapshot> load_model_snapshot(const std::string& path, const std::string& name) {
  auto m = load_model_file(path);
  if (!m.ok()) return m.status();
  auto lm = std::make_shared<LoadedModel>();
  lm->model = std::move(m.value());
  lm->name = name.empty() ? fs::path(path).filename().string() : name;
  lm->path = path;
  lm->features = lm->model->feature_names();
  const fs::path meta_path = fs::path(path).parent_path() / "model.meta.json";
  if (fs::exists(meta_path)) {
    auto text = read_file_to_string(meta_path.string());
    if (!text.ok()) return text.status();
    auto meta = nlohmann::json::parse(*text, nullptr, false);
    Status s = apply_meta_features(meta, meta_path.string(), lm.get());
    if (!s.ok()) return s;
  }
  return ModelSnapshot(std::move(lm));
}

Result<FeatureBinding> bind_features(const LoadedModel& model,
                                     const std::vector<std::string>& spec_features) {
  FeatureBinding b;
  std::vector<std::string> missing;
  for (const auto& f : model.features) {
    auto it = std::find(spec_features.begin(), spec_features.end(), f);
    if (it == spec_features.end()) {
      missing.push_back("\"" + f + "\"");
    } else {
      b.spec_index.push_back(static_cast<size_t>(it - spec_features.begin()));
    }
  }
  if (!missing.empty())
    return Status::Error(fmt::format(
        "model {}{} needs feature{} {} which the spec does not define; add {} to the spec's "
        "features or serve another model",
        model.name, model.version.empty() ? "" : " version " + model.version,
        missing.size() > 1 ? "s" : "", fmt::join(missing, ", "),
        missing.size() > 1 ? "them" : "it"));
  return b;
}

std::string ModelRegistry::promoted_file(const std::string& name) const {
  return (fs::path(root_) / name / "PROMOTED").string();
}

Result<std::vector<std::string>> ModelRegistry::names() const {
  std::error_code ec;
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(root_, ec))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  if (ec) return Status::Error(fmt::format("model registry {}: {}", root_, ec.message()));
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<std::string>> ModelRegistry::versions(const std::string& name) const {
  if (!valid_component(name)) return Status::Error(fmt::format("invalid model name \"{}\"", name));
  std::error_code ec;
  std::vector<std::string> out;
  const fs::path dir = fs::path(root_) / name;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  if (ec)
    return Status::Error(
        fmt::format("model \"{}\" not found in registry {} ({})", name, root_, ec.message()));
  std::sort(out.begin(), out.end(), version_less);
  return out;
}

Result<std::string> ModelRegistry::promoted_version(const std::string& name) const {
  auto vs = versions(name);
  if (!vs.ok()) return vs.status();
  std::ifstream in(promoted_file(name));
  if (in) {
    std::string v;
    std::getline(in, v);
    v = trim(v);
    if (std::find(vs->begin(), vs->end(), v) == vs->end())
      return Status::Error(
          fmt::format("{}: promotes version \"{}\", which does not exist", promoted_file(name), v));
    return v;
  }
  if (vs->empty()) return Status::Error(fmt::format("model \"{}\" has no versions", name));
  return vs->back();
}

Status ModelRegistry::promote(const std::string& name, const std::string& version) const {
  auto info = describe(name, version);
  if (!info.ok()) return info.status();
  const std::string path = promoted_file(name);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << version << "\n";
    if (!out.flush()) return Status::Error(tmp + ": write failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::Error(path + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> ModelRegistry::next_version(const std::string& name) const {
  if (!valid_component(name)) return Status::Error(fmt::format("invalid model name \"{}\"", name));
  long long next = 1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(root_) / name, ec)) {
    const std::string v = e.path().filename().string();
    if (e.is_directory() && is_number(v)) next = std::max(next, std::stoll(v) + 1);
  }
  return std::to_string(next);
}

Result<ModelVersionInfo> ModelRegistry::describe(const std::string& name,
                                                 const std::string& version) const {
  ModelVersionInfo info;
  info.name = name;
  auto promoted = promoted_version(name);
  if (version.empty()) {
    if (!promoted.ok()) return promoted.status();
    info.version = *promoted;
  } else {
    if (!valid_component(version))
      return Status::Error(fmt::format("invalid model version \"{}\"", version));
    info.version = version;
  }
  info.promoted = promoted.ok() && *promoted == info.version;
  info.dir = (fs::path(root_) / name / info.version).string();
  if (!fs::is_directory(info.dir))
    return Status::Error(fmt::format("model \"{}\" has no version \"{}\" (no directory {})", name,
                                     info.version, info.dir));
  for (const char* f : {"model.json", "model.txt"}) {
    if (fs::exists(fs::path(info.dir) / f)) {
      info.model_file = (fs::path(info.dir) / f).string();
      break;
    }
  }
  if (info.model_file.empty())
    return Status::Error(fmt::format("{}: expected a model.json or model.txt", info.dir));
  const fs::path meta = fs::path(info.dir) / "model.meta.json";
  if (fs::exists(meta)) {
    auto text = read_file_to_string(meta.string());
    if (!text.ok()) return text.status();
    info.meta = nlohmann::json::parse(*text, nullptr, false);
    if (info.meta.is_discarded() || !info.meta.is_object())
      return Status::Error(meta.string() + ": expected a JSON object");
  }
  return info;
}

Result<ModelSnapshot> ModelRegistry::load(const std::string& name,
                                          const std::string& version) const {
  auto info = describe(name, version);
  if (!info.ok()) return info.status();
  auto m = load_model_file(info->model_file);
  if (!m.ok()) return m.status();
  auto lm = std::make_shared<LoadedModel>();
  lm->model = std::move(m.value());
  lm->name = name;
  lm->version = info->version;
  lm->path = info->model_file;
  lm->features = lm->model->feature_names();
  Status s =
      apply_meta_features(info->meta, (fs::path(info->dir) / "model.meta.json").string(), lm.get());
  if (!s.ok()) return s;
  return ModelSnapshot(std::move(lm));
}

}  // namespace millrace::model
