// The data-file harness: every folder under tests/data/cases/ is one
// stream-semantics case, run through the real pipeline (run_pipeline, the
// code behind `millrace run`) with 1 and 3 workers. A case holds:
//   spec.yaml, input.jsonl                 what to run
//   expected.jsonl                         per-event records (compared by "id") and/or
//                                          window results (compared per window instance,
//                                          in order)
//   expected-late.jsonl      (optional)    the events that must reach the late output
//   expected-dead-letters    (optional)    how many lines must go to dead letters
//   compare.json             (optional)    {"relative": {"field": tolerance}} for fields
//                                          computed by sketches (default 1e-9)
// A new case is a new folder; see tests/data/cases/README.md.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

struct Tolerances {
  std::map<std::string, double> relative;
  double of(const std::string& field) const {
    auto it = relative.find(field);
    return it == relative.end() ? 1e-9 : it->second;
  }
};

// Empty string when equal, else what differs.
std::string compare_records(const json& expected, const json& got, const Tolerances& tol) {
  std::string diff;
  for (auto it = expected.begin(); it != expected.end(); ++it) {
    const std::string& k = it.key();
    if (!got.contains(k)) {
      diff += " missing '" + k + "';";
      continue;
    }
    const json& e = it.value();
    const json& g = got[k];
    if (e.is_number() && g.is_number()) {
      double a = e.get<double>(), b = g.get<double>();
      double t = tol.of(k);
      if (std::fabs(a - b) > t * std::max(1.0, std::fabs(a)))
        diff += " '" + k + "': expected " + e.dump() + ", got " + g.dump() + ";";
    } else if (e != g) {
      diff += " '" + k + "': expected " + e.dump() + ", got " + g.dump() + ";";
    }
  }
  return diff;
}

// A window instance: the window's name, its key fields (from the spec), start and end.
std::string instance_of(const json& r, const PipelineSpec& spec) {
  std::string name = r.value("window", "");
  std::string id = name + "|" + std::to_string(r.value("window_start", 0LL)) + "|" +
                   std::to_string(r.value("window_end", 0LL));
  for (const auto& w : spec.windows) {
    if (w.name != name) continue;
    for (int f : w.key_fields) {
      const std::string& field = spec.source.schema[f].name;
      id += "|" + field + "=" + (r.contains(field) ? r[field].dump() : "?");
    }
  }
  return id;
}

class CaseTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(CaseTest, MatchesExpected) {
  const auto& [dir, workers] = GetParam();
  auto spec = load_spec(dir + "/spec.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  millrace::testing::TempDir tmp;
  RunOptions opts;
  opts.input = dir + "/input.jsonl";
  opts.output = tmp.file("out.jsonl");
  opts.late_output = tmp.file("late.jsonl");
  opts.dead_letter = tmp.file("dead.jsonl");
  opts.workers = workers;
  auto stats = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(stats.ok()) << stats.status().message();

  Tolerances tol;
  if (fs::exists(dir + "/compare.json")) {
    std::ifstream in(dir + "/compare.json");
    json c = json::parse(in);
    for (auto it = c["relative"].begin(); it != c["relative"].end(); ++it)
      tol.relative[it.key()] = it.value().get<double>();
  }

  auto expected = read_jsonl(dir + "/expected.jsonl");
  auto got = read_jsonl(opts.output);
  std::map<std::string, json> events;                  // per-event outputs by id
  std::map<std::string, std::vector<json>> instances;  // window results per instance
  for (const auto& r : got) {
    if (r.contains("window")) {
      instances[instance_of(r, spec.value())].push_back(r);
    } else {
      ASSERT_TRUE(r.contains("id")) << "per-event cases need an \"id\" field: " << r.dump();
      ASSERT_TRUE(events.emplace(r["id"].get<std::string>(), r).second)
          << "event emitted twice: " << r.dump();
    }
  }
  std::map<std::string, std::vector<json>> expected_instances;
  size_t expected_events = 0;
  int failures = 0;
  for (const auto& e : expected) {
    if (e.contains("window")) {
      expected_instances[instance_of(e, spec.value())].push_back(e);
      continue;
    }
    ++expected_events;
    auto it = events.find(e["id"].get<std::string>());
    if (it == events.end()) {
      ADD_FAILURE() << "no output for " << e.dump();
      if (++failures > 10) return;
      continue;
    }
    std::string diff = compare_records(e, it->second, tol);
    if (!diff.empty()) {
      ADD_FAILURE() << "event " << e["id"] << ":" << diff;
      if (++failures > 10) return;
    }
  }
  EXPECT_EQ(events.size(), expected_events) << "enriched events: got vs expected";
  for (const auto& [inst, exp] : expected_instances) {
    auto it = instances.find(inst);
    if (it == instances.end()) {
      ADD_FAILURE() << "no results for window instance " << inst;
      if (++failures > 10) return;
      continue;
    }
    const auto& g = it->second;
    if (g.size() != exp.size()) {
      ADD_FAILURE() << inst << ": " << g.size() << " records, expected " << exp.size();
      if (++failures > 10) return;
      continue;
    }
    for (size_t i = 0; i < exp.size(); ++i) {
      std::string diff = compare_records(exp[i], g[i], tol);
      if (!diff.empty()) {
        ADD_FAILURE() << inst << " record " << i << ":" << diff;
        if (++failures > 10) return;
      }
    }
  }
  for (const auto& [inst, g] : instances)
    EXPECT_TRUE(expected_instances.count(inst))
        << "unexpected window instance " << inst << ": " << g.front().dump();

  if (fs::exists(dir + "/expected-late.jsonl")) {
    // A multiset of (window, event id): lines of the expected file are either
    // plain events (late at the source) or late records of a window.
    auto late_key = [](const json& r) {
      const json& ev = r.contains("event") ? r["event"] : r;
      return r.value("window", std::string()) + "|" +
             (ev.contains("id") ? ev["id"].get<std::string>() : ev.dump());
    };
    std::multiset<std::string> want, have;
    for (const auto& e : read_jsonl(dir + "/expected-late.jsonl")) want.insert(late_key(e));
    for (const auto& l : read_jsonl(opts.late_output)) {
      ASSERT_TRUE(l.contains("event") && l.contains("reason")) << l.dump();
      have.insert(late_key(l));
    }
    EXPECT_EQ(have, want) << "late events";
  }
  if (fs::exists(dir + "/expected-dead-letters")) {
    std::ifstream in(dir + "/expected-dead-letters");
    size_t want = 0;
    in >> want;
    auto dead = read_jsonl(opts.dead_letter);
    EXPECT_EQ(dead.size(), want) << "dead letters";
    EXPECT_EQ(stats->dead_letters, want);
    for (const auto& d : dead) {
      EXPECT_TRUE(d.contains("error") && d.contains("raw") && d.contains("offset")) << d.dump();
    }
  }
}

std::vector<std::tuple<std::string, int>> all_cases() {
  std::vector<std::tuple<std::string, int>> out;
  fs::path root = fs::path(MILLRACE_SOURCE_DIR) / "tests/data/cases";
  std::vector<std::string> dirs;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "spec.yaml"))
      dirs.push_back(entry.path().string());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    out.emplace_back(d, 1);
    out.emplace_back(d, 3);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(DataFiles, CaseTest, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           std::string name = fs::path(std::get<0>(info.param)).filename().string();
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name + "_w" + std::to_string(std::get<1>(info.param));
                         });

}  // namespace
}  // namespace millrace
