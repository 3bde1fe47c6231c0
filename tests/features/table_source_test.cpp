// Reference tables fed by a spec source (`tables: [{..., source: NAME}]`):
// the spec errors, and a randomized out-of-order stream of transactions and
// change records (out of order, late, malformed) through run_pipeline with 1
// and 2 workers and through the backfill, against a brute force that merges
// the two streams by the documented rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/features/derived_features.h"
#include "millrace/stream/backfill.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

const char* kSources = R"(sources:
  transactions:
    time: ts
    schema: {id: string, merchant: string, amount: double, ts: int64}
  merchant_changes:
    time: at
    schema: {op: string, merchant: string, risk: double?, country: string?, at: int64}
)";

std::string error_of(const std::string& text) {
  auto spec = parse_spec(std::string(kSources) + text, "s.yaml");
  return spec.ok() ? "" : spec.status().message();
}

TEST(TableSource, SpecErrorsNameTheFieldAndWhatWasExpected) {
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_chngs}\n"),
            "s.yaml:9: table 't': source 'merchant_chngs' is not defined (expected an entry of "
            "'sources:' whose events are the change records; sources: transactions, "
            "merchant_changes)");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes, "
                     "changes: c.jsonl}\n"),
            "s.yaml:9: table 't': give either 'source' (an entry of 'sources:' whose events are "
            "the change records) or 'changes' (a file or log of them), not both");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant_id, source: merchant_changes}\n"),
            "s.yaml:9: table 't': source 'merchant_changes' has no field 'merchant_id' (the "
            "table's key); expected its schema to hold the key, the op field and the columns");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes, "
                     "op: action}\n"),
            "s.yaml:9: table 't': source 'merchant_changes' has no string field 'action' (the op "
            "field: upsert or delete); add it to the source's schema, or name another with "
            "'op:'");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes, "
                     "time: at}\n"),
            "s.yaml:9: table 't': 'time' comes from the source (its time field); remove it");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes, "
                     "columns: {risk: int64?}}\n"),
            "s.yaml:9: table 't': column 'risk' is int64 here but double in source "
            "'merchant_changes''s schema");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes, "
                     "columns: {score: double?}}\n"),
            "s.yaml:9: table 't': column 'score' is not a field of source 'merchant_changes' "
            "(expected every column in the source's schema)");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes}\n"
                     "  - {name: u, key: merchant, source: merchant_changes}\n"),
            "s.yaml:10: table 'u': source 'merchant_changes' already feeds table 't' (expected "
            "one table per source)");
  EXPECT_EQ(error_of("tables:\n  - {name: t, key: merchant, source: merchant_changes}\n"
                     "features:\n  - {name: n, source: merchant_changes, key: merchant, agg: "
                     "count, window: 1m}\n"),
            "s.yaml:11: feature 'n': source 'merchant_changes' feeds a table (its records are "
            "the table's change records); features and windows are defined on the other "
            "sources");
  // A source schema without an op field at all.
  auto spec = parse_spec(R"(sources:
  tx: {time: ts, schema: {id: string, merchant: string, ts: int64}}
  changes: {time: at, schema: {merchant: string, risk: double?, at: int64}}
tables:
  - {name: t, key: merchant, source: changes}
)",
                         "s.yaml");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            "s.yaml:5: table 't': source 'changes' has no string field 'op' (the op field: upsert "
            "or delete); add it to the source's schema, or name another with 'op:'");
  // Valid: the columns are the source's fields but the op and the time; the
  // scored source is the first that feeds no table.
  auto ok = parse_spec(R"(sources:
  merchant_changes: {time: at, schema: {op: string, merchant: string, risk: double?, at: int64}}
  tx: {time: ts, schema: {id: string, merchant: string, ts: int64}}
tables:
  - {name: merchants, key: merchant, source: merchant_changes}
features:
  - {name: risk, expr: "lookup(merchants, merchant).risk"}
)",
                       "s.yaml");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  ASSERT_EQ(ok->sources.size(), 1u);
  EXPECT_EQ(ok->sources[0].name, "tx");
  ASSERT_EQ(ok->table_sources.size(), 1u);
  const TableSpec& t = ok->derived->tables[0];
  EXPECT_EQ(t.source, "merchant_changes");
  EXPECT_EQ(t.time, "at");
  ASSERT_EQ(t.columns.size(), 2u);
  EXPECT_EQ(t.columns[0].name, "merchant");
  EXPECT_EQ(t.columns[1].name, "risk");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

// Settings of the two sources (the spec below says the same).
constexpr TimeMs kTxOoo = 2000, kTxLateness = 4000;
constexpr TimeMs kChOoo = 3000, kChLateness = 2000;

struct Row {
  std::optional<double> risk;
  std::optional<std::string> country;
};

struct Change {
  TimeMs t = 0;
  std::string merchant;
  bool del = false;
  Row row;
};

struct Tx {
  std::string id, merchant;
  TimeMs t;
};

// A change record line: a change, or a malformed record (valid is false).
struct ChangeLine {
  std::string text;
  bool malformed = false;
  Change change;  // when not malformed
};

// Transactions and change records of 6 merchants, both out of order, with
// late records in both and malformed change records.
struct RandomCase {
  std::vector<Tx> txs;
  std::vector<ChangeLine> changes;
  std::map<std::string, Row> initial;

  explicit RandomCase(uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    const TimeMs base = 1'767'225'600'000;
    for (int i = 0; i < 500; ++i) {
      Tx tx{"e" + std::to_string(i), "m" + std::to_string(pick(6)),
            base + i * 400 - pick(30) * 100};
      if (pick(40) == 0) tx.t -= 8000;  // late, mostly
      txs.push_back(tx);
    }
    const char* countries[] = {"FR", "DE", "ES"};
    for (int m = 0; m < 6; ++m)
      if (pick(3) != 0)
        initial["m" + std::to_string(m)] = {pick(100) / 100.0, std::string(countries[pick(3)])};
    TimeMs t = base;
    for (int i = 0; i < 120; ++i) {
      t += pick(30) * 100;  // times in 100 ms steps: ties with transactions
      ChangeLine c;
      const int kind = pick(30);
      if (kind < 2) {
        c.malformed = true;
        const char* bad[] = {
            "{\"op\": \"upsert\", \"merchant\": \"m1\", \"risk\": \"high\", \"at\": {t}}",
            "not json at all",
            "{\"op\": \"rename\", \"merchant\": \"m2\", \"at\": {t}}",
            "{\"op\": \"delete\", \"at\": {t}}",
            "{\"op\": \"upsert\", \"merchant\": \"m3\", \"at\": \"yesterday\"}",
        };
        c.text = bad[pick(5)];
        if (auto p = c.text.find("{t}"); p != std::string::npos)
          c.text.replace(p, 3, std::to_string(t));
        changes.push_back(c);
        continue;
      }
      c.change.t = t;
      if (kind < 8) c.change.t -= pick(60) * 100;  // out of order: some within lateness, some late
      if (kind == 8) c.change.t -= 20000;          // late
      c.change.merchant = "m" + std::to_string(pick(6));
      c.change.del = pick(5) == 0;
      if (c.change.del) {
        c.text = fmt::format("{{\"op\": \"delete\", \"merchant\": \"{}\", \"at\": {}}}",
                             c.change.merchant, c.change.t);
      } else {
        if (pick(4) != 0) c.change.row.risk = pick(100) / 100.0;
        if (pick(4) != 0) c.change.row.country = countries[pick(3)];
        c.text = fmt::format(
            "{{\"op\": \"upsert\", \"merchant\": \"{}\", \"risk\": {}, \"country\": {}, \"at\": "
            "{}}}",
            c.change.merchant, c.change.row.risk ? fmt::format("{}", *c.change.row.risk) : "null",
            c.change.row.country ? "\"" + *c.change.row.country + "\"" : "null", c.change.t);
      }
      changes.push_back(c);
    }
    // After the last transaction: read only at the end of the input.
    t = base + 500 * 400 + 5000;
    for (const char* text :
         {"{\"op\": \"upsert\", \"merchant\": \"m1\", \"risk\": 0.5, \"at\": {t}}",
          "{\"op\": \"upsert\", \"merchant\": \"m2\", \"at\": {old}}",
          "not json after the last transaction",
          "{\"op\": \"delete\", \"merchant\": \"m1\", \"at\": {t}}"}) {
      ChangeLine c;
      c.text = text;
      c.malformed = c.text[0] != '{';
      if (!c.malformed) {
        c.change.merchant = c.text.find("m1") != std::string::npos ? "m1" : "m2";
        c.change.del = c.text.find("delete") != std::string::npos;
        c.change.t = c.text.find("{old}") != std::string::npos ? t - 20000 : t;
        if (c.change.merchant == "m1" && !c.change.del) c.change.row.risk = 0.5;
        const size_t p = c.text.find('{', 1);
        c.text.replace(p, c.text.find('}', p) - p + 1, std::to_string(c.change.t));
      }
      changes.push_back(c);
    }
  }
};

// What the documented rule gives: the merged stream (a change with time <= t
// goes before a transaction at t; each stream in its own order), lateness
// per source against its own watermark, and a transaction at t reading its
// merchant's row as of t among the changes before it in that order (of two
// at one time, the later one).
struct Expected {
  std::map<std::string, Row> rows;  // accepted transaction id -> what it reads
  size_t accepted = 0, late_tx = 0;
  std::vector<std::string> dead, late_changes;  // raw change records
  size_t applied = 0;
};

// The change records come from a spec source (`source:`, with a watermark
// and a late policy) or a `changes:` file (every well-formed record applied).
enum class Form { Source, Changes };

// After the last transaction the change records are read to their end: their
// malformed and late records are reported, the others applied.
Expected brute_force(const RandomCase& rc, Form form = Form::Source) {
  Expected ex;
  std::vector<Change> applied;
  std::optional<TimeMs> tx_max, ch_max;
  size_t next = 0;
  std::optional<Change> pending;
  // Applies the changes with time <= t (all of them: nullopt).
  auto advance = [&](std::optional<TimeMs> t) {
    for (;;) {
      if (!pending) {
        if (next == rc.changes.size()) break;
        const ChangeLine& c = rc.changes[next++];
        if (c.malformed) {
          ex.dead.push_back(c.text);
          continue;
        }
        if (form == Form::Source && ch_max && c.change.t < *ch_max - kChOoo - kChLateness) {
          ex.late_changes.push_back(c.text);
          continue;
        }
        ch_max = std::max(ch_max.value_or(c.change.t), c.change.t);
        pending = c.change;
      }
      if (t && pending->t > *t) break;
      applied.push_back(*pending);
      pending.reset();
    }
  };
  for (const Tx& tx : rc.txs) {
    if (tx_max && tx.t < *tx_max - kTxOoo - kTxLateness) {
      ++ex.late_tx;
      continue;
    }
    ++ex.accepted;
    advance(tx.t);
    tx_max = std::max(tx_max.value_or(tx.t), tx.t);
    Row row;
    std::optional<TimeMs> at;
    if (auto it = rc.initial.find(tx.merchant); it != rc.initial.end()) row = it->second;
    for (const Change& c : applied) {
      if (c.merchant != tx.merchant || c.t > tx.t || (at && c.t < *at)) continue;
      at = c.t;
      row = c.del ? Row{} : c.row;
    }
    ex.rows[tx.id] = row;
  }
  advance(std::nullopt);
  ex.applied = applied.size();
  return ex;
}

std::optional<double> num(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  return v.get<double>();
}
std::optional<std::string> str(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  return v.get<std::string>();
}

// The spec of the random cases: the table fed by the merchant_changes source
// (late change records to the late output, or dropped), or by a `changes:` file.
std::string case_spec(Form form, bool side_output,
                      const std::string& features =
                          "  - {name: n_5s, key: merchant, agg: count, "
                          "window: 5s}\n") {
  std::string s = R"Y(sources:
  transactions:
    time: ts
    max_out_of_orderness: 2s
    allowed_lateness: 4s
    schema: {id: string, merchant: string, amount: double, ts: int64}
)Y";
  if (form == Form::Source) {
    s += R"Y(  merchant_changes:
    time: at
    max_out_of_orderness: 3s
    allowed_lateness: 2s
)Y";
    if (side_output) s += "    late: side_output\n";
    s += R"Y(    schema: {op: string, merchant: string, risk: double?, country: string?, at: int64}
tables:
  - {name: merchants, path: merchants.csv, key: merchant, source: merchant_changes}
)Y";
  } else {
    s += R"Y(tables:
  - {name: merchants, path: merchants.csv, key: merchant,
     columns: {risk: double?, country: string?}, changes: changes.jsonl, time: at}
)Y";
  }
  return s + "features:\n" + features +
         R"Y(  - {name: risk, expr: "lookup(merchants, merchant).risk"}
  - {name: country, expr: "lookup(merchants, merchant, 'country')"}
)Y";
}

void write_case(const RandomCase& rc, const TempDir& dir) {
  std::ofstream m(dir.file("merchants.csv"));
  m << "merchant,risk,country\n";
  for (const auto& [merchant, row] : rc.initial)
    m << merchant << "," << *row.risk << "," << *row.country << "\n";
  std::ofstream c(dir.file("changes.jsonl"));
  for (const ChangeLine& l : rc.changes) c << l.text << "\n";
  std::ofstream in(dir.file("tx.jsonl"));
  for (const Tx& tx : rc.txs)
    in << fmt::format("{{\"id\": \"{}\", \"merchant\": \"{}\", \"amount\": 1.5, \"ts\": {}}}\n",
                      tx.id, tx.merchant, tx.t);
}

std::vector<std::pair<std::string, std::string>> case_inputs(Form form, const TempDir& dir) {
  if (form == Form::Changes) return {{"transactions", dir.file("tx.jsonl")}};
  return {{"transactions", dir.file("tx.jsonl")}, {"merchant_changes", dir.file("changes.jsonl")}};
}

// Both forms: the same random streams, with the malformed change records
// (those after the last transaction included) in the dead letters, counted.
TEST(TableSource, RandomOutOfOrderStreamMatchesBruteForce) {
  for (Form form : {Form::Source, Form::Changes})
    for (uint64_t seed : {1u, 2u, 3u, 4u}) {
      RandomCase rc(seed);
      const Expected ex = brute_force(rc, form);
      if (form == Form::Source) {
        ASSERT_GT(ex.late_changes.size(), 0u);
      }
      ASSERT_GT(ex.dead.size(), 0u);
      TempDir dir;
      write_case(rc, dir);
      std::ofstream(dir.file("spec.yaml")) << case_spec(form, true);
      auto spec = load_spec(dir.file("spec.yaml"));
      ASSERT_TRUE(spec.ok()) << spec.status().message();
      const std::string origin =
          form == Form::Source ? "merchant_changes" : dir.file("changes.jsonl");
      std::map<std::string, nlohmann::json> online;
      for (int workers : {1, 2}) {
        const std::string what = fmt::format(
            "{} seed {} workers {}", form == Form::Source ? "source" : "changes", seed, workers);
        RunOptions opts;
        opts.source_inputs = case_inputs(form, dir);
        opts.output = dir.file("out.jsonl");
        opts.dead_letter = dir.file("dead.jsonl");
        opts.late_output = dir.file("late.jsonl");
        opts.workers = workers;
        opts.worker_thread = true;
        auto stats = run_pipeline(spec.value(), opts);
        ASSERT_TRUE(stats.ok()) << stats.status().message();
        EXPECT_EQ(stats->accepted, ex.accepted) << what;
        EXPECT_EQ(stats->late_dropped, ex.late_tx) << what;
        EXPECT_EQ(stats->dead_letters, ex.dead.size()) << what;
        EXPECT_EQ(stats->late_side_output, ex.late_changes.size()) << what;
        std::string summary = fmt::format("table merchants: {} changes applied, {} rejected",
                                          ex.applied, ex.dead.size());
        if (form == Form::Source) summary += fmt::format(", {} late", ex.late_changes.size());
        EXPECT_NE(stats->derived.find(summary), std::string::npos)
            << what << ": " << stats->derived << " (expected " << summary << ")";
        size_t n = 0;
        for (const std::string& line : lines_of(read_file(dir.file("out.jsonl")))) {
          auto j = nlohmann::json::parse(line);
          const std::string id = j["id"];
          ASSERT_TRUE(ex.rows.count(id)) << what << ": " << id << " should be late";
          const Row& want = ex.rows.at(id);
          EXPECT_EQ(num(j["risk"]), want.risk) << what << " " << id;
          EXPECT_EQ(str(j["country"]), want.country) << what << " " << id;
          if (workers == 1) online[id] = j;
          ++n;
        }
        EXPECT_EQ(n, ex.accepted) << what;
        // Malformed change records: dead letters with the reason, the origin
        // and the line (offset) they came from.
        auto dead = lines_of(read_file(dir.file("dead.jsonl")));
        ASSERT_EQ(dead.size(), ex.dead.size()) << what;
        size_t at = 0;
        for (size_t i = 0; i < dead.size(); ++i) {
          auto j = nlohmann::json::parse(dead[i]);
          EXPECT_EQ(j["source"], origin) << what;
          EXPECT_EQ(j["table"], "merchants") << what;
          EXPECT_EQ(j["raw"], ex.dead[i]) << what;
          EXPECT_FALSE(j["error"].get<std::string>().empty()) << what;
          while (at < rc.changes.size() && !rc.changes[at].malformed) ++at;
          ASSERT_LT(at, rc.changes.size()) << what;
          EXPECT_EQ(j["offset"], at++) << what;
        }
        // Late change records: the source's policy (side_output), with the reason.
        auto late = lines_of(read_file(dir.file("late.jsonl")));
        ASSERT_EQ(late.size(), ex.late_changes.size()) << what;
        for (size_t i = 0; i < late.size(); ++i) {
          auto j = nlohmann::json::parse(late[i]);
          EXPECT_EQ(j["source"], "merchant_changes") << what;
          EXPECT_EQ(j["event"], nlohmann::json::parse(ex.late_changes[i])) << what;
          EXPECT_EQ(j["reason"].get<std::string>().rfind("late: event time ", 0), 0u) << what;
        }
      }
      // The backfill gives the online run's vectors, row for row, and the same
      // dead letters.
      BackfillOptions bo;
      bo.inputs = case_inputs(form, dir);
      bo.output = dir.file("train.csv");
      bo.dead_letter = dir.file("bf_dead.jsonl");
      auto bf = run_backfill(spec.value(), bo);
      ASSERT_TRUE(bf.ok()) << bf.status().message();
      EXPECT_EQ(bf->rows, ex.accepted);
      EXPECT_EQ(bf->run.dead_letters, ex.dead.size());
      EXPECT_EQ(read_file(dir.file("bf_dead.jsonl")), read_file(dir.file("dead.jsonl")));
      auto rows = lines_of(read_file(dir.file("train.csv")));
      ASSERT_EQ(rows.size(), ex.accepted + 1);
      EXPECT_EQ(rows[0], "id,merchant,amount,ts,n_5s,risk,country");
      for (size_t i = 1; i < rows.size(); ++i) {
        std::vector<std::string> cells;
        std::stringstream ss(rows[i]);
        std::string cell;
        while (std::getline(ss, cell, ',')) cells.push_back(cell);
        if (rows[i].back() == ',') cells.push_back("");
        ASSERT_EQ(cells.size(), 7u) << rows[i];
        const nlohmann::json& j = online.at(cells[0]);
        EXPECT_EQ(cells[4], j["n_5s"].dump()) << rows[i];
        EXPECT_EQ(cells[5], j["risk"].is_null() ? "" : j["risk"].dump()) << rows[i];
        EXPECT_EQ(cells[6], j["country"].is_null() ? "" : j["country"].get<std::string>())
            << rows[i];
      }
    }
}

// The lines of an exactly-once output: its epoch files, in order.
std::vector<std::string> read_epochs(const std::string& path) {
  std::vector<std::string> names;
  const std::string base = std::filesystem::path(path).filename().string();
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    std::string n = e.path().filename().string();
    if (n.rfind(base + ".", 0) == 0 && n.find("pending") == std::string::npos)
      names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const auto& n : names)
    for (auto& l : lines_of(read_file(n))) out.push_back(std::move(l));
  return out;
}

// Stopped (as on SIGTERM) and resumed from its checkpoint again and again, a
// run gives the uninterrupted run's output and dead letters: after each
// restart the table holds the changes the stopped run had applied, and their
// dead letters are not written twice.
TEST(TableSource, RestartsRebuildTheSameTable) {
  for (Form form : {Form::Source, Form::Changes}) {
    const std::string what = form == Form::Source ? "source" : "changes";
    RandomCase rc(5);
    const Expected ex = brute_force(rc, form);
    TempDir dir;
    write_case(rc, dir);
    auto spec = parse_spec(case_spec(form, false, ""), dir.file("spec.yaml"));
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    auto options = [&](const std::string& name) {
      RunOptions opts;
      opts.source_inputs = case_inputs(form, dir);
      std::filesystem::create_directories(dir.file(name));
      opts.output = dir.file(name + "/out.jsonl");
      opts.dead_letter = dir.file(name + "/dead.jsonl");
      opts.checkpoint_dir = dir.file(name + "/ckpt");
      opts.workers = 2;
      opts.max_in_flight = 64;
      return opts;
    };
    ASSERT_TRUE(run_pipeline(spec.value(), options("ref")).ok());
    const auto ref = read_epochs(dir.file("ref/out.jsonl"));
    const auto ref_dead = read_epochs(dir.file("ref/dead.jsonl"));
    ASSERT_EQ(ref.size(), ex.accepted) << what;
    ASSERT_EQ(ref_dead.size(), ex.dead.size()) << what;
    for (size_t i = 0; i < ref_dead.size(); ++i)
      EXPECT_EQ(nlohmann::json::parse(ref_dead[i])["raw"], ex.dead[i]) << what;
    int stops = 0;
    bool ended = false;
    for (int round = 0; round < 40 && !ended; ++round) {
      std::atomic<bool> stop{false};
      uint64_t written = 0;
      RunOptions opts = options("run");
      opts.stop = &stop;
      opts.on_vector = [&](const Event&, const FeatureValue*) {
        if (++written == 40) stop.store(true);
      };
      auto stats = run_pipeline(spec.value(), opts);
      ASSERT_TRUE(stats.ok()) << stats.status().message();
      ended = !stop.load();
      stops += !ended;
    }
    ASSERT_TRUE(ended) << what;
    EXPECT_GE(stops, 3) << what;
    EXPECT_EQ(read_epochs(dir.file("run/out.jsonl")), ref) << what;
    EXPECT_EQ(read_epochs(dir.file("run/dead.jsonl")), ref_dead) << what;
    // Started again on the finished run's checkpoints: nothing is left to
    // read, and the change records read after the last event (the malformed
    // ones among them) are not reported again.
    auto again = run_pipeline(spec.value(), options("run"));
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_EQ(again->dead_letters, 0u) << what;
    EXPECT_EQ(read_epochs(dir.file("run/out.jsonl")), ref) << what;
    EXPECT_EQ(read_epochs(dir.file("run/dead.jsonl")), ref_dead) << what;
  }
}

}  // namespace
}  // namespace millrace
