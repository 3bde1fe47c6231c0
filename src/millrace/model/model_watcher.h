// ModelWatcher: keeps a ModelHandle serving the promoted version of a
// registry model (or the content of a plain model file), reloading it when
//  - the registry's NAME/PROMOTED file, or the served model file, changes
//    (checked every poll_interval by the watcher's thread),
//  - the process receives SIGHUP (if watch_sighup; noticed within 20 ms), or
//  - reload() is called (e.g. by the HTTP server for POST /v1/models/reload).
// A reload loads and validates the new version completely before one atomic
// swap; if loading or validation fails, the handle keeps the old model and the
// error is returned by reload() and kept in last_error().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "millrace/core/status.h"
#include "millrace/model/model_handle.h"
#include "millrace/model/registry.h"

namespace millrace::model {

struct WatchOptions {
  std::chrono::milliseconds poll_interval{200};
  bool watch_sighup = true;
  // Run on every candidate before it is swapped in, e.g. bind_features against
  // the spec; an error keeps the old model.
  std::function<Status(const LoadedModel&)> validate;
  // Called after each successful swap (old may be null on first load).
  std::function<void(const ModelSnapshot& old_model, const ModelSnapshot& new_model)> on_swap;
};

class ModelWatcher {
 public:
  // Serves registry model `name` (its promoted version) through a new handle.
  static Result<std::unique_ptr<ModelWatcher>> watch_registry(ModelRegistry registry,
                                                              std::string name,
                                                              WatchOptions options = {});
  // Serves the model file at `path`, reloading it when the file changes.
  static Result<std::unique_ptr<ModelWatcher>> watch_file(std::string path,
                                                          WatchOptions options = {});
  ~ModelWatcher();  // stops the thread

  const std::shared_ptr<ModelHandle>& handle() const { return handle_; }

  // Loads what should be served now (the promoted version, or the file) and
  // swaps it in. Thread-safe; reloads are serialised. Returns the error that
  // kept the old model, if any.
  Status reload();

  uint64_t reloads() const { return reloads_.load(); }  // successful swaps
  std::string last_error() const;

  // Installs the process-wide SIGHUP handler (idempotent). Watchers with
  // watch_sighup call it; a previously installed handler is still called.
  static void install_sighup_handler();

 private:
  ModelWatcher() = default;
  // Loads and validates the first model, then starts the watching thread.
  Status start();
  Result<ModelSnapshot> load_target() const;
  std::string stamp() const;  // changes when the watched files change
  void run();

  std::unique_ptr<ModelRegistry> registry_;
  std::string name_, path_;
  WatchOptions options_;
  std::shared_ptr<ModelHandle> handle_;
  std::mutex reload_mu_;
  std::string served_stamp_;
  std::atomic<uint64_t> reloads_{0};
  mutable std::mutex error_mu_;
  std::string last_error_;
  uint64_t seen_sighups_ = 0;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace millrace::model
