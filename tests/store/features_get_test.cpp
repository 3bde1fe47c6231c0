// `millrace features get` on a spec whose reference table is fed by a source:
// a real redis-server, `millrace run` writing the store, then reads through
// the CLI as of several times, with the table's change records given by
// --input, by the source's uri in the spec, or not at all.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tests/support/redis_server.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::RedisServer;
using millrace::testing::TempDir;

struct Ran {
  int code = -1;
  std::string out, err;
};

// Runs the millrace binary with `args`; stdout and stderr apart.
Ran millrace(const TempDir& dir, const std::string& args) {
  const std::string err = dir.file("stderr.txt");
  std::string cmd = std::string(MILLRACE_BINARY) + " " + args + " 2>" + err;
  FILE* p = popen(cmd.c_str(), "r");
  Ran r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.code = WEXITSTATUS(pclose(p));
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

constexpr int64_t kBase = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
int64_t at_s(int s) {
  return kBase + s * 1000;
}

std::string spec_text(const std::string& store, const std::string& changes_uri) {
  return fmt::format(R"Y(sources:
  transactions:
    time: ts
    schema: {{id: string, merchant: string, amount: double, ts: int64}}
  merchant_changes:
{}    time: at
    max_out_of_orderness: 10s
    allowed_lateness: 5m
    schema: {{op: string, merchant: string, risk: double?, at: int64}}
store: {{uri: {}, slice: 1s}}
tables:
  - {{name: merchants, path: merchants.csv, key: merchant, source: merchant_changes}}
features:
  - {{name: n_1h, key: merchant, agg: count, window: 1h}}
  - {{name: risk, expr: "lookup(merchants, merchant).risk"}}
  - {{name: risky_n, expr: "n_1h * coalesce(lookup(merchants, merchant).risk, 0)"}}
)Y",
                     changes_uri.empty() ? "" : "    uri: " + changes_uri + "\n", store);
}

class FeaturesGet : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.ready()) << "redis-server did not start (scripts/setup.sh installs it)";
    std::ofstream(dir_.file("merchants.csv")) << "merchant,risk\nm1,0.1\nm2,0.9\n";
    // m1: 0.5 from 100 s, 0.7 from 300 s, 0.6 from 200 s (read after the
    // change at 300 s: out of order, within the lateness), deleted at 400 s;
    // a malformed record among them.
    std::ofstream(dir_.file("changes.jsonl"))
        << fmt::format(R"({{"op": "upsert", "merchant": "m1", "risk": 0.5, "at": {}}})", at_s(100))
        << "\n"
        << fmt::format(R"({{"op": "upsert", "merchant": "m1", "risk": 0.7, "at": {}}})", at_s(300))
        << "\n"
        << fmt::format(R"({{"op": "upsert", "merchant": "m1", "risk": 0.6, "at": {}}})", at_s(200))
        << "\nnot json\n"
        << fmt::format(R"({{"op": "delete", "merchant": "m1", "at": {}}})", at_s(400)) << "\n";
    {
      std::ofstream tx(dir_.file("tx.jsonl"));
      for (int i = 0; i < 50; ++i)
        tx << fmt::format(R"({{"id": "t{}", "merchant": "m{}", "amount": 1, "ts": {}}})", i,
                          1 + i % 2, at_s(10 * i))
           << "\n";
    }
    std::ofstream(dir_.file("spec.yaml")) << spec_text(redis_.uri(), "");
    Ran run =
        millrace(dir_, fmt::format("run --spec {0}/spec.yaml --input transactions={0}/tx.jsonl "
                                   "--input merchant_changes={0}/changes.jsonl --output "
                                   "{0}/out.jsonl --dead-letter {0}/dead.jsonl -q",
                                   dir_.path()));
    ASSERT_EQ(run.code, 0) << run.err;
  }

  // The vector of m1 as of `at` (seconds from kBase), through the CLI.
  nlohmann::json get(const std::string& spec, int at, const std::string& extra = "",
                     std::string* err = nullptr) {
    Ran r = millrace(dir_, fmt::format("features get --spec {}/{} --key m1 --at {} {}", dir_.path(),
                                       spec, at_s(at), extra));
    EXPECT_EQ(r.code, 0) << r.err;
    if (err) *err = r.err;
    if (r.code != 0) return nlohmann::json::object();
    return nlohmann::json::parse(r.out)["features"];
  }

  RedisServer redis_;
  TempDir dir_;
};

TEST_F(FeaturesGet, TableFedBySourceReadsItsChangesFromInput) {
  const std::string input = "--input merchant_changes=" + dir_.file("changes.jsonl");
  // The row as of each time: the initial file's, then each change from its
  // time on, the out-of-order one included; null once deleted.
  const std::map<int, nlohmann::json> want = {{50, 0.1},  {100, 0.5},     {150, 0.5},    {250, 0.6},
                                              {350, 0.7}, {400, nullptr}, {450, nullptr}};
  for (const auto& [at, risk] : want) {
    nlohmann::json f = get("spec.yaml", at, input);
    ASSERT_TRUE(f.contains("risk")) << at << ": " << f.dump();
    EXPECT_EQ(f["risk"]["value"], risk) << "at " << at;
    // m1's transactions are at 0, 20, 40 ... s: n_1h counts those <= at.
    const int n = at / 20 + 1;
    EXPECT_EQ(f["n_1h"]["value"], n) << "at " << at;
    if (risk.is_null()) {
      EXPECT_EQ(f["risky_n"]["value"], 0.0) << "at " << at;
    } else {
      EXPECT_NEAR(f["risky_n"]["value"].get<double>(), n * risk.get<double>(), 1e-12) << at;
    }
  }
  // Read at an event's time, the value is the one the run gave the event
  // (where no change came out of order around it).
  std::ifstream out(dir_.file("out.jsonl"));
  std::string line;
  int compared = 0;
  while (std::getline(out, line)) {
    auto j = nlohmann::json::parse(line);
    const int s = static_cast<int>((j["ts"].get<int64_t>() - kBase) / 1000);
    if (j["merchant"] != "m1" || (s >= 200 && s < 300) || s % 60 != 0) continue;
    EXPECT_EQ(get("spec.yaml", s, input)["risk"]["value"], j["risk"]) << "at " << s;
    ++compared;
  }
  EXPECT_EQ(compared, 8);
  // The run put the malformed change record in its dead letters; a read does
  // not report it again.
  std::string err;
  get("spec.yaml", 150, input, &err);
  EXPECT_EQ(err, "");
}

TEST_F(FeaturesGet, TableFedBySourceReadsItsChangesFromTheSpecUri) {
  std::ofstream(dir_.file("spec_uri.yaml")) << spec_text(redis_.uri(), dir_.file("changes.jsonl"));
  EXPECT_EQ(get("spec_uri.yaml", 150)["risk"]["value"], 0.5);
  EXPECT_EQ(get("spec_uri.yaml", 450)["risk"]["value"], nullptr);
  // --input overrides the uri.
  std::ofstream(dir_.file("other.jsonl"))
      << fmt::format(R"({{"op": "upsert", "merchant": "m1", "risk": 0.25, "at": {}}})", at_s(10))
      << "\n";
  EXPECT_EQ(get("spec_uri.yaml", 150,
                "--input merchant_changes=" + dir_.file("other.jsonl"))["risk"]["value"],
            0.25);
}

TEST_F(FeaturesGet, TableWithoutItsChangesIsLeftOutWithANote) {
  std::string err;
  nlohmann::json f = get("spec.yaml", 150, "", &err);
  EXPECT_EQ(f["n_1h"]["value"], 8);
  EXPECT_FALSE(f.contains("risk")) << f.dump();
  EXPECT_FALSE(f.contains("risky_n")) << f.dump();
  EXPECT_NE(err.find("table 'merchants': source 'merchant_changes' has no uri: the features that "
                     "look it up are left out (give --input merchant_changes=URI"),
            std::string::npos)
      << err;
  // An --input that names no table source.
  Ran r = millrace(dir_, fmt::format("features get --spec {}/spec.yaml --key m1 --input "
                                     "transactions=x.jsonl",
                                     dir_.path()));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--input transactions=x.jsonl: expected TABLE_SOURCE=URI naming a source "
                       "that feeds a table (the spec's: merchant_changes)"),
            std::string::npos)
      << r.err;
  // A missing change file is an error naming it.
  r = millrace(dir_, fmt::format("features get --spec {}/spec.yaml --key m1 --input "
                                 "merchant_changes={}/nope.jsonl",
                                 dir_.path(), dir_.path()));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope.jsonl"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace millrace
