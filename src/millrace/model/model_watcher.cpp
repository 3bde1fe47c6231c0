#include "millrace/model/model_watcher.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include <fmt/format.h>

namespace millrace::model {
namespace {

std::atomic<uint64_t> g_sighups{0};
constexpr std::chrono::milliseconds kSighupTick{20};
struct sigaction g_previous_sighup {};
std::once_flag g_sighup_once;

void on_sighup(int sig, siginfo_t* info, void* ctx) {
  g_sighups.fetch_add(1, std::memory_order_relaxed);
  if (g_previous_sighup.sa_flags & SA_SIGINFO) {
    if (g_previous_sighup.sa_sigaction) g_previous_sighup.sa_sigaction(sig, info, ctx);
  } else if (g_previous_sighup.sa_handler != SIG_DFL && g_previous_sighup.sa_handler != SIG_IGN &&
             g_previous_sighup.sa_handler != nullptr) {
    g_previous_sighup.sa_handler(sig);
  }
}

// Modification time (ns) and size of a file, or "-" if absent.
std::string file_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "-";
  return fmt::format("{}.{}:{}", st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_size);
}

}  // namespace

void ModelWatcher::install_sighup_handler() {
  std::call_once(g_sighup_once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sighup;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, &g_previous_sighup);
  });
}

Result<std::unique_ptr<ModelWatcher>> ModelWatcher::watch_registry(ModelRegistry registry,
                                                                   std::string name,
                                                                   WatchOptions options) {
  std::unique_ptr<ModelWatcher> w(new ModelWatcher());
  w->registry_ = std::make_unique<ModelRegistry>(std::move(registry));
  w->name_ = std::move(name);
  w->options_ = std::move(options);
  if (Status st = w->start(); !st.ok()) return st;
  return w;
}

Result<std::unique_ptr<ModelWatcher>> ModelWatcher::watch_file(std::string path,
                                                               WatchOptions options) {
  std::unique_ptr<ModelWatcher> w(new ModelWatcher());
  w->path_ = std::move(path);
  w->options_ = std::move(options);
  if (Status st = w->start(); !st.ok()) return st;
  return w;
}

Status ModelWatcher::start() {
  if (options_.watch_sighup) install_sighup_handler();
  seen_sighups_ = g_sighups.load();
  served_stamp_ = stamp();
  auto first = load_target();
  if (!first.ok()) return first.status();
  if (options_.validate) {
    if (Status s = options_.validate(**first); !s.ok()) return s;
  }
  handle_ = std::make_shared<ModelHandle>(*first);
  if (options_.on_swap) options_.on_swap(nullptr, *first);
  thread_ = std::thread([this] { run(); });
  return Status::Ok();
}

ModelWatcher::~ModelWatcher() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<ModelSnapshot> ModelWatcher::load_target() const {
  if (registry_) return registry_->load(name_);
  return load_model_snapshot(path_);
}

std::string ModelWatcher::stamp() const {
  if (!registry_) return file_stamp(path_);
  std::string s = file_stamp(registry_->promoted_file(name_));
  if (auto info = registry_->describe(name_); info.ok())
    s += "|" + info->version + "|" + file_stamp(info->model_file);
  return s;
}

std::string ModelWatcher::last_error() const {
  std::lock_guard<std::mutex> lock(error_mu_);
  return last_error_;
}

Status ModelWatcher::reload() {
  std::lock_guard<std::mutex> lock(reload_mu_);
  const std::string stamp_before = stamp();
  auto next = load_target();
  Status s = next.ok() ? Status::Ok() : next.status();
  if (s.ok() && options_.validate) s = options_.validate(**next);
  if (!s.ok()) {
    std::lock_guard<std::mutex> el(error_mu_);
    last_error_ = s.message();
    served_stamp_ = stamp_before;  // do not retry the same broken files every poll
    return s;
  }
  served_stamp_ = stamp_before;
  ModelSnapshot old = handle_->current();
  handle_->swap(*next);
  reloads_.fetch_add(1);
  {
    std::lock_guard<std::mutex> el(error_mu_);
    last_error_.clear();
  }
  if (options_.on_swap) options_.on_swap(old, *next);
  return Status::Ok();
}

void ModelWatcher::run() {
  // SIGHUP is checked every tick; the files every poll_interval.
  const auto tick = std::min<std::chrono::milliseconds>(options_.poll_interval, kSighupTick);
  auto next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stop_) {
    stop_cv_.wait_for(lock, tick, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    bool want = false;
    const uint64_t hups = g_sighups.load();
    if (options_.watch_sighup && hups != seen_sighups_) {
      seen_sighups_ = hups;
      want = true;
    }
    if (std::chrono::steady_clock::now() >= next_poll) {
      next_poll = std::chrono::steady_clock::now() + options_.poll_interval;
      std::string served;
      {
        std::lock_guard<std::mutex> rl(reload_mu_);
        served = served_stamp_;
      }
      if (stamp() != served) want = true;
    }
    if (want) (void)reload();
    lock.lock();
  }
}

}  // namespace millrace::model
