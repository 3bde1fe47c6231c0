// A run that follows its logs (`millrace run --follow`) with a reference
// table fed by a change source: upserts, deletes and a malformed record
// appended to the change log while the run waits for input change the
// lookups of the transactions appended after them.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/log/topic.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

constexpr int64_t kBase = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
int64_t at_s(int s) {
  return kBase + s * 1000;
}

std::string tx(const std::string& id, const std::string& merchant, int s) {
  return fmt::format(R"({{"id": "{}", "merchant": "{}", "ts": {}}})", id, merchant, at_s(s));
}
std::string upsert(const std::string& merchant, double risk, int s) {
  return fmt::format(R"({{"op": "upsert", "merchant": "{}", "risk": {}, "at": {}}})", merchant,
                     risk, at_s(s));
}
std::string del(const std::string& merchant, int s) {
  return fmt::format(R"({{"op": "delete", "merchant": "{}", "at": {}}})", merchant, at_s(s));
}

void append(log::Topic& topic, uint32_t partition, const std::vector<std::string>& records) {
  std::vector<std::string_view> views(records.begin(), records.end());
  auto r = topic.Append(partition, views, 0);
  ASSERT_TRUE(r.ok()) << r.status().message();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t lines_in(const std::string& path) {
  size_t n = 0;
  for (char c : read_file(path)) n += c == '\n';
  return n;
}

// Waits (up to 30 s) until the file has `n` lines.
bool wait_lines(const std::string& path, size_t n) {
  for (int i = 0; i < 3000 && lines_in(path) < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return lines_in(path) >= n;
}

// What the run gave each transaction: its risk (null: nullopt).
class Vectors {
 public:
  void add(const std::string& id, std::optional<double> risk) {
    std::lock_guard<std::mutex> lock(mu_);
    risk_[id] = risk;
  }
  // Waits (up to 30 s) until `n` transactions have their vector.
  bool wait_for(size_t n) {
    for (int i = 0; i < 3000; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (risk_.size() >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::map<std::string, std::optional<double>> get() {
    std::lock_guard<std::mutex> lock(mu_);
    return risk_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::optional<double>> risk_;
};

TEST(TableFollow, ChangesArrivingWhileTheRunFollowsChangeLaterLookups) {
  // One worker on the source thread (and the sink with it), one worker on
  // its own thread, two workers.
  for (auto [workers, worker_thread] :
       {std::pair{1, false}, std::pair{1, true}, std::pair{2, true}}) {
    SCOPED_TRACE(fmt::format("{} workers, worker thread {}", workers, worker_thread));
    TempDir dir;
    std::ofstream(dir.file("merchants.csv")) << "merchant,risk\nm1,0.1\nm2,0.9\n";
    auto spec = parse_spec(R"Y(sources:
  transactions:
    time: ts
    schema: {id: string, merchant: string, ts: int64}
  merchant_changes:
    time: at
    max_out_of_orderness: 10s
    allowed_lateness: 1m
    schema: {op: string, merchant: string, risk: double?, at: int64}
tables:
  - {name: merchants, path: merchants.csv, key: merchant, source: merchant_changes}
features:
  - {name: risk, expr: "lookup(merchants, merchant).risk"}
)Y",
                           dir.file("spec.yaml"));
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    const std::string tx_log = dir.file("log/transactions");
    const std::string ch_log = dir.file("log/merchant_changes");
    log::TopicOptions two;
    two.partitions = 2;
    auto txs = log::Topic::Create(tx_log, log::TopicOptions{});
    auto changes = log::Topic::Create(ch_log, two);
    ASSERT_TRUE(txs.ok() && changes.ok());

    Vectors seen;
    std::atomic<bool> stop{false};
    RunOptions opts;
    opts.source_inputs = {{"transactions", "log:" + tx_log}, {"merchant_changes", "log:" + ch_log}};
    opts.follow = true;
    opts.stop = &stop;
    opts.workers = workers;
    opts.worker_thread = worker_thread;
    opts.output = dir.file("out.jsonl");
    opts.dead_letter = dir.file("dead.jsonl");
    const int risk = 0;  // the feature's index
    opts.on_vector = [&](const Event& e, const FeatureValue* v) {
      std::optional<double> r;
      if (!v[risk].is_null()) r = v[risk].as_double();
      seen.add(std::string(e.str(e.values[0])), r);
    };
    Result<RunStats> stats = Status::Error("not run");
    std::thread run([&] { stats = run_pipeline(spec.value(), opts); });

    // Before any change: the initial rows.
    append(**txs, 0, {tx("a1", "m1", 0), tx("a2", "m2", 0)});
    ASSERT_TRUE(seen.wait_for(2));
    // While the run waits for more, what it wrote is in the output file.
    EXPECT_TRUE(wait_lines(dir.file("out.jsonl"), 2));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the run waits for input
    // An upsert of m1 from 100 s: a transaction before that time still reads
    // the initial row, the one after it the new one.
    append(**changes, 0, {upsert("m1", 0.5, 100)});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    append(**txs, 0, {tx("b1", "m1", 50), tx("b2", "m1", 150)});
    ASSERT_TRUE(seen.wait_for(4));
    // m1 deleted at 200 s, a malformed record, m2 upserted at 200 s (on the
    // other partition of the change log).
    append(**changes, 0, {del("m1", 200), "not json"});
    append(**changes, 1, {upsert("m2", 0.3, 200)});
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    append(**txs, 0, {tx("c1", "m1", 250), tx("c2", "m2", 250)});
    ASSERT_TRUE(seen.wait_for(6));
    EXPECT_TRUE(wait_lines(dir.file("dead.jsonl"), 1));
    EXPECT_TRUE(wait_lines(dir.file("out.jsonl"), 6));
    // An upsert from 260 s appended before a transaction at 255 s and one
    // at 270 s: only the later one reads it.
    append(**changes, 1, {upsert("m1", 0.8, 260)});
    append(**txs, 0, {tx("d1", "m1", 255), tx("d2", "m1", 270)});
    ASSERT_TRUE(seen.wait_for(8));
    stop.store(true);
    run.join();
    ASSERT_TRUE(stats.ok()) << stats.status().message();

    const std::map<std::string, std::optional<double>> want = {
        {"a1", 0.1},          {"a2", 0.9}, {"b1", 0.1},          {"b2", 0.5},
        {"c1", std::nullopt}, {"c2", 0.3}, {"d1", std::nullopt}, {"d2", 0.8}};
    EXPECT_EQ(seen.get(), want);
    // The malformed change record went to the dead letters, counted.
    EXPECT_EQ(stats->dead_letters, 1u);
    EXPECT_NE(stats->derived.find("table merchants: 4 changes applied, 1 rejected, 0 late"),
              std::string::npos)
        << stats->derived;
    auto dead = nlohmann::json::parse(read_file(dir.file("dead.jsonl")));
    EXPECT_EQ(dead["raw"], "not json");
    EXPECT_EQ(dead["source"], "merchant_changes");
    EXPECT_EQ(dead["table"], "merchants");
    EXPECT_EQ(dead["offset"], 2);  // after the upsert and the delete
    // The output file has every transaction with the same values.
    std::istringstream out(read_file(dir.file("out.jsonl")));
    std::string line;
    size_t n = 0;
    while (std::getline(out, line)) {
      auto j = nlohmann::json::parse(line);
      const auto& w = want.at(j["id"].get<std::string>());
      if (w) {
        EXPECT_EQ(j["risk"], *w) << line;
      } else {
        EXPECT_TRUE(j["risk"].is_null()) << line;
      }
      ++n;
    }
    EXPECT_EQ(n, want.size());
  }
}

}  // namespace
}  // namespace millrace
