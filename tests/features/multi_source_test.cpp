// Several sources in one spec: features of one source read by another's events
// as of their time, checked against a brute-force reference on a randomized
// stream; the online run (several workers) and the backfill give the same
// vectors value for value.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/stream/backfill.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;
using nlohmann::json;

const char* kSpec = R"(
sources:
  transactions:
    time: ts
    max_out_of_orderness: 0s
    schema: {id: string, card_id: string, terminal_id: string, amount: double, ts: int64}
  labels:
    time: reported_at
    max_out_of_orderness: 0s
    schema: {tx_id: string, terminal_id: string, loss: double?, reported_at: int64}
features:
  - {name: card_count_5m, key: card_id, agg: count, window: 5m}
  - {name: card_amount_avg_1h, key: card_id, agg: avg, field: amount, window: 1h}
  - {name: terminal_amount_max_10m, key: terminal_id, agg: max, field: amount, window: 10m}
  - {name: terminal_frauds_1h, source: labels, key: terminal_id, agg: count, window: 1h}
  - {name: terminal_loss_sum_30m, source: labels, key: terminal_id, agg: sum, field: loss, window: 30m}
  - {name: terminal_last_loss, source: labels, key: terminal_id, agg: last, field: loss, window: 2h}
  - {name: terminal_since_fraud, source: labels, key: terminal_id, agg: time_since_last, window: 2h}
  - {name: terminal_loss_max_20m, source: labels, key: [terminal_id], agg: max, field: loss, window: 20m, ttl: 5m}
)";

struct Rec {
  int source;  // 0 transactions, 1 labels
  std::string key_card, key_terminal, id;
  double amount = 0;
  bool has_loss = true;
  TimeMs ts = 0;
  std::string line;
};

// Both sources in time order each, with ties inside and across them.
void make_stream(uint64_t seed, int ntx, int nlabels, std::vector<Rec>* tx,
                 std::vector<Rec>* labels) {
  std::mt19937_64 rng(seed);
  TimeMs t = 1'767'225'600'000;
  for (int i = 0; i < ntx; ++i) {
    t += 1000 * static_cast<TimeMs>(rng() % 4);  // whole seconds: ties
    Rec r;
    r.source = 0;
    r.id = fmt::format("t{}", i);
    r.key_card = fmt::format("c{}", rng() % 40);
    r.key_terminal = fmt::format("m{}", rng() % 12);
    r.amount = static_cast<double>(rng() % 100000) / 100;
    r.ts = t;
    r.line = fmt::format(
        R"({{"id": "{}", "card_id": "{}", "terminal_id": "{}", "amount": {}, "ts": {}}})", r.id,
        r.key_card, r.key_terminal, r.amount, r.ts);
    tx->push_back(std::move(r));
  }
  TimeMs end = t;
  t = tx->front().ts;
  for (int i = 0; i < nlabels; ++i) {
    t += 1000 * static_cast<TimeMs>(rng() % (2 * (end - t) / 1000 / (nlabels - i) + 1));
    Rec r;
    r.source = 1;
    r.id = fmt::format("t{}", rng() % ntx);
    r.key_terminal = fmt::format("m{}", rng() % 12);
    r.has_loss = rng() % 5 != 0;
    r.amount = static_cast<double>(rng() % 50000) / 100;
    r.ts = t;
    r.line =
        fmt::format(R"({{"tx_id": "{}", "terminal_id": "{}", "loss": {}, "reported_at": {}}})",
                    r.id, r.key_terminal, r.has_loss ? fmt::format("{}", r.amount) : "null", r.ts);
    labels->push_back(std::move(r));
  }
}

// The merge rule: smallest event time first, ties to the source listed first.
std::vector<const Rec*> merged(const std::vector<Rec>& tx, const std::vector<Rec>& labels) {
  std::vector<const Rec*> out;
  size_t i = 0, j = 0;
  while (i < tx.size() || j < labels.size()) {
    if (j == labels.size() || (i < tx.size() && tx[i].ts <= labels[j].ts)) {
      out.push_back(&tx[i++]);
    } else {
      out.push_back(&labels[j++]);
    }
  }
  return out;
}

// Brute force: each transaction's expected vector (json null for null).
std::vector<json> reference(const std::vector<const Rec*>& seq) {
  std::vector<json> out;
  for (size_t p = 0; p < seq.size(); ++p) {
    const Rec& e = *seq[p];
    if (e.source != 0) continue;
    const TimeMs t = e.ts;
    json v;
    int64_t c5 = 0, n1h = 0;
    double s1h = 0;
    bool anymax = false;
    double max10 = 0;
    int64_t frauds = 0;
    double loss30 = 0;
    const Rec* last_loss = nullptr;
    const Rec* last_label = nullptr;
    const Rec* max20 = nullptr;
    double m20 = 0;
    TimeMs m20_newest = kMinTime;
    for (size_t q = 0; q <= p; ++q) {
      const Rec& o = *seq[q];
      if (o.ts > t) continue;
      if (o.source == 0) {
        if (o.key_card == e.key_card) {
          if (o.ts > t - 300'000) ++c5;
          if (o.ts > t - 3'600'000) {
            ++n1h;
            s1h += o.amount;
          }
        }
        if (o.key_terminal == e.key_terminal && o.ts > t - 600'000) {
          if (!anymax || o.amount > max10) max10 = o.amount;
          anymax = true;
        }
      } else if (o.key_terminal == e.key_terminal) {
        if (o.ts > t - 3'600'000) ++frauds;
        if (o.ts > t - 1'800'000 && o.has_loss) loss30 += o.amount;
        if (o.ts > t - 7'200'000) {
          if (o.has_loss) last_loss = &o;
          last_label = &o;
        }
        if (o.ts > t - 1'200'000 && o.has_loss) {
          if (!max20 || o.amount > m20) m20 = o.amount;
          max20 = &o;
          m20_newest = std::max(m20_newest, o.ts);
        }
      }
    }
    v["card_count_5m"] = c5;
    v["card_amount_avg_1h"] = s1h / n1h;
    v["terminal_amount_max_10m"] = max10;
    v["terminal_frauds_1h"] = frauds;
    v["terminal_loss_sum_30m"] = loss30;
    v["terminal_last_loss"] = last_loss ? json(last_loss->amount) : json(nullptr);
    v["terminal_since_fraud"] = last_label ? json(t - last_label->ts) : json(nullptr);
    // TTL 5m: null once the newest contributing label is older than that.
    v["terminal_loss_max_20m"] = max20 && m20_newest > t - 300'000 ? json(m20) : json(nullptr);
    v["id"] = e.id;
    out.push_back(v);
  }
  return out;
}

void write_lines(const std::string& path, const std::vector<Rec>& recs) {
  std::ofstream out(path);
  for (const auto& r : recs) out << r.line << "\n";
}

void expect_near(const json& got, const json& want, const std::string& what) {
  if (want.is_null()) {
    EXPECT_TRUE(got.is_null()) << what << ": got " << got;
    return;
  }
  ASSERT_TRUE(got.is_number()) << what << ": got " << got << ", want " << want;
  double g = got.get<double>(), w = want.get<double>();
  EXPECT_LE(std::fabs(g - w), 1e-9 * std::max(1.0, std::fabs(w))) << what;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream ss(line);
  std::string cell;
  while (std::getline(ss, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

class MultiSource : public ::testing::TestWithParam<uint64_t> {};

TEST_P(MultiSource, MatchesReferenceAndBackfillEqualsOnline) {
  TempDir dir;
  std::vector<Rec> tx, labels;
  make_stream(GetParam(), 2500, 300, &tx, &labels);
  write_lines(dir.file("tx.jsonl"), tx);
  write_lines(dir.file("labels.jsonl"), labels);
  auto spec = parse_spec(kSpec, "spec.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto want = reference(merged(tx, labels));

  RunOptions ro;
  ro.source_inputs = {{"transactions", dir.file("tx.jsonl")}, {"labels", dir.file("labels.jsonl")}};
  ro.output = dir.file("out.jsonl");
  ro.workers = 2;
  ro.worker_thread = true;
  auto stats = run_pipeline(spec.value(), ro);
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->accepted, tx.size() + labels.size());
  EXPECT_EQ(stats->other_source_events, labels.size());
  EXPECT_EQ(stats->outputs, tx.size());

  std::vector<json> online;
  {
    std::ifstream in(ro.output);
    std::string line;
    while (std::getline(in, line)) online.push_back(json::parse(line));
  }
  ASSERT_EQ(online.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(online[i]["id"], want[i]["id"]);
    for (auto& [name, w] : want[i].items()) {
      if (name == "id") continue;
      expect_near(online[i][name], w, fmt::format("event {} {}", i, name));
    }
  }

  // The same with the RocksDB state backend and room for 4 keys in memory:
  // reads as of an event's time find the keys moved to RocksDB.
  {
    RunOptions rr = ro;
    rr.output = dir.file("out-rocks.jsonl");
    rr.state_backend = "rocksdb";
    rr.state_cache_keys = 4;
    auto rs = run_pipeline(spec.value(), rr);
    ASSERT_TRUE(rs.ok()) << rs.status().message();
    std::ifstream a(ro.output), b(rr.output);
    std::string la, lb;
    size_t n = 0;
    while (std::getline(a, la)) {
      ASSERT_TRUE(std::getline(b, lb));
      ASSERT_EQ(la, lb) << "line " << n;
      ++n;
    }
    EXPECT_EQ(n, tx.size());
  }

  BackfillOptions bo;
  bo.inputs = ro.source_inputs;
  bo.output = dir.file("train.csv");
  // Labels joined by id: the label records' tx_id names the transaction.
  {
    std::ofstream lf(dir.file("y.jsonl"));
    for (size_t i = 0; i < tx.size(); i += 3)
      lf << fmt::format(R"({{"tx_id": "{}", "is_fraud": {}}})", tx[i].id, i % 2) << "\n";
  }
  bo.labels = dir.file("y.jsonl");
  bo.label_id = "tx_id";
  auto b = run_backfill(spec.value(), bo);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->rows, tx.size());
  EXPECT_EQ(b->labeled, (tx.size() + 2) / 3);
  std::ifstream in(bo.output);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  auto header = split_csv(line);
  ASSERT_EQ(header.back(), "is_fraud");
  size_t row = 0;
  while (std::getline(in, line)) {
    auto cells = split_csv(line);
    ASSERT_EQ(cells.size(), header.size()) << line;
    ASSERT_LT(row, online.size());
    const json& o = online[row];
    EXPECT_EQ(cells[0], o["id"].get<std::string>());
    // Identical, value for value: same text for numbers, empty for null.
    for (size_t c = 5; c + 1 < header.size(); ++c) {
      const json& v = o[header[c]];
      if (v.is_null()) {
        EXPECT_EQ(cells[c], "") << header[c] << " row " << row;
      } else {
        double d = std::stod(cells[c]);
        EXPECT_EQ(d, v.get<double>()) << header[c] << " row " << row;
      }
    }
    std::string want_label = row % 3 == 0 ? std::to_string(row % 2) : "";
    EXPECT_EQ(cells.back(), want_label) << "row " << row;
    ++row;
  }
  EXPECT_EQ(row, tx.size());
}

INSTANTIATE_TEST_SUITE_P(Seeds, MultiSource, ::testing::Values(1, 2, 3, 4, 5));

TEST(MultiSourceSpec, ParsesSourcesByName) {
  auto spec = parse_spec(kSpec, "spec.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->sources.size(), 2u);
  EXPECT_EQ(spec->sources[0].name, "transactions");
  EXPECT_EQ(spec->sources[1].name, "labels");
  EXPECT_EQ(spec->source.name, "transactions");
  EXPECT_EQ(spec->features[3].source, 1);
  EXPECT_EQ(spec->features[3].key_names, std::vector<std::string>{"terminal_id"});
  EXPECT_EQ(spec->features[7].ttl, 300'000);
}

TEST(MultiSourceSpec, ErrorsNameTheSource) {
  auto err = [](const std::string& text) {
    auto s = parse_spec(text, "s.yaml");
    return s.ok() ? std::string() : s.status().message();
  };
  const std::string two = R"(sources:
  a: {time: ts, schema: {k: string, ts: int64}}
  b: {time: at, schema: {k: string, at: int64}}
)";
  EXPECT_EQ(err(two + "features:\n  - {name: x, source: c, key: k, agg: count, window: 1m}\n"),
            "s.yaml:5: feature 'x': source 'c' is not defined (sources: a, b)");
  EXPECT_EQ(err(two + "features:\n  - {name: x, source: b, key: ts, agg: count, window: 1m}\n"),
            "s.yaml:5: feature 'x': key field 'ts' is not in the source schema");
  EXPECT_EQ(err("sources:\n  a: {time: when, schema: {ts: int64}}\n"),
            "s.yaml:2: sources.a.time: field 'when' is not in the schema");
  EXPECT_EQ(err("source: {time: ts, schema: {ts: int64}}\nsources: {}\n"),
            "s.yaml:2: use either 'source:' (one source) or 'sources:' (by name), not both");
  EXPECT_EQ(err(two + "store: memcached://x\n"),
            "s.yaml:4: store: 'memcached://x' (expected embedded or redis://HOST:PORT)");
  // A source without an input is named when the run starts.
  auto spec = parse_spec(two, "s.yaml");
  ASSERT_TRUE(spec.ok());
  RunOptions ro;
  ro.output = "";
  ro.source_inputs = {{"a", "/dev/null"}};
  auto r = run_pipeline(spec.value(), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "source 'b' has no input: give it a `uri:` in the spec or --input b=URI");
  ro.source_inputs = {{"z", "/dev/null"}};
  r = run_pipeline(spec.value(), ro);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "--input z=/dev/null: the spec has no source 'z' (sources: a, b)");
}

}  // namespace
}  // namespace millrace
