// ModelRegistry: models kept on disk as versions under one root directory.
//
// Layout:
//   ROOT/NAME/VERSION/model.json        (or model.txt for LightGBM, or a
//                                        logistic-regression model.json)
//   ROOT/NAME/VERSION/model.meta.json   (written by `millrace train`; optional
//                                        for imported models)
//   ROOT/NAME/PROMOTED                  one line: the promoted VERSION
// Versions are directory names; they sort numerically when they are numbers
// ("2" < "10"), else as strings. With no PROMOTED file the highest version is
// served. promote() replaces PROMOTED atomically (write + rename), which is
// what a ModelWatcher notices.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "millrace/core/status.h"
#include "millrace/model/model_handle.h"

namespace millrace::model {

struct ModelVersionInfo {  // NOLINT(bugprone-exception-escape): json meta's copy may throw
  std::string name, version;
  std::string dir;         // ROOT/NAME/VERSION
  std::string model_file;  // the model file in dir
  nlohmann::json meta;     // model.meta.json, or null
  bool promoted = false;
};

class ModelRegistry {
 public:
  explicit ModelRegistry(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  Result<std::vector<std::string>> names() const;
  Result<std::vector<std::string>> versions(const std::string& name) const;  // ascending
  // The version served by default: PROMOTED, else the highest.
  Result<std::string> promoted_version(const std::string& name) const;
  Status promote(const std::string& name, const std::string& version) const;
  // The next numeric version ("1" for a new name).
  Result<std::string> next_version(const std::string& name) const;

  // version "" = the promoted one.
  Result<ModelVersionInfo> describe(const std::string& name, const std::string& version = "") const;
  Result<ModelSnapshot> load(const std::string& name, const std::string& version = "") const;

  // Path of ROOT/NAME/PROMOTED (watched for changes).
  std::string promoted_file(const std::string& name) const;

 private:
  std::string root_;
};

}  // namespace millrace::model
