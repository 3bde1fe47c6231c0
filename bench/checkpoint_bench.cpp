// Checkpoints: duration, size and worker pause for 1,000,000 keys of
// per-event feature state, in memory and in RocksDB, beside the time to write
// and fsync the same bytes with plain write() (the baseline); recovery time
// (restart until the first new event is processed) from those checkpoints;
// and the throughput cost of checkpointing every second, as a ratio to the
// same run without checkpoints.
//
//   build/checkpoint_bench [--keys N] [--events N]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "millrace/sim/transactions.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

using namespace millrace;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Card transactions over `keys` cards, one per card in turn, 1 ms apart: with
// 1 h windows every card is live at the end. Sets *stop after `total` events,
// so the run ends with its state (and takes a last checkpoint) instead of
// flushing it. Replays from the start: a restored run skips what it had read.
class KeyedGenerator : public EventGenerator {
 public:
  KeyedGenerator(const Schema& schema, uint64_t keys, uint64_t total, uint64_t resume_at,
                 std::atomic<bool>* stop)
      : schema_(schema), keys_(keys), total_(total), resume_at_(resume_at), stop_(stop) {}
  bool next(Event* e) override {
    if (i_ == total_) return false;
    if (i_ == resume_at_) first_new_ = Clock::now();
    e->reset(schema_.size());
    e->time = 1'700'000'000'000 + static_cast<TimeMs>(i_);
    key_.assign("card-");
    key_.append(std::to_string(i_ % keys_));
    e->set_string(0, key_);
    e->set_string(1, key_);
    e->values[2].kind = FieldValue::Kind::Double;
    e->values[2].d = static_cast<double>(i_ % 977) / 7.0;
    e->values[3].kind = FieldValue::Kind::Int;
    e->values[3].i = e->time;
    if (++i_ == total_) stop_->store(true);
    return true;
  }
  Clock::time_point first_new() const { return first_new_; }

 private:
  const Schema& schema_;
  uint64_t keys_, total_, resume_at_, i_ = 0;
  std::atomic<bool>* stop_;
  std::string key_;
  Clock::time_point first_new_;
};

const char* kStateSpec = R"(
source:
  time: ts
  max_out_of_orderness: 1s
  schema: {id: string, card_id: string, amount: double, ts: int64}
features:
  - {name: n_1h, key: [card_id], agg: count, window: 1h}
  - {name: avg_1h, key: [card_id], agg: avg, field: amount, window: 1h}
  - {name: max_1h, key: [card_id], agg: max, field: amount, window: 1h}
)";

uint64_t dir_bytes(const std::string& dir, uint64_t* shared = nullptr) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    struct stat st;
    if (!e.is_regular_file() || ::stat(e.path().c_str(), &st) != 0) continue;
    total += st.st_size;
    if (shared && st.st_nlink > 1) *shared += st.st_size;
  }
  return total;
}

// The baseline: write `bytes` to a new file in 1 MB writes and fsync it.
double write_fsync_ms(const std::string& dir, uint64_t bytes) {
  std::string path = dir + "/baseline.bin";
  std::string block(1 << 20, 'x');
  auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (uint64_t done = 0; done < bytes; done += block.size())
    if (::write(fd, block.data(), std::min<uint64_t>(block.size(), bytes - done)) < 0) break;
  ::fsync(fd);
  ::close(fd);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::remove(path.c_str());
  return ms;
}

RunStats run_or_die(const PipelineSpec& spec, const RunOptions& opts) {
  auto stats = run_pipeline(spec, opts);
  if (!stats.ok()) {
    std::fprintf(stderr, "checkpoint_bench: %s\n", stats.status().message().c_str());
    std::exit(1);
  }
  return stats.value();
}

void state_case(const PipelineSpec& spec, const char* backend, uint64_t keys,
                const std::string& root) {
  const std::string dir = root + "/" + backend;
  fs::remove_all(dir);
  std::atomic<bool> stop{false};
  KeyedGenerator gen(spec.source.schema, keys, keys, UINT64_MAX, &stop);
  RunOptions opts;
  opts.generator = &gen;
  opts.output = "";
  opts.workers = 2;
  opts.stop = &stop;
  opts.checkpoint_dir = dir;
  opts.checkpoint_interval_ms = 3'600'000;  // only the first and the last
  opts.state_backend = backend;
  RunStats first = run_or_die(spec, opts);
  const CheckpointStats& c = first.checkpoints;
  std::string last_dir;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("chk-", 0) == 0 && e.path().string() > last_dir)
      last_dir = e.path().string();
  const uint64_t bytes = dir_bytes(last_dir);
  const double base = write_fsync_ms(root, bytes);
  std::printf("%-8s %9.0f ms %9.1f MB %9.0f ms %7.2fx %11.0f ms", backend, c.last_duration_ms,
              bytes / 1e6, base, c.last_duration_ms / base, c.max_pause_ms);
  // Restart: restore, then 1,000 new events.
  std::atomic<bool> stop2{false};
  KeyedGenerator gen2(spec.source.schema, keys, keys + 1000, keys, &stop2);
  opts.generator = &gen2;
  opts.stop = &stop2;
  auto t0 = Clock::now();
  RunStats second = run_or_die(spec, opts);
  const double first_ms = std::chrono::duration<double, std::milli>(gen2.first_new() - t0).count();
  std::printf(" %9.0f ms %9.0f ms", second.checkpoints.recovery_ms, first_ms);
  uint64_t shared = 0;
  std::string newest;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("chk-", 0) == 0 && e.path().string() > newest)
      newest = e.path().string();
  const uint64_t total = dir_bytes(newest, &shared);
  std::printf("   %.1f of %.1f MB new\n", (total - shared) / 1e6, total / 1e6);
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t keys = 1'000'000, events = 1'000'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--keys") == 0) keys = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--events") == 0) events = std::stoull(argv[i + 1]);
  }
  const std::string root = "/tmp/millrace-ckpt-bench-" + std::to_string(getpid());
  fs::create_directories(root);
  auto spec = parse_spec(kStateSpec, "state spec");
  if (!spec.ok()) return 1;

  std::printf(
      "checkpoint benchmark: %llu keys of per-event feature state (count, avg, max over 1 h per "
      "card), 2 workers; baseline: write() + fsync of the same bytes\n\n",
      static_cast<unsigned long long>(keys));
  std::printf("%-8s %12s %12s %12s %8s %14s %12s %12s   %s\n", "state", "checkpoint", "size",
              "baseline", "ratio", "worker pause", "recovery", "first event",
              "incremental (next checkpoint)");
  state_case(spec.value(), "memory", keys, root);
  state_case(spec.value(), "rocksdb", keys, root);

  // Throughput cost of checkpointing every second.
  TransactionStreamOptions topts;
  topts.cards = 100'000;
  topts.merchants = 5'000;
  TransactionStream stream(topts);
  const std::string path = root + "/tx.jsonl";
  {
    std::string data;
    for (uint64_t i = 0; i < events; ++i) stream.next(&data);
    std::ofstream(path, std::ios::binary) << data;
  }
  auto quick = load_spec(std::string(MILLRACE_SOURCE_DIR) + "/apps/quickstart/spec.yaml");
  if (!quick.ok()) return 1;
  std::printf(
      "\nthroughput: quickstart spec (4 features, 2 keys), %llu card transactions from a file, 2 "
      "workers, best of 2\n",
      static_cast<unsigned long long>(events));
  std::printf("%-44s %12s %8s %12s\n", "run", "events/s", "ratio", "checkpoints");
  double base = 0;
  auto run = [&](const char* name, const char* backend, int64_t interval_ms) {
    double best = 0;
    uint64_t count = 0;
    for (int rep = 0; rep < 2; ++rep) {
      RunOptions opts;
      opts.input = path;
      opts.output = "";
      opts.workers = 2;
      if (interval_ms > 0) {
        opts.checkpoint_dir = root + "/tput";
        fs::remove_all(opts.checkpoint_dir);
        opts.checkpoint_interval_ms = interval_ms;
        opts.state_backend = backend;
      }
      RunStats s = run_or_die(quick.value(), opts);
      best = std::max(best, s.records / s.seconds);
      count = s.checkpoints.count;
    }
    if (base == 0) base = best;
    std::printf("%-44s %12.0f %8.2f %12llu%s\n", name, best, best / base,
                static_cast<unsigned long long>(count), interval_ms ? "" : "   (baseline)");
  };
  run("no checkpoints", "memory", 0);
  run("checkpoint every 1 s, in memory", "memory", 1000);
  run("checkpoint every 1 s, rocksdb", "rocksdb", 1000);
  fs::remove_all(root);
  return 0;
}
