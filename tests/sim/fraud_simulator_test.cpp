#include "millrace/sim/fraud_simulator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"

namespace millrace::sim {
namespace {

constexpr TimeMs kDay = 86'400'000;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

FraudSimOptions small(uint64_t seed) {
  FraudSimOptions o;
  o.customers = 300;
  o.terminals = 600;
  o.days = 30;
  o.seed = seed;
  return o;
}

std::vector<SimTransaction> simulate_all(const FraudSimOptions& o) {
  FraudSimulator sim(o);
  std::vector<SimTransaction> all, day;
  while (sim.next_day(&day)) all.insert(all.end(), day.begin(), day.end());
  return all;
}

TEST(FraudSimulator, SameSeedSameBytesOtherSeedOtherData) {
  testing::TempDir dir;
  for (SimFormat format : {SimFormat::Jsonl, SimFormat::Handbook}) {
    const char* tx = format == SimFormat::Jsonl ? "/transactions.jsonl" : "/transactions.csv";
    ASSERT_TRUE(write_fraud_dataset(small(7), dir.file("a"), format).ok());
    ASSERT_TRUE(write_fraud_dataset(small(7), dir.file("b"), format).ok());
    ASSERT_TRUE(write_fraud_dataset(small(8), dir.file("c"), format).ok());
    const std::string a = slurp(dir.file("a") + tx);
    EXPECT_GT(a.size(), 10'000u);
    EXPECT_EQ(a, slurp(dir.file("b") + tx));
    EXPECT_NE(a, slurp(dir.file("c") + tx));
    if (format == SimFormat::Jsonl) {
      EXPECT_EQ(slurp(dir.file("a") + "/labels.jsonl"), slurp(dir.file("b") + "/labels.jsonl"));
    }
  }
}

TEST(FraudSimulator, EventTimeOrderAndOneDelayedLabelPerTransaction) {
  testing::TempDir dir;
  auto summary = write_fraud_dataset(small(3), dir.path(), SimFormat::Jsonl);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  const auto txs = read_jsonl(dir.file("transactions.jsonl"));
  const auto labels = read_jsonl(dir.file("labels.jsonl"));
  ASSERT_EQ(txs.size(), summary->transactions);
  ASSERT_EQ(labels.size(), txs.size());
  std::map<std::string, int64_t> ts_of;
  for (size_t i = 0; i < txs.size(); ++i) {
    EXPECT_EQ(txs[i]["id"], "t" + std::to_string(i));
    if (i > 0) {
      EXPECT_LE(txs[i - 1]["ts"].get<int64_t>(), txs[i]["ts"].get<int64_t>());
    }
    ts_of[txs[i]["id"]] = txs[i]["ts"];
    EXPECT_EQ(txs[i]["card_present"].get<bool>(), txs[i]["device_id"].is_null());
  }
  std::set<std::string> seen;
  uint64_t frauds = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& l = labels[i];
    if (i > 0) {
      EXPECT_LE(labels[i - 1]["reported_at"].get<int64_t>(), l["reported_at"].get<int64_t>());
    }
    ASSERT_TRUE(seen.insert(l["id"]).second) << "two labels for " << l["id"];
    const int64_t ts = ts_of.at(l["id"]);
    EXPECT_EQ(l["ts"].get<int64_t>(), ts);
    const int64_t delay = l["reported_at"].get<int64_t>() - ts;
    const bool fraud = l["is_fraud"];
    EXPECT_EQ(fraud, l["scenario"] != "none");
    if (fraud) {
      ++frauds;
      EXPECT_GE(delay, kDay / 4);
      EXPECT_LE(delay, 7 * kDay);
    } else {
      EXPECT_EQ(delay, 7 * kDay);
    }
  }
  EXPECT_EQ(frauds, summary->frauds);
  EXPECT_GT(frauds, 0u);
}

// The handbook's three scenarios, at a population where rates are measurable.
TEST(FraudSimulator, HandbookScenariosFollowTheirRules) {
  FraudSimOptions o;
  o.customers = 2000;
  o.terminals = 4000;
  o.days = 60;
  o.seed = 11;
  o.handbook = true;
  const auto txs = simulate_all(o);
  ASSERT_GT(txs.size(), 100'000u);
  std::array<size_t, kScenarioCount> n{};
  for (const auto& tx : txs) ++n[static_cast<int>(tx.scenario)];
  EXPECT_EQ(n[4] + n[5] + n[6] + n[7], 0u) << "handbook mode has only the handbook's scenarios";
  const double share = 1.0 * (txs.size() - n[0]) / txs.size();
  EXPECT_GT(share, 0.004);
  EXPECT_LT(share, 0.015);

  // 1: amount above 220 is fraud, and a genuine transaction never is above.
  for (const auto& tx : txs) {
    if (tx.scenario == Scenario::HighAmount) {
      EXPECT_GT(tx.amount, 220);
    }
    if (tx.scenario == Scenario::None) {
      EXPECT_LE(tx.amount, 220);
    }
  }

  // 2: between a terminal's first and last compromised-terminal fraud, every
  // payment there is fraudulent (scenario 3 may relabel one).
  std::map<uint32_t, std::pair<TimeMs, TimeMs>> span;
  for (const auto& tx : txs)
    if (tx.scenario == Scenario::CompromisedTerminal) {
      auto [it, inserted] = span.try_emplace(tx.terminal, tx.ts, tx.ts);
      it->second.second = tx.ts;
    }
  for (const auto& tx : txs) {
    auto it = span.find(tx.terminal);
    if (it != span.end() && tx.ts >= it->second.first && tx.ts <= it->second.second) {
      EXPECT_TRUE(tx.scenario == Scenario::CompromisedTerminal ||
                  tx.scenario == Scenario::CompromisedCustomer);
    }
  }
  // Its volume: 0.8 terminals a day (2 per 10000), each fraudulent 28 days.
  const double per_terminal_day = 1.0 * txs.size() / o.days / o.terminals;
  double expected2 = 0;
  for (int d = 0; d < o.days; ++d) expected2 += 0.8 * std::min(d + 1, 28) * per_terminal_day;
  EXPECT_GT(n[2], 0.5 * expected2);
  EXPECT_LT(n[2], 1.6 * expected2);

  // 3: in the 14 days from a card's first scenario-3 fraud, about a third of
  // its payments are frauds (fewer once its compromise ended).
  std::map<uint32_t, TimeMs> first3;
  for (const auto& tx : txs)
    if (tx.scenario == Scenario::CompromisedCustomer) first3.try_emplace(tx.customer, tx.ts);
  size_t in_window = 0, fraud3 = 0;
  for (const auto& tx : txs) {
    auto it = first3.find(tx.customer);
    if (it == first3.end() || tx.ts < it->second || tx.ts >= it->second + 14 * kDay) continue;
    ++in_window;
    fraud3 += tx.scenario == Scenario::CompromisedCustomer;
  }
  ASSERT_GT(in_window, 300u);
  const double third = 1.0 * fraud3 / in_window;
  EXPECT_GT(third, 0.22) << fraud3 << " of " << in_window;
  EXPECT_LT(third, 0.45) << fraud3 << " of " << in_window;
  // 1.2 cards a day; 14 days of 2 payments a day on average, a third fraudulent.
  const double expected3 = 1.2 * o.days * 14 * 2 / 3.0;
  EXPECT_GT(n[3], 0.4 * expected3);
  EXPECT_LT(n[3], 1.6 * expected3);
}

TEST(FraudSimulator, ExtendedScenariosFollowTheirRules) {
  FraudSimOptions o;
  o.customers = 2000;
  o.terminals = 4000;
  o.days = 40;
  o.seed = 5;
  o.drift_day = 20;
  const auto txs = simulate_all(o);
  FraudSimulator sim(o);
  std::array<size_t, kScenarioCount> n{};
  std::set<int32_t> genuine_devices;
  for (const auto& tx : txs) {
    ++n[static_cast<int>(tx.scenario)];
    if (tx.scenario == Scenario::None && tx.device >= 0) genuine_devices.insert(tx.device);
  }
  for (int s = 1; s < kScenarioCount; ++s)
    EXPECT_GT(n[s], 0u) << scenario_name(static_cast<Scenario>(s));

  const double scale = o.customers / 5000.0;
  struct Expect {
    Scenario s;
    double per_day;  // expected frauds a day
    int days;
  };
  // Rates per day x transactions per episode (card testing: 12.5 probes and
  // half the time 1.5 cash-outs; takeover 4; travel 1.5; hijack 3).
  for (const Expect& e : {Expect{Scenario::CardTesting, 2 * scale * 13.25, o.days},
                          Expect{Scenario::AccountTakeover, 2 * scale * 4, o.days},
                          Expect{Scenario::ImpossibleTravel, 3 * scale * 1.5, o.days},
                          Expect{Scenario::SessionHijack, 3 * scale * 3, o.days - o.drift_day}}) {
    const double expected = e.per_day * e.days;
    EXPECT_GT(n[static_cast<int>(e.s)], 0.5 * expected) << scenario_name(e.s);
    EXPECT_LT(n[static_cast<int>(e.s)], 1.6 * expected) << scenario_name(e.s);
  }

  size_t small_probes = 0;
  for (size_t i = 0; i < txs.size(); ++i) {
    const auto& tx = txs[i];
    const TimeMs since_start = tx.ts - o.start;
    switch (tx.scenario) {
      case Scenario::CardTesting:
        EXPECT_FALSE(tx.card_present);
        EXPECT_FALSE(genuine_devices.count(tx.device)) << "a fraudster's device";
        small_probes += tx.amount <= 5;
        break;
      case Scenario::AccountTakeover:
        EXPECT_FALSE(tx.card_present);
        EXPECT_FALSE(genuine_devices.count(tx.device)) << "a new device";
        EXPECT_GE(tx.amount, 20);
        break;
      case Scenario::ImpossibleTravel: {
        EXPECT_TRUE(tx.card_present);
        bool far_before = false;  // a genuine payment of the card, >= 40 units away, <= 3 h before
        for (size_t j = i; j-- > 0 && tx.ts - txs[j].ts <= 3 * 3'600'000;)
          if (txs[j].customer == tx.customer && txs[j].scenario == Scenario::None &&
              std::hypot(txs[j].x - tx.x, txs[j].y - tx.y) >= 40)
            far_before = true;
        EXPECT_TRUE(far_before) << "transaction t" << tx.id;
        break;
      }
      case Scenario::SessionHijack:
        EXPECT_GE(since_start, o.drift_day * kDay) << "drift starts at its day";
        EXPECT_FALSE(tx.card_present);
        EXPECT_EQ(sim.mcc(tx.terminal), 5816);
        EXPECT_LT(since_start % kDay, 7 * 3'600'000) << "at night";
        break;
      default:
        break;
    }
  }
  EXPECT_GT(small_probes, n[static_cast<int>(Scenario::CardTesting)] * 0.7);
}

TEST(FraudSimulator, RejectsBadOptions) {
  FraudSimOptions o;
  o.customers = 0;
  auto s = FraudSimulator::validate(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--customers"), std::string::npos);
  o = FraudSimOptions();
  o.days = 10;
  o.drift_day = 11;
  EXPECT_NE(FraudSimulator::validate(o).message().find("--drift-day"), std::string::npos);
}

}  // namespace
}  // namespace millrace::sim
