// GBDT scoring: millrace's compiled scorer against the XGBoost C API (in-place
// dense prediction, one thread), on the same models and rows in the same run.
//
// Models: 100, 300 and 1000 trees of depth 6 over 50 features, trained here
// through the C API (binary:logistic). For each: single-row latency p50/p99 and
// batch (1024 rows) throughput, with the ratio millrace / XGBoost, and the
// largest difference between the two predictions. The two are measured
// alternately (call by call, round by round) so both see the same machine load;
// throughput is the best round of each.
//
// Usage: model_bench [--quick]   (--quick: fewer timed calls)
#include <unistd.h>

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

struct Latency {
  double p50_us, p99_us;
};

Latency percentiles(std::vector<double>& ns) {
  std::sort(ns.begin(), ns.end());
  return {ns[ns.size() / 2] / 1000.0, ns[ns.size() * 99 / 100] / 1000.0};
}

// Times single calls of a and b alternately, so both see the same machine load.
template <typename A, typename B>
std::pair<Latency, Latency> time_single(A&& a, B&& b, size_t calls) {
  std::vector<double> na(calls), nb(calls);
  for (size_t i = 0; i < calls / 10; ++i) a(i), b(i);  // warm up
  for (size_t i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    a(i);
    const auto t1 = Clock::now();
    b(i);
    const auto t2 = Clock::now();
    na[i] = std::chrono::duration<double, std::nano>(t1 - t0).count();
    nb[i] = std::chrono::duration<double, std::nano>(t2 - t1).count();
  }
  return {percentiles(na), percentiles(nb)};
}

// Rows per second of a and b, each the best of `rounds` alternating rounds of
// `reps` batches (the least disturbed round on a shared machine).
template <typename A, typename B>
std::pair<double, double> batch_throughput(A&& a, B&& b, int rounds, int reps) {
  double best_a = 0, best_b = 0;
  a(), b();  // warm up
  for (int round = 0; round < rounds; ++round) {
    auto t0 = Clock::now();
    for (int i = 0; i < reps; ++i) a();
    auto t1 = Clock::now();
    for (int i = 0; i < reps; ++i) b();
    auto t2 = Clock::now();
    best_a = std::max(best_a, reps * kBatch / std::chrono::duration<double>(t1 - t0).count());
    best_b = std::max(best_b, reps * kBatch / std::chrono::duration<double>(t2 - t1).count());
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
  std::printf("GBDT scoring, depth 6, %zu features, binary:logistic; XGBoost %s\n", kFeatures,
              "C API XGBoosterPredictFromDense, nthread=1, OMP_NUM_THREADS=1");
  std::printf("%-6s | %-27s | %-27s | %-7s | %-34s | %-6s | %s\n", "trees",
              "millrace 1 row p50/p99 us", "xgboost 1 row p50/p99 us", "ratio",
              "batch 1024 rows/s millrace / xgboost", "ratio", "max |diff|");
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

    // Equality on 4096 rows, batch path against XGBoost.
    std::vector<double> mine(4096);
    m.predict_batch(rows.data(), 4096, kFeatures, mine.data());
    auto want = ref->predict_dense(rows.data(), 4096, kFeatures, 0);
    if (!want.ok()) die(want.status().message());
    double max_diff = 0;
    for (size_t i = 0; i < 4096; ++i)
      max_diff = std::max(max_diff, std::fabs(mine[i] - (*want)[i]));

    const size_t calls = (quick ? 4000 : 40000) / (trees >= 1000 ? 4 : 1);
    auto [ours, theirs] =
        time_single([&](size_t i) { g_sink = m.score(&rows[(i % 4096) * kFeatures]); },
                    [&](size_t i) {
                      auto p = ref->predict_dense(&rows[(i % 4096) * kFeatures], 1, kFeatures, 0);
                      g_sink = **p;
                    },
                    calls);
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
        "%-6d | %10.2f / %-14.2f | %10.2f / %-14.2f | %6.1fx | %14.0f / %-17.0f | %5.1fx | %.2g\n",
        trees, ours.p50_us, ours.p99_us, theirs.p50_us, theirs.p99_us, theirs.p50_us / ours.p50_us,
        ours_tp, theirs_tp, ours_tp / theirs_tp, max_diff);
    std::fflush(stdout);
  }
  std::printf("targets: >= 10x on one row with p99 <= 2x p50; >= 4x on batches; diff <= 1e-6\n");
  return 0;
}
