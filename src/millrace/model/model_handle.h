// The runtime's view of a served model: an immutable LoadedModel (the model
// plus its name, version and feature names), a ModelHandle through which the
// current one is swapped atomically, and the binding of the model's features
// to the pipeline spec's features.
//
// Per event, a worker does:
//   ModelSnapshot m = handle.current();      // cheap: one atomic shared_ptr load
//   fill row[i] = value of spec feature binding.spec_index[i] (NaN if missing)
//   double score = m->model->score(row);
//   output {..., "model": m->name, "model_version": m->version}
// The snapshot keeps its model alive while the event is scored, even if a new
// version is swapped in meanwhile; no event ever sees a half-loaded model.
// A worker that wants to avoid even the atomic load per event may keep its
// snapshot and refresh it when generation() changes (a relaxed counter read).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/model/model.h"

namespace millrace::model {

struct LoadedModel {
  ModelPtr model;
  std::string name;     // registry name, or the file name for a plain file
  std::string version;  // registry version, or "" for a plain file
  std::string path;     // the model file
  // Names of the model's inputs, in row order: model.meta.json "features" when
  // present, else the names in the model file.
  std::vector<std::string> features;
};

using ModelSnapshot = std::shared_ptr<const LoadedModel>;

// Loads a plain model file (any format load_model_file reads) as version "".
Result<ModelSnapshot> load_model_snapshot(const std::string& path, const std::string& name = "");

// Where each model input comes from in the spec's feature list.
struct FeatureBinding {
  std::vector<size_t> spec_index;  // spec_index[i]: spec feature feeding model input i
};

// Binds by name. Every model feature must be a spec feature; the error names
// each missing one, the model and its version.
Result<FeatureBinding> bind_features(const LoadedModel& model,
                                     const std::vector<std::string>& spec_features);

// Holds the current model; safe for any number of concurrent readers and
// writers. swap() publishes a fully built snapshot in one atomic store.
class ModelHandle {
 public:
  explicit ModelHandle(ModelSnapshot initial) : current_(std::move(initial)) {}

  ModelSnapshot current() const { return current_.load(std::memory_order_acquire); }
  void swap(ModelSnapshot next) {
    current_.store(std::move(next), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  // Bumped after each swap.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  std::atomic<ModelSnapshot> current_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace millrace::model
