// GBDT scoring: millrace's compiled scorer against the XGBoost C API (in-place
// dense prediction, one thread), on the same models and rows in the same run.
//
// Models: 100, 300 and 1000 trees of depth 6 over 50 features, trained here
// through the C API (binary:logistic). For each: single-row latency
// p50/p99/p99.9 and batch (1024 rows) throughput, with the ratio millrace /
// XGBoost, and the largest difference between the two predictions.
//
// Latency: every call is timed on its own with the time-stamp counter (lfence;
// rdtsc), minus the cost of an empty timing measured in the same run, and
// converted to ns with the counter's rate measured against steady_clock. Calls
// run in rounds of consecutive calls to one engine (warm caches, as when a
// stream processor scores event after event), the rounds of the two engines
// alternating so both see the same machine load. Throughput is rows per second
// of process CPU time (so time other processes hold the core is not counted),
// the best of alternating rounds.
//
// Usage: model_bench [--quick]   (--quick: fewer timed calls)
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <xgboost/c_api.h>

#include "millrace/model/gbdt.h"
#include "millrace/model/xgboost_booster.h"
#include "millrace/model/xgboost_json.h"

namespace {

using Clock = std::chrono::steady_clock;
using millrace::model::GbdtModel;
using millrace::model::XgbBooster;
using millrace::model::XgbMatrix;

constexpr size_t kFeatures = 50;
constexpr size_t kBatch = 1024;
volatile double g_sink;

void die(const std::string& what) {
  std::fprintf(stderr, "model_bench: %s\n", what.c_str());
  std::exit(1);
}

std::vector<float> random_rows(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(n * kFeatures);
  for (auto& v : x) v = u(rng) < 0.05f ? std::nanf("") : g(rng);
  return x;
}

inline uint64_t ticks() {
  _mm_lfence();  // earlier instructions complete before the counter is read
  const uint64_t t = __rdtsc();
  _mm_lfence();  // and later ones start after it
  return t;
}

// The counter's rate and the cost of an empty ticks() pair, measured in this run.
struct TickClock {
  double ns_per_tick = 0;
  double overhead_ticks = 0;

  static TickClock measure() {
    TickClock c;
    const auto w0 = Clock::now();
    const uint64_t t0 = ticks();
    while (Clock::now() - w0 < std::chrono::milliseconds(200)) {
    }
    const uint64_t t1 = ticks();
    const auto w1 = Clock::now();
    c.ns_per_tick = std::chrono::duration<double, std::nano>(w1 - w0).count() / (t1 - t0);
    std::vector<uint64_t> empty(20000);
    for (auto& e : empty) {
      const uint64_t a = ticks();
      e = ticks() - a;
    }
    std::sort(empty.begin(), empty.end());
    c.overhead_ticks = static_cast<double>(empty[empty.size() / 2]);
    return c;
  }
};

struct Latency {
  double p50_us, p99_us, p999_us;
};

Latency percentiles(std::vector<double>& ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[static_cast<size_t>(q * (ns.size() - 1))] / 1000.0; };
  return {at(0.50), at(0.99), at(0.999)};
}

// Times `calls` single calls of a and of b, each call on its own, in
// alternating rounds of `round` consecutive calls to one of them.
template <typename A, typename B>
std::pair<Latency, Latency> time_single(const TickClock& clock, A&& a, B&& b, size_t calls,
                                        size_t round) {
  std::vector<double> na, nb;
  na.reserve(calls);
  nb.reserve(calls);
  auto run = [&](auto&& f, std::vector<double>& out, size_t first, size_t n) {
    for (size_t i = 0; i < 64; ++i) f(first + i);  // warm the caches after the other engine
    for (size_t i = 0; i < n; ++i) {
      const uint64_t t0 = ticks();
      f(first + i);
      const uint64_t t1 = ticks();
      out.push_back(std::max(0.0, (t1 - t0 - clock.overhead_ticks) * clock.ns_per_tick));
    }
  };
  for (size_t done = 0; done < calls; done += round) {
    const size_t n = std::min(round, calls - done);
    run(a, na, done, n);
    run(b, nb, done, n);
  }
  return {percentiles(na), percentiles(nb)};
}

// CPU time of this process, in seconds: unlike wall time, it does not count
// the time other processes of a shared machine hold the core.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Rows per CPU second of a and b, each the best of `rounds` alternating rounds
// of `reps` batches.
template <typename A, typename B>
std::pair<double, double> batch_throughput(A&& a, B&& b, int rounds, int reps) {
  double best_a = 0, best_b = 0;
  a(), b();  // warm up
  for (int round = 0; round < rounds; ++round) {
    const double t0 = cpu_seconds();
    for (int i = 0; i < reps; ++i) a();
    const double t1 = cpu_seconds();
    for (int i = 0; i < reps; ++i) b();
    const double t2 = cpu_seconds();
    best_a = std::max(best_a, reps * kBatch / (t1 - t0));
    best_b = std::max(best_b, reps * kBatch / (t2 - t1));
  }
  return {best_a, best_b};
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP reads OMP_NUM_THREADS when libxgboost loads: re-run with it set.
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (!omp || std::strcmp(omp, "1") != 0) {
    setenv("OMP_NUM_THREADS", "1", 1);
    execv("/proc/self/exe", argv);
    die("cannot re-exec with OMP_NUM_THREADS=1");
  }
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;

  // Training data: a label that depends on many features, so depth-6 trees fill out.
  const size_t train_rows = 8000;
  std::vector<float> x = random_rows(train_rows, 1);
  std::vector<float> y(train_rows);
  std::mt19937 rng(2);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  for (size_t r = 0; r < train_rows; ++r) {
    const float* row = &x[r * kFeatures];
    double s = noise(rng);
    for (size_t c = 0; c < kFeatures; ++c)
      if (!std::isnan(row[c])) s += (c % 2 ? 0.3 : -0.2) * row[c] * (c % 5 == 0 ? row[c] : 1.0f);
    y[r] = s > 0 ? 1.0f : 0.0f;
  }
  auto dtrain = XgbMatrix::dense(x.data(), train_rows, kFeatures);
  if (!dtrain.ok() || !dtrain->set_labels(y).ok()) die("training matrix");
  auto full = XgbBooster::create({&dtrain.value()});
  if (!full.ok()) die(full.status().message());
  for (auto [k, v] : {std::pair{"objective", "binary:logistic"},
                      {"max_depth", "6"},
                      {"eta", "0.1"},
                      {"nthread", "1"},
                      {"tree_method", "hist"}}) {
    if (!full->set_param(k, v).ok()) die(std::string("param ") + k);
  }
  std::fprintf(stderr, "training 1000 trees of depth 6 over %zu features ...\n", kFeatures);
  for (int i = 0; i < 1000; ++i)
    if (!full->update(i, *dtrain).ok()) die("training");

  const std::vector<float> rows = random_rows(4096, 3);
  const TickClock clock = TickClock::measure();
  std::printf("GBDT scoring, depth 6, %zu features, binary:logistic; XGBoost %s\n", kFeatures,
              "C API XGBoosterPredictFromDense, nthread=1, OMP_NUM_THREADS=1");
  std::printf(
      "latency: each call timed alone (rdtsc, %.3f ns/tick; empty timing of %.0f ns "
      "subtracted)\n",
      clock.ns_per_tick, clock.overhead_ticks * clock.ns_per_tick);
  std::printf("%-5s | %-7s | %-27s | %-27s | %-6s | %-7s | %-33s | %-5s | %s\n", "trees", "layout",
              "millrace p50/p99/p99.9 us", "xgboost p50/p99/p99.9 us", "ratio", "p99/p50",
              "batch 1024 rows/cpu-s millrace/xgb", "ratio", "max |diff|, margins bit-equal");
  for (int trees : {100, 300, 1000}) {
    BoosterHandle sliced = nullptr;
    if (XGBoosterSlice(full->handle(), 0, trees, 1, &sliced) != 0) die(XGBGetLastError());
    bst_ulong len = 0;
    const char* buf = nullptr;
    if (XGBoosterSaveModelToBuffer(sliced, R"({"format": "json"})", &len, &buf) != 0)
      die(XGBGetLastError());
    const std::string json(buf, len);
    XGBoosterFree(sliced);
    auto ref = XgbBooster::from_json(json);
    if (!ref.ok() || !ref->set_param("nthread", "1").ok()) die("reference booster");
    auto ensemble = millrace::model::parse_xgboost_json(json, "bench");
    if (!ensemble.ok()) die(ensemble.status().message());
    auto compiled = GbdtModel::compile(std::move(ensemble.value()));
    if (!compiled.ok()) die(compiled.status().message());
    const GbdtModel& m = **compiled;

    // Equality on 4096 rows: outputs of the batch path, margins of the row path.
    std::vector<double> mine(4096);
    m.predict_batch(rows.data(), 4096, kFeatures, mine.data());
    auto want = ref->predict_dense(rows.data(), 4096, kFeatures, 0);
    if (!want.ok()) die(want.status().message());
    double max_diff = 0;
    for (size_t i = 0; i < 4096; ++i)
      max_diff = std::max(max_diff, std::fabs(mine[i] - (*want)[i]));
    auto want_margin = ref->predict_dense(rows.data(), 4096, kFeatures, 1);
    if (!want_margin.ok()) die(want_margin.status().message());
    size_t margins_equal = 0;
    for (size_t i = 0; i < 4096; ++i) {
      double margin = 0;
      m.predict_margin_row(&rows[i * kFeatures], &margin);
      margins_equal += static_cast<float>(margin) == (*want_margin)[i];
    }

    const size_t calls = (quick ? 4000 : 40000) / (trees >= 1000 ? 4 : 1);
    auto [ours, theirs] = time_single(
        clock, [&](size_t i) { g_sink = m.score(&rows[(i % 4096) * kFeatures]); },
        [&](size_t i) {
          auto p = ref->predict_dense(&rows[(i % 4096) * kFeatures], 1, kFeatures, 0);
          g_sink = **p;
        },
        calls, 1000);
    std::vector<double> out(kBatch);
    size_t offset = 0;
    const int reps = std::max(1, 300 / trees);
    auto [ours_tp, theirs_tp] = batch_throughput(
        [&] {
          offset = (offset + kBatch) % (4096 - kBatch + 1);
          m.predict_batch(&rows[offset * kFeatures], kBatch, kFeatures, out.data());
          g_sink = out[0];
        },
        [&] {
          offset = (offset + kBatch) % (4096 - kBatch + 1);
          auto p = ref->predict_dense(&rows[offset * kFeatures], kBatch, kFeatures, 0);
          g_sink = **p;
        },
        quick ? 5 : 20, reps);
    std::printf(
        "%-5d | %-7s | %7.2f / %7.2f / %7.2f | %7.2f / %7.2f / %7.2f | %5.1fx | %7.2f | %14.0f / "
        "%-16.0f | %4.1fx | %.2g, %zu/4096\n",
        trees, GbdtModel::layout_name(m.layout()), ours.p50_us, ours.p99_us, ours.p999_us,
        theirs.p50_us, theirs.p99_us, theirs.p999_us, theirs.p50_us / ours.p50_us,
        ours.p99_us / ours.p50_us, ours_tp, theirs_tp, ours_tp / theirs_tp, max_diff,
        margins_equal);
    std::fflush(stdout);
  }
  std::printf("targets: >= 10x on one row with p99 <= 2x p50; >= 4x on batches; diff <= 1e-6\n");
  return 0;
}
