// Pipeline throughput: parse-only simdjson loop (the baseline), then the real
// runtime (`run_pipeline`, as `millrace run` runs it) over the same events:
// parse + route with one trivial feature, and the quickstart spec (four
// features over card and merchant) with 1 worker and with all workers.
// Prints events/s (wall clock) and events per CPU-second of the process (all
// its threads: what a core delivers, whatever other processes take of a
// shared machine), each with its ratio to parse-only, and state bytes per key.
//
//   build/pipeline_bench [--events N] [--only typed|trivial|quickstart-1|quickstart-all]
//                        [--spec S.yaml]... [--no-output]
//
// --only runs the parse-only baseline and that one row (for profiling a case).
// --spec adds a row per spec (1 worker) over the same events, e.g. one feature
// of the quickstart alone, to see what each part costs; --no-output runs every
// row without formatting the enriched events (what the output costs).
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <simdjson.h>

#include "millrace/core/event_parser.h"
#include "millrace/sim/transactions.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "parse_only.h"

using namespace millrace;

namespace {

double cpu_seconds();

// The runtime's parser (EventParser: typed fields against the schema, into a
// reused Event) over the same lines, each copied into a padded buffer first as
// the runtime does. Events/s; *cpu_eps: per CPU-second of the loop.
double typed_parse(const std::string& data, const PipelineSpec& spec, uint64_t* accepted,
                   double* cpu_eps) {
  EventParser parser(spec.source.schema, spec.source.time_field);
  Event event;
  std::string line, error;
  const double c0 = cpu_seconds();
  auto start = std::chrono::steady_clock::now();
  size_t pos = 0, n = 0;
  uint64_t ok = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    line.reserve(nl - pos + simdjson::SIMDJSON_PADDING);
    line.assign(data, pos, nl - pos);
    ok += parser.parse(line.data(), line.size(), line.capacity(), &event, &error);
    ++n;
    pos = nl + 1;
  }
  *accepted = ok;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *cpu_eps = n / (cpu_seconds() - c0);
  return n / secs;
}

const char* kTrivialSpec = R"(
source:
  time: ts
  max_out_of_orderness: 5s
  allowed_lateness: 1m
  schema: {id: string, card_id: string, merchant_id: string, amount: double, ts: int64}
features:
  - {name: card_count_1s, key: [card_id], agg: count, window: 1s}
)";

// CPU seconds of the process so far (every thread): events per CPU-second
// leave out the time other processes hold the cores of a shared machine.
double cpu_seconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long peak_rss_kb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t events = 2'000'000;
  std::string only;
  std::vector<std::string> extra_specs;
  bool write_events = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-output") == 0) {
      write_events = false;
      continue;
    }
    if (i + 1 >= argc) break;
    if (std::strcmp(argv[i], "--events") == 0) events = std::stoull(argv[i + 1]);
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
    if (std::strcmp(argv[i], "--spec") == 0) extra_specs.push_back(argv[i + 1]);
  }
  auto wanted = [&](const char* name) {
    return (only.empty() && extra_specs.empty()) || only == name;
  };
  TransactionStreamOptions topts;
  topts.cards = 100'000;
  topts.merchants = 5'000;
  TransactionStream stream(topts);
  std::string data;
  data.reserve(events * 100);
  for (uint64_t i = 0; i < events; ++i) stream.next(&data);
  std::string path = "/tmp/millrace-bench-" + std::to_string(getpid()) + ".jsonl";
  {
    std::ofstream out(path, std::ios::binary);
    out << data;
  }
  unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  std::printf(
      "pipeline benchmark: %llu card transactions (%.1f MB), 100k cards, 5k merchants, %u hardware "
      "threads\n\n",
      static_cast<unsigned long long>(events), data.size() / 1e6, hw);
  if (!write_events) std::printf("enriched events are not formatted (--no-output)\n\n");

  uint64_t checksum = 0;
  double base = 0, base_cpu = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const bench::ParseOnly p = bench::parse_only_loop(data);
    checksum = p.checksum;
    const double cpu_eps = p.per_cpu_second();
    const double eps = p.per_second();
    if (eps > base) {
      base = eps;
      base_cpu = cpu_eps;
    }
  }
  std::printf("%-52s %12s %8s %14s %8s\n", "run", "events/s", "ratio", "per CPU-second", "ratio");
  std::printf("%-52s %12.0f %8.2f %14.0f %8.2f   (baseline; checksum %llu)\n",
              "simdjson parse-only loop, 1 thread", base, 1.0, base_cpu, 1.0,
              static_cast<unsigned long long>(checksum % 1000));

  auto run = [&](const char* name, const PipelineSpec& spec, int workers, RunStats* out) {
    RunOptions opts;
    opts.input = path;
    opts.output = "";  // discard: measure the engine, not the disk
    opts.workers = workers;
    opts.write_events = write_events;
    const double c0 = cpu_seconds();
    auto stats = run_pipeline(spec, opts);
    const double cpu = cpu_seconds() - c0;
    if (!stats.ok()) {
      std::fprintf(stderr, "%s\n", stats.status().message().c_str());
      std::exit(1);
    }
    double eps = stats->records / stats->seconds;
    double eps_cpu = stats->records / cpu;
    std::printf("%-52s %12.0f %8.2f %14.0f %8.2f\n", name, eps, eps / base, eps_cpu,
                eps_cpu / base_cpu);
    if (out) *out = stats.value();
  };
  auto trivial = parse_spec(kTrivialSpec, "trivial");
  auto quick = load_spec(std::string(MILLRACE_SOURCE_DIR) + "/apps/quickstart/spec.yaml");
  if (!trivial.ok() || !quick.ok()) {
    std::fprintf(stderr, "spec: %s%s\n", trivial.status().message().c_str(),
                 quick.status().message().c_str());
    return 1;
  }
  if (wanted("typed")) {
    uint64_t accepted = 0;
    double eps = 0, eps_cpu = 0;
    for (int rep = 0; rep < 3; ++rep) {
      double cpu_eps;
      double e = typed_parse(data, quick.value(), &accepted, &cpu_eps);
      if (e > eps) {
        eps = e;
        eps_cpu = cpu_eps;
      }
    }
    std::printf("%-52s %12.0f %8.2f %14.0f %8.2f   (%llu accepted)\n",
                "EventParser (typed, as the runtime parses), 1 thread", eps, eps / base, eps_cpu,
                eps_cpu / base_cpu, static_cast<unsigned long long>(accepted));
  }
  if (wanted("trivial"))
    run("parse + route, 1 trivial feature, 1 worker", trivial.value(), 1, nullptr);
  RunStats one, all;
  if (wanted("quickstart-1"))
    run("quickstart spec (4 features, 2 keys), 1 worker", quick.value(), 1, &one);
  std::string label = "quickstart spec, " + std::to_string(hw) + " workers (all)";
  if (wanted("quickstart-all")) run(label.c_str(), quick.value(), static_cast<int>(hw), &all);
  for (const std::string& path : extra_specs) {
    auto spec = load_spec(path);
    if (!spec.ok()) {
      std::fprintf(stderr, "spec: %s\n", spec.status().message().c_str());
      return 1;
    }
    std::string name = path.substr(path.find_last_of('/') + 1) + ", 1 worker";
    run(name.c_str(), spec.value(), 1, nullptr);
  }
  if (one.keys)
    std::printf(
        "\nstate: %zu keys (cards + merchants), %.0f bytes per key at the end of the input "
        "(24 h of events kept for the 24 h average)\n",
        one.keys, one.keys ? static_cast<double>(one.state_bytes) / one.keys : 0.0);
  std::printf("peak RSS: %.0f MB\n", peak_rss_kb() / 1024.0);
  std::remove(path.c_str());
  return 0;
}
