// millrace bench: measures the engine alone on events made in memory.
#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

#include "command.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

namespace millrace::cli {
namespace {

struct WindowBenchArgs {
  uint64_t events = 10'000'000;
  uint64_t keys = 100'000;
  std::string type = "tumbling";
  int64_t size = 60'000, slide = 0, gap = 0;
  int workers = 0;
};

// Keys uniform at random; event time advances 1 ms every 1000 events. Key
// strings are written with std::to_chars (snprintf cost a tenth of the run,
// and a table of the strings a cache miss per event), random numbers come
// from SplitMix64 (std::mt19937_64 cost 5%): the engine is what is measured.
class WindowBenchEvents : public EventGenerator {
 public:
  WindowBenchEvents(uint64_t n, uint64_t keys) : n_(n), keys_(keys) {}
  bool next(Event* e) override {
    if (i_ == n_) return false;
    e->reset(3);
    e->time = 1'767'225'600'000 + static_cast<TimeMs>(i_ / 1000);
    char buf[24] = {'k'};
    const auto r = std::to_chars(buf + 1, buf + sizeof buf, next_random() % keys_);
    e->set_string(0, std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
    e->values[1].kind = FieldValue::Kind::Double;
    e->values[1].d = static_cast<double>(next_random() % 10000) / 100;
    e->values[2].kind = FieldValue::Kind::Int;
    e->values[2].i = e->time;
    ++i_;
    return true;
  }
  // Events are all there: the runtime hands them on in batches.
  bool may_wait() const override { return false; }

 private:
  uint64_t n_, keys_, i_ = 0;
  uint64_t state_ = 42;
  uint64_t next_random() {  // SplitMix64
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }
};

double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Measure the engine on events made in memory");
  bench->footer(
      "Example:\n"
      "  millrace bench windows --events 2000000 --keys 100000 --workers 1\n"
      "The other benchmarks are programs in build/ run by `make bench` (docs/benchmarks.md).\n");
  bench->require_subcommand(1);
  auto a = std::make_shared<WindowBenchArgs>();
  auto* w = bench->add_subcommand(
      "windows", "A count+sum window through the real runtime (queues, watermarks, operators)");
  w->add_option("--events", a->events, "Events (default 10000000)");
  w->add_option("--keys", a->keys, "Distinct keys, chosen uniformly at random (default 100000)");
  w->add_option("--type", a->type, "tumbling | hopping | session (default tumbling)")
      ->check(CLI::IsMember({"tumbling", "hopping", "session"}));
  w->add_option("--size", a->size, "Window size in ms (default 60000)");
  w->add_option("--slide", a->slide, "Hopping slide in ms");
  w->add_option("--gap", a->gap, "Session gap in ms");
  w->add_option("--workers", a->workers, "Worker threads (default: one per hardware thread)");
  w->footer(
      "Event time advances 1 ms every 1000 events and the watermark follows every event.\n"
      "Prints events/s (wall, per CPU-second of the process and of the threads running the\n"
      "window), peak RSS and state bytes per key.\n"
      "Example:\n"
      "  millrace bench windows --events 10000000 --keys 100000 --type hopping --size 60000 "
      "--slide 1000");
  w->callback([a] {
    std::string window;
    if (a->type == "tumbling") {
      window = fmt::format("type: tumbling, size: {}ms", a->size);
    } else if (a->type == "hopping") {
      if (a->slide <= 0) throw CommandError("--type hopping needs --slide MS", 2);
      window = fmt::format("type: hopping, size: {}ms, slide: {}ms", a->size, a->slide);
    } else {
      if (a->gap <= 0) throw CommandError("--type session needs --gap MS", 2);
      window = fmt::format("type: session, gap: {}ms", a->gap);
    }
    std::string text = fmt::format(
        "source:\n  time: ts\n  max_out_of_orderness: 0s\n  schema: {{key: string, amount: "
        "double, ts: int64}}\nwindows:\n  - {{name: w, key: [key], {}, aggs: [{{name: n, agg: "
        "count}}, {{name: total, agg: sum, field: amount}}]}}\n",
        window);
    auto spec = parse_spec(text, "bench");
    if (!spec.ok()) throw CommandError(spec.status().message());
    WindowBenchEvents events(a->events, a->keys);
    RunOptions opts;
    opts.generator = &events;
    opts.output = "";
    opts.workers = a->workers;
    double cpu0 = cpu_seconds();
    auto stats = run_pipeline(spec.value(), opts);
    if (!stats.ok()) throw CommandError(stats.status().message());
    double cpu = cpu_seconds() - cpu0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    // The threads running the window operator: the worker threads, and the
    // source thread when it runs worker 0.
    double worker_cpu = 0;
    for (double c : stats->worker_cpu_seconds) worker_cpu += c;
    const size_t first_thread = stats->workers - stats->worker_cpu_seconds.size();
    const bool inline_worker = first_thread > 0;
    if (inline_worker) worker_cpu += stats->source_cpu_seconds;
    std::string threads = fmt::format("source {:.2f}", stats->source_cpu_seconds);
    for (size_t i = 0; i < stats->worker_cpu_seconds.size(); ++i)
      threads += fmt::format(", worker {} {:.2f}", first_thread + i, stats->worker_cpu_seconds[i]);
    if (stats->sink_cpu_seconds > 0)
      threads += fmt::format(", sink {:.2f}", stats->sink_cpu_seconds);
    std::printf(
        "%s window (%s), %llu events, %llu keys, %d workers\n"
        "  %.0f events/s wall, %.0f events per CPU-second (process), %.2f s\n"
        "  %.0f events per CPU-second of the %s (CPU seconds: %s)\n"
        "  %llu window results; peak RSS %.0f MB; state at the end of the input: %.1f bytes "
        "per key (%zu keys)\n",
        a->type.c_str(), window.c_str(), static_cast<unsigned long long>(a->events),
        static_cast<unsigned long long>(a->keys), stats->workers, stats->records / stats->seconds,
        stats->records / cpu, stats->seconds, stats->records / worker_cpu,
        inline_worker ? "source thread, which runs worker 0, and the worker threads"
                      : "worker threads (all their CPU time)",
        threads.c_str(), static_cast<unsigned long long>(stats->window_results),
        ru.ru_maxrss / 1024.0, stats->keys ? double(stats->state_bytes) / stats->keys : 0.0,
        stats->keys);
  });
}

CommandRegistrar reg("bench", register_bench);

}  // namespace
}  // namespace millrace::cli
