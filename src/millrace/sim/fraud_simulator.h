// FraudSimulator: card transactions with labelled fraud, day by day, in event-
// time order. Deterministic: the same options and seed give the same data.
//
// Its base is the design of the transaction simulator of Le Borgne et al.'s
// "Reproducible Machine Learning for Credit Card Fraud Detection - Practical
// Handbook" (docs/fraud.md has the details and what differs):
//  - customers at uniform points of a 100 x 100 grid, each with a mean amount
//    U(5, 100), a standard deviation of half of it, and a mean number of
//    transactions a day U(0, 4); terminals at uniform points of the grid; a
//    customer uses the terminals within `radius` of home;
//  - each day a Poisson number of transactions per customer, at a time of day
//    N(12 h, 20000 s) (dropped when outside the day), with an amount
//    N(mean, sd) (U(0, 2 mean) when negative), at a uniform terminal in reach;
//  - fraud scenarios: amount above 220; two terminals compromised a day, all
//    their transactions fraudulent for 28 days; three customers compromised a
//    day, for 14 days a third of their transactions fraudulent with the amount
//    multiplied by 5. The daily counts scale with the population (2 per 10000
//    terminals, 3 per 5000 customers).
// Unless `handbook` is set, it adds what a real system sees: latitude and
// longitude (the grid laid over six countries), a billing country per
// customer, one to three devices per customer, card-present and card-not-
// present (online merchants) payments, merchant category codes, and four more
// scenarios: card testing, account takeover, impossible travel, and a
// session-hijack scenario that starts at `drift_day` (concept drift).
//
// Labels: every transaction gets one, as a label event reported later: a
// fraud `fraud_label_delay` after it (6 h + Gamma(2, 1 day), at most 7 days),
// a genuine transaction exactly `genuine_label_delay` (7 days) after it, when
// no dispute came. So after 7 days every label is known, as the handbook's
// protocol assumes.
//
// Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/sim/random.h"

namespace millrace::sim {

enum class Scenario : uint8_t {
  None,
  HighAmount,           // handbook 1: amount > 220
  CompromisedTerminal,  // handbook 2: every payment at a compromised terminal
  CompromisedCustomer,  // handbook 3: a third of a compromised card's payments, amount x5
  CardTesting,          // bursts of tiny card-not-present payments at many merchants
  AccountTakeover,      // new device, distant location, large card-not-present payments
  ImpossibleTravel,     // a card-present payment far away soon after a genuine one
  SessionHijack,        // from drift_day: night-time digital goods from the customer's device
};
inline constexpr int kScenarioCount = 8;
const char* scenario_name(Scenario s);

struct FraudSimOptions {
  uint64_t customers = 5000;
  uint64_t terminals = 10000;
  int days = 183;
  TimeMs start = 1'522'540'800'000;  // 2018-04-01T00:00:00Z, as the handbook's dataset
  uint64_t seed = 0;
  double radius = 5;      // grid units a customer travels to a terminal
  bool handbook = false;  // only the handbook's design: no extensions, three scenarios
  int drift_day = -1;     // first day of the session-hijack scenario; -1: days / 2
  TimeMs genuine_label_delay = 7 * 86'400'000LL;
};

// One transaction, with its ground truth.
struct SimTransaction {
  uint64_t id = 0;  // 0, 1, 2 ... in event-time order over the whole run
  TimeMs ts = 0;
  uint32_t customer = 0;  // one card per customer
  uint32_t terminal = 0;  // physical terminals first, then online merchants
  int32_t device = -1;    // card-not-present: the device; -1 for card-present
  double amount = 0;
  float x = 0, y = 0;  // where it happened, on the grid
  bool card_present = true;
  Scenario scenario = Scenario::None;
  TimeMs reported_at = 0;  // when its label is known
  bool fraud() const { return scenario != Scenario::None; }
};

class FraudSimulator {
 public:
  // Draws the customer and terminal profiles. Options are checked by validate().
  explicit FraudSimulator(const FraudSimOptions& options);

  // An error naming the option when the options cannot be simulated.
  static Status validate(const FraudSimOptions& options);

  // The next day's transactions in event-time order (ties by customer), with
  // ids following the previous day's. False after the last day.
  bool next_day(std::vector<SimTransaction>* out);
  int day() const { return day_; }
  const FraudSimOptions& options() const { return opts_; }
  int drift_day() const { return drift_day_; }

  // Descriptions of the generated entities, for output.
  uint32_t physical_terminals() const { return static_cast<uint32_t>(opts_.terminals); }
  uint16_t mcc(uint32_t terminal) const { return terminals_[terminal].mcc; }
  const char* billing_country(uint32_t customer) const;
  // Where the customer lives (the billing address), on the grid.
  float home_x(uint32_t customer) const { return customers_[customer].x; }
  float home_y(uint32_t customer) const { return customers_[customer].y; }
  // Devices the customer registered for online payments.
  int devices(uint32_t customer) const { return customers_[customer].n_devices; }
  // Country of a grid point and its latitude/longitude.
  static const char* country_at(float x, float y);
  static double latitude(float y) { return 36.0 + y * 0.18; }
  static double longitude(float x) { return -9.0 + x * 0.33; }

 private:
  struct Customer {
    float x, y;
    float mean_amount, std_amount, tx_per_day;
    float cnp_share;
    uint8_t billing_country;
    uint8_t n_devices;
    int32_t first_device;
    std::vector<uint32_t> terminals;  // physical terminals within radius
    std::array<uint32_t, 4> online;   // online merchants the customer buys from
  };
  struct Terminal {
    float x, y;
    uint16_t mcc;
  };

  void generate_customer_day(uint32_t c, std::vector<SimTransaction>* out);
  void apply_handbook_scenarios(std::vector<SimTransaction>* day);
  void inject_extended_scenarios(std::vector<SimTransaction>* day);
  void add_card_testing(Rng& rng, std::vector<SimTransaction>* day);
  void add_account_takeover(Rng& rng, std::vector<SimTransaction>* day);
  void add_impossible_travel(Rng& rng, std::vector<SimTransaction>* day);
  void add_session_hijack(Rng& rng, std::vector<SimTransaction>* day);
  // How many entities a scenario draws today for a daily rate (floor, plus
  // one with the fractional part's probability).
  static uint32_t daily_count(Rng& rng, double rate);
  uint32_t random_online(Rng& rng, uint16_t mcc = 0);
  TimeMs day_start() const { return opts_.start + static_cast<TimeMs>(day_) * 86'400'000LL; }

  FraudSimOptions opts_;
  int drift_day_;
  int day_ = 0;
  uint64_t next_id_ = 0;
  int32_t next_fraud_device_;
  std::vector<Customer> customers_;
  std::vector<Terminal> terminals_;              // physical, then online
  std::vector<int> compromised_until_terminal_;  // per physical terminal: last day, -1
  struct CustomerDraw {
    uint32_t customer;
    int last_day;
  };
  std::vector<CustomerDraw> customer_draws_;  // handbook-3 compromises still running
  std::vector<uint16_t> active_draws_;        // per customer: how many of them
};

struct SimSummary {
  uint64_t transactions = 0;
  uint64_t frauds = 0;
  std::array<uint64_t, kScenarioCount> by_scenario{};
  uint64_t fraud_cards = 0;  // distinct compromised cards
  double seconds = 0;
};

enum class SimFormat { Jsonl, Handbook };

// Simulates into `dir`: transactions.jsonl, labels.jsonl and the card
// profiles cards.csv (card_id, home_lat, home_lon, billing_country, devices:
// what the card issuer knows of its customers) (Jsonl), or
// transactions.csv with the handbook's columns (Handbook). `progress` is
// called after each day with (day, days, transactions so far).
Result<SimSummary> write_fraud_dataset(
    const FraudSimOptions& options, const std::string& dir, SimFormat format,
    const std::function<void(int, int, uint64_t)>& progress = {});

}  // namespace millrace::sim
