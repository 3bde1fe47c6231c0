#include "millrace/sim/fraud_simulator.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <queue>

#include <fmt/format.h>

namespace millrace::sim {
namespace {

constexpr TimeMs kDayMs = 86'400'000;
constexpr double kGrid = 100;

// The six countries the grid is laid over (docs/fraud.md draws the map).
constexpr const char* kCountries[] = {"ES", "FR", "IT", "DE", "GR", "PL"};

int country_index(float x, float y) {
  const int col = x < 40 ? 0 : x < 70 ? 1 : 2;
  return y < 55 ? (col == 0 ? 0 : col == 1 ? 2 : 4) : (col == 0 ? 1 : col == 1 ? 3 : 5);
}

struct WeightedMcc {
  uint16_t mcc;
  int weight;
};
// Merchant category codes of physical terminals and of online merchants.
constexpr WeightedMcc kPhysicalMcc[] = {{5411, 25}, {5812, 20}, {5541, 12}, {5999, 10}, {5311, 8},
                                        {5912, 8},  {4121, 6},  {7011, 5},  {5732, 4},  {5944, 2}};
constexpr WeightedMcc kOnlineMcc[] = {{5999, 30}, {5732, 15}, {5815, 15}, {5816, 10},
                                      {4722, 10}, {5311, 10}, {4829, 5},  {5944, 5}};
constexpr uint16_t kDigitalGoods = 5816;
constexpr uint16_t kTakeoverMcc[] = {5732, 4829, 5944};

template <size_t N>
uint16_t draw_mcc(Rng& rng, const WeightedMcc (&table)[N]) {
  int total = 0;
  for (const auto& m : table) total += m.weight;
  int r = static_cast<int>(rng.below(total));
  for (const auto& m : table) {
    if (r < m.weight) return m.mcc;
    r -= m.weight;
  }
  return table[0].mcc;
}

double round2(double v) {
  return std::round(v * 100) / 100;
}

float clamp_grid(double v) {
  return static_cast<float>(std::min(std::max(v, 0.0), std::nextafter(kGrid, 0.0)));
}

float grid_distance(float ax, float ay, float bx, float by) {
  return std::hypot(ax - bx, ay - by);
}

}  // namespace

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::None:
      return "none";
    case Scenario::HighAmount:
      return "high_amount";
    case Scenario::CompromisedTerminal:
      return "compromised_terminal";
    case Scenario::CompromisedCustomer:
      return "compromised_customer";
    case Scenario::CardTesting:
      return "card_testing";
    case Scenario::AccountTakeover:
      return "account_takeover";
    case Scenario::ImpossibleTravel:
      return "impossible_travel";
    case Scenario::SessionHijack:
      return "session_hijack";
  }
  return "?";
}

const char* FraudSimulator::country_at(float x, float y) {
  return kCountries[country_index(x, y)];
}

const char* FraudSimulator::billing_country(uint32_t customer) const {
  return kCountries[customers_[customer].billing_country];
}

Status FraudSimulator::validate(const FraudSimOptions& o) {
  if (o.customers < 1 || o.customers > 50'000'000)
    return Status::Error("--customers: expected 1 to 50000000");
  if (o.terminals < 1 || o.terminals > 50'000'000)
    return Status::Error("--terminals: expected 1 to 50000000");
  if (o.days < 1 || o.days > 3660) return Status::Error("--days: expected 1 to 3660");
  if (!(o.radius > 0 && o.radius <= 150)) return Status::Error("--radius: expected (0, 150]");
  if (o.drift_day < -1 || o.drift_day > o.days)
    return Status::Error("--drift-day: expected -1 (half way) or 0 to --days");
  return Status::Ok();
}

FraudSimulator::FraudSimulator(const FraudSimOptions& options)
    : opts_(options), drift_day_(options.drift_day >= 0 ? options.drift_day : options.days / 2) {
  Rng rng = Rng::stream(opts_.seed, 1);
  const bool ext = !opts_.handbook;
  terminals_.resize(opts_.terminals);
  for (auto& t : terminals_) {
    t.x = static_cast<float>(rng.uniform(0, kGrid));
    t.y = static_cast<float>(rng.uniform(0, kGrid));
    t.mcc = ext ? draw_mcc(rng, kPhysicalMcc) : 0;
  }
  if (ext) {
    const uint64_t online = std::max<uint64_t>(20, opts_.terminals / 50);
    for (uint64_t i = 0; i < online; ++i) {
      Terminal t;
      t.x = static_cast<float>(rng.uniform(0, kGrid));
      t.y = static_cast<float>(rng.uniform(0, kGrid));
      t.mcc = draw_mcc(rng, kOnlineMcc);
      terminals_.push_back(t);
    }
  }
  // Terminals bucketed in cells of the radius, so reach is found near home.
  const int cells = std::max(1, static_cast<int>(kGrid / opts_.radius));
  const double cell = kGrid / cells;
  auto cell_of = [&](double v) { return std::min(cells - 1, static_cast<int>(v / cell)); };
  std::vector<std::vector<uint32_t>> grid(static_cast<size_t>(cells) * cells);
  for (uint32_t i = 0; i < opts_.terminals; ++i)
    grid[cell_of(terminals_[i].y) * cells + cell_of(terminals_[i].x)].push_back(i);

  int32_t devices = 0;
  customers_.resize(opts_.customers);
  for (auto& c : customers_) {
    c.x = static_cast<float>(rng.uniform(0, kGrid));
    c.y = static_cast<float>(rng.uniform(0, kGrid));
    c.mean_amount = static_cast<float>(rng.uniform(5, 100));
    c.std_amount = c.mean_amount / 2;
    c.tx_per_day = static_cast<float>(rng.uniform(0, 4));
    if (ext) {
      c.cnp_share = static_cast<float>(rng.uniform(0.05, 0.35));
      c.billing_country = static_cast<uint8_t>(country_index(c.x, c.y));
      if (rng.bernoulli(0.03)) c.billing_country = static_cast<uint8_t>(rng.below(6));
      c.n_devices = static_cast<uint8_t>(1 + rng.bernoulli(0.4) + rng.bernoulli(0.1));
      c.first_device = devices;
      devices += c.n_devices;
      for (auto& m : c.online)
        m = static_cast<uint32_t>(opts_.terminals + rng.below(terminals_.size() - opts_.terminals));
    } else {
      c.cnp_share = 0;
      c.billing_country = 0;
      c.n_devices = 0;
      c.first_device = -1;
      c.online.fill(0);
    }
    const int cx = cell_of(c.x), cy = cell_of(c.y);
    const int reach = static_cast<int>(std::ceil(opts_.radius / cell));
    for (int gy = std::max(0, cy - reach); gy <= std::min(cells - 1, cy + reach); ++gy)
      for (int gx = std::max(0, cx - reach); gx <= std::min(cells - 1, cx + reach); ++gx)
        for (uint32_t t : grid[gy * cells + gx])
          if (grid_distance(c.x, c.y, terminals_[t].x, terminals_[t].y) < opts_.radius)
            c.terminals.push_back(t);
    std::sort(c.terminals.begin(), c.terminals.end());
  }
  next_fraud_device_ = devices;
  compromised_until_terminal_.assign(opts_.terminals, -1);
  active_draws_.assign(opts_.customers, 0);
}

uint32_t FraudSimulator::daily_count(Rng& rng, double rate) {
  const double whole = std::floor(rate);
  return static_cast<uint32_t>(whole) + (rng.bernoulli(rate - whole) ? 1 : 0);
}

uint32_t FraudSimulator::random_online(Rng& rng, uint16_t mcc) {
  const uint32_t first = physical_terminals();
  const uint32_t n = static_cast<uint32_t>(terminals_.size()) - first;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const uint32_t t = first + static_cast<uint32_t>(rng.below(n));
    if (mcc == 0 || terminals_[t].mcc == mcc) return t;
  }
  for (uint32_t t = first; t < terminals_.size(); ++t)
    if (terminals_[t].mcc == mcc) return t;
  return first;
}

void FraudSimulator::generate_customer_day(uint32_t ci, std::vector<SimTransaction>* out) {
  const Customer& c = customers_[ci];
  Rng rng = Rng::stream(opts_.seed, 2, static_cast<uint64_t>(day_), ci);
  const uint32_t n = rng.poisson(c.tx_per_day);
  for (uint32_t k = 0; k < n; ++k) {
    // The time of day truncates toward zero; a draw outside the day is dropped.
    const auto second = static_cast<int64_t>(rng.normal(43'200, 20'000));
    if (second <= 0 || second >= 86'400) continue;
    double amount = rng.normal(c.mean_amount, c.std_amount);
    if (amount < 0) amount = rng.uniform(0, 2.0 * c.mean_amount);
    SimTransaction tx;
    tx.customer = ci;
    tx.amount = round2(amount);
    tx.ts = day_start() + second * 1000;
    if (opts_.handbook) {
      if (c.terminals.empty()) continue;
      tx.terminal = c.terminals[rng.below(c.terminals.size())];
      tx.x = terminals_[tx.terminal].x;
      tx.y = terminals_[tx.terminal].y;
    } else {
      tx.ts += static_cast<TimeMs>(rng.below(1000));
      tx.card_present = !(rng.bernoulli(c.cnp_share) || c.terminals.empty());
      if (tx.card_present) {
        tx.terminal = c.terminals[rng.below(c.terminals.size())];
        tx.x = terminals_[tx.terminal].x;
        tx.y = terminals_[tx.terminal].y;
      } else {
        tx.terminal = c.online[rng.below(c.online.size())];
        tx.device = c.first_device +
                    (rng.bernoulli(0.75) ? 0 : static_cast<int32_t>(rng.below(c.n_devices)));
        tx.x = clamp_grid(c.x + rng.normal(0, 0.3));
        tx.y = clamp_grid(c.y + rng.normal(0, 0.3));
      }
    }
    out->push_back(tx);
  }
}

void FraudSimulator::apply_handbook_scenarios(std::vector<SimTransaction>* day) {
  // 1: amounts above 220.
  for (auto& tx : *day)
    if (tx.amount > 220) tx.scenario = Scenario::HighAmount;

  // 2: compromised terminals, drawn today, fraudulent for 28 days from today.
  Rng trng = Rng::stream(opts_.seed, 3, static_cast<uint64_t>(day_));
  const uint32_t nt = daily_count(trng, 2.0 * static_cast<double>(opts_.terminals) / 10'000);
  for (uint32_t i = 0; i < nt; ++i) {
    const auto t = static_cast<uint32_t>(trng.below(opts_.terminals));
    compromised_until_terminal_[t] = std::max(compromised_until_terminal_[t], day_ + 27);
  }
  for (auto& tx : *day)
    if (tx.card_present && compromised_until_terminal_[tx.terminal] >= day_)
      tx.scenario = Scenario::CompromisedTerminal;

  // 3: compromised customers, for 14 days from today: each of their payments
  // is fraudulent with probability 1/3 per overlapping draw, its amount x5.
  Rng crng = Rng::stream(opts_.seed, 4, static_cast<uint64_t>(day_));
  const uint32_t nc = daily_count(crng, 3.0 * static_cast<double>(opts_.customers) / 5'000);
  for (uint32_t i = 0; i < nc; ++i) {
    const auto c = static_cast<uint32_t>(crng.below(opts_.customers));
    customer_draws_.push_back({c, day_ + 13});
    ++active_draws_[c];
  }
  std::erase_if(customer_draws_, [&](const CustomerDraw& d) {
    if (d.last_day >= day_) return false;
    --active_draws_[d.customer];
    return true;
  });
  if (customer_draws_.empty()) return;
  for (auto& tx : *day) {
    const int draws = active_draws_[tx.customer];
    if (draws == 0) continue;
    if (crng.bernoulli(1 - std::pow(2.0 / 3.0, draws))) {
      tx.amount = round2(tx.amount * 5);
      tx.scenario = Scenario::CompromisedCustomer;
    }
  }
}

void FraudSimulator::add_card_testing(Rng& rng, std::vector<SimTransaction>* day) {
  const auto ci = static_cast<uint32_t>(rng.below(opts_.customers));
  const Customer& c = customers_[ci];
  const int32_t device = next_fraud_device_++;
  const float x = static_cast<float>(rng.uniform(0, kGrid));
  const float y = static_cast<float>(rng.uniform(0, kGrid));
  TimeMs t = day_start() + static_cast<TimeMs>(rng.uniform(0, 86'400 - 7'200) * 1000);
  auto add = [&](double amount, uint32_t terminal) {
    SimTransaction tx;
    tx.customer = ci;
    tx.ts = t;
    tx.terminal = terminal;
    tx.device = device;
    tx.amount = round2(amount);
    tx.x = x;
    tx.y = y;
    tx.card_present = false;
    tx.scenario = Scenario::CardTesting;
    day->push_back(tx);
  };
  const uint32_t probes = 5 + static_cast<uint32_t>(rng.below(16));
  for (uint32_t i = 0; i < probes; ++i) {
    t += static_cast<TimeMs>(rng.uniform(5, 60) * 1000);
    add(rng.uniform(0.5, 5.0), random_online(rng));
  }
  if (rng.bernoulli(0.5)) {  // the cash-out, once the card is known to work
    const uint32_t n = 1 + static_cast<uint32_t>(rng.below(2));
    for (uint32_t i = 0; i < n; ++i) {
      t += static_cast<TimeMs>(rng.uniform(300, 1800) * 1000);
      add(std::max(100.0, c.mean_amount * rng.uniform(3, 8)),
          random_online(rng, kTakeoverMcc[rng.below(3)]));
    }
  }
}

void FraudSimulator::add_account_takeover(Rng& rng, std::vector<SimTransaction>* day) {
  const auto ci = static_cast<uint32_t>(rng.below(opts_.customers));
  const Customer& c = customers_[ci];
  const int32_t device = next_fraud_device_++;
  float x = 0, y = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {  // at least 30 grid units from home
    x = static_cast<float>(rng.uniform(0, kGrid));
    y = static_cast<float>(rng.uniform(0, kGrid));
    if (grid_distance(x, y, c.x, c.y) >= 30) break;
  }
  TimeMs t = day_start() + static_cast<TimeMs>(rng.uniform(0, 86'400 - 4 * 3'600) * 1000);
  const uint32_t n = 2 + static_cast<uint32_t>(rng.below(5));
  for (uint32_t i = 0; i < n; ++i) {
    t += static_cast<TimeMs>(rng.uniform(120, 2'400) * 1000);
    SimTransaction tx;
    tx.customer = ci;
    tx.ts = t;
    tx.terminal = random_online(rng, kTakeoverMcc[rng.below(3)]);
    tx.device = device;
    tx.amount = round2(c.mean_amount * rng.uniform(3, 8) + rng.uniform(20, 200));
    tx.x = x;
    tx.y = y;
    tx.card_present = false;
    tx.scenario = Scenario::AccountTakeover;
    day->push_back(tx);
  }
}

void FraudSimulator::add_impossible_travel(Rng& rng, std::vector<SimTransaction>* day) {
  // A genuine card-present payment today, then the cloned card far away.
  const SimTransaction* anchor = nullptr;
  for (int attempt = 0; attempt < 20 && anchor == nullptr; ++attempt) {
    const auto ci = static_cast<uint32_t>(rng.below(opts_.customers));
    for (const auto& tx : *day)
      if (tx.customer == ci && tx.card_present && tx.scenario == Scenario::None) {
        anchor = &tx;
        break;
      }
  }
  if (anchor == nullptr) return;
  const SimTransaction a = *anchor;
  uint32_t far = 0;
  for (int attempt = 0; attempt < 200; ++attempt) {  // at least 40 grid units (~900 km) away
    far = static_cast<uint32_t>(rng.below(opts_.terminals));
    if (grid_distance(terminals_[far].x, terminals_[far].y, a.x, a.y) >= 40) break;
  }
  const TimeMs day_end = day_start() + kDayMs - 1000;
  TimeMs t = a.ts;
  const uint32_t n = 1 + static_cast<uint32_t>(rng.below(2));
  for (uint32_t i = 0; i < n; ++i) {
    t = std::min(day_end, t + static_cast<TimeMs>(rng.uniform(600, 5'400) * 1000));
    SimTransaction tx;
    tx.customer = a.customer;
    tx.ts = t;
    tx.terminal = far;
    tx.amount = round2(customers_[a.customer].mean_amount * rng.uniform(1, 4));
    tx.x = terminals_[far].x;
    tx.y = terminals_[far].y;
    tx.card_present = true;
    tx.scenario = Scenario::ImpossibleTravel;
    day->push_back(tx);
  }
}

void FraudSimulator::add_session_hijack(Rng& rng, std::vector<SimTransaction>* day) {
  const auto ci = static_cast<uint32_t>(rng.below(opts_.customers));
  const Customer& c = customers_[ci];
  TimeMs t = day_start() + static_cast<TimeMs>(rng.uniform(3'600, 4 * 3'600) * 1000);
  const uint32_t n = 2 + static_cast<uint32_t>(rng.below(3));
  for (uint32_t i = 0; i < n; ++i) {
    t += static_cast<TimeMs>(rng.uniform(300, 1'800) * 1000);
    SimTransaction tx;
    tx.customer = ci;
    tx.ts = t;
    tx.terminal = random_online(rng, kDigitalGoods);
    tx.device = c.first_device + static_cast<int32_t>(rng.below(c.n_devices));
    tx.amount = round2(c.mean_amount * rng.uniform(0.8, 2.0));
    tx.x = clamp_grid(c.x + rng.normal(0, 0.3));
    tx.y = clamp_grid(c.y + rng.normal(0, 0.3));
    tx.card_present = false;
    tx.scenario = Scenario::SessionHijack;
    day->push_back(tx);
  }
}

void FraudSimulator::inject_extended_scenarios(std::vector<SimTransaction>* day) {
  Rng rng = Rng::stream(opts_.seed, 5, static_cast<uint64_t>(day_));
  const double scale = static_cast<double>(opts_.customers) / 5'000;
  for (uint32_t i = daily_count(rng, 2 * scale); i > 0; --i) add_card_testing(rng, day);
  for (uint32_t i = daily_count(rng, 2 * scale); i > 0; --i) add_account_takeover(rng, day);
  for (uint32_t i = daily_count(rng, 3 * scale); i > 0; --i) add_impossible_travel(rng, day);
  if (day_ >= drift_day_)
    for (uint32_t i = daily_count(rng, 3 * scale); i > 0; --i) add_session_hijack(rng, day);
}

bool FraudSimulator::next_day(std::vector<SimTransaction>* out) {
  out->clear();
  if (day_ >= opts_.days) return false;
  for (uint32_t c = 0; c < opts_.customers; ++c) generate_customer_day(c, out);
  apply_handbook_scenarios(out);
  if (!opts_.handbook) inject_extended_scenarios(out);
  std::stable_sort(out->begin(), out->end(), [](const SimTransaction& a, const SimTransaction& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.customer < b.customer;
  });
  Rng rng = Rng::stream(opts_.seed, 6, static_cast<uint64_t>(day_));
  for (auto& tx : *out) {
    tx.id = next_id_++;
    if (tx.fraud()) {
      const double days = 0.25 + rng.exponential(1) + rng.exponential(1);
      tx.reported_at = tx.ts + std::min(opts_.genuine_label_delay,
                                        static_cast<TimeMs>(days * static_cast<double>(kDayMs)));
    } else {
      tx.reported_at = tx.ts + opts_.genuine_label_delay;
    }
  }
  ++day_;
  return true;
}

// ---------------------------------------------------------------------------
// Output

namespace {

class FileOut {
 public:
  static Result<std::unique_ptr<FileOut>> open(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return Status::Error(path + ": cannot open for writing");
    return std::unique_ptr<FileOut>(new FileOut(path, f));
  }
  ~FileOut() {
    if (f_ != nullptr) std::fclose(f_);
  }
  std::string& buf() { return buf_; }
  Status maybe_flush() { return buf_.size() >= (1 << 20) ? flush() : Status::Ok(); }
  Status flush() {
    if (!buf_.empty() && std::fwrite(buf_.data(), 1, buf_.size(), f_) != buf_.size())
      return Status::Error(path_ + ": write failed");
    buf_.clear();
    return Status::Ok();
  }
  Status close() {
    Status s = flush();
    const bool failed = std::fclose(f_) != 0;
    f_ = nullptr;
    if (s.ok() && failed) return Status::Error(path_ + ": write failed");
    return s;
  }

 private:
  FileOut(std::string path, FILE* f) : path_(std::move(path)), f_(f) {}
  std::string path_;
  FILE* f_;
  std::string buf_;
};

// v with `digits` decimals (1 to 6), rounded half away from zero; faster than
// printf-style formatting, which dominates the output otherwise.
void append_fixed(std::string& out, double v, int digits) {
  static constexpr int64_t kScale[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
  int64_t x = std::llround(v * static_cast<double>(kScale[digits]));
  if (x < 0) {
    out += '-';
    x = -x;
  }
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, x / kScale[digits]);
  out.append(buf, r.ptr);
  out += '.';
  int64_t frac = x % kScale[digits];
  char digit[8];
  for (int i = digits - 1; i >= 0; --i) {
    digit[i] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  out.append(digit, static_cast<size_t>(digits));
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// "YYYY-MM-DD HH:MM:SS" of epoch milliseconds (UTC).
void append_datetime(std::string& out, TimeMs ms) {
  const int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int64_t days = secs / 86'400, rem = secs % 86'400;
  if (rem < 0) {
    rem += 86'400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  char buf[20];
  auto two = [&](int at, int64_t v) {
    buf[at] = static_cast<char>('0' + v / 10);
    buf[at + 1] = static_cast<char>('0' + v % 10);
  };
  two(0, y / 100 % 100);
  two(2, y % 100);
  buf[4] = '-';
  two(5, m);
  buf[7] = '-';
  two(8, d);
  buf[10] = ' ';
  two(11, rem / 3600);
  buf[13] = ':';
  two(14, rem / 60 % 60);
  buf[16] = ':';
  two(17, rem % 60);
  out.append(buf, 19);
}

struct PendingLabel {
  TimeMs reported_at;
  uint64_t id;
  TimeMs ts;
  uint32_t customer, terminal;
  Scenario scenario;
  bool operator>(const PendingLabel& o) const {
    return reported_at != o.reported_at ? reported_at > o.reported_at : id > o.id;
  }
};

}  // namespace

Result<SimSummary> write_fraud_dataset(const FraudSimOptions& options, const std::string& dir,
                                       SimFormat format,
                                       const std::function<void(int, int, uint64_t)>& progress) {
  if (Status s = FraudSimulator::validate(options); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Error(dir + ": " + ec.message());
  const auto started = std::chrono::steady_clock::now();
  const bool handbook = format == SimFormat::Handbook;
  FraudSimOptions opts = options;
  if (handbook) opts.handbook = true;
  FraudSimulator sim(opts);

  const std::string tx_path = dir + (handbook ? "/transactions.csv" : "/transactions.jsonl");
  MR_TRY_ASSIGN(tx_out, FileOut::open(tx_path));
  std::unique_ptr<FileOut> label_out;
  if (!handbook) {
    auto opened = FileOut::open(dir + "/labels.jsonl");
    if (!opened.ok()) return opened.status();
    label_out = std::move(opened.value());
  }
  if (!handbook) {
    MR_TRY_ASSIGN(cards, FileOut::open(dir + "/cards.csv"));
    std::string& b = cards->buf();
    b += "card_id,home_lat,home_lon,billing_country,devices\n";
    for (uint32_t c = 0; c < opts.customers; ++c) {
      b += 'c';
      append_int(b, c);
      b += ',';
      append_fixed(b, FraudSimulator::latitude(sim.home_y(c)), 4);
      b += ',';
      append_fixed(b, FraudSimulator::longitude(sim.home_x(c)), 4);
      b += ',';
      b += sim.billing_country(c);
      b += ',';
      append_int(b, sim.devices(c));
      b += '\n';
      if (Status st = cards->maybe_flush(); !st.ok()) return st;
    }
    if (Status st = cards->close(); !st.ok()) return st;
  }
  if (handbook)
    tx_out->buf() +=
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,"
        "TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n";

  // Labels wait in a heap until no later transaction can be reported before them.
  std::priority_queue<PendingLabel, std::vector<PendingLabel>, std::greater<>> pending;
  auto write_label = [&](const PendingLabel& l) {
    std::string& b = label_out->buf();
    const uint32_t phys = sim.physical_terminals();
    b += R"({"id":"t)";
    append_int(b, static_cast<int64_t>(l.id));
    b += R"(","card_id":"c)";
    append_int(b, l.customer);
    b += l.terminal < phys ? R"(","terminal_id":"T)" : R"(","terminal_id":"W)";
    append_int(b, l.terminal < phys ? l.terminal : l.terminal - phys);
    b += R"(","ts":)";
    append_int(b, l.ts);
    b += l.scenario != Scenario::None ? R"(,"is_fraud":true,"scenario":")"
                                      : R"(,"is_fraud":false,"scenario":")";
    b += scenario_name(l.scenario);
    b += R"(","reported_at":)";
    append_int(b, l.reported_at);
    b += "}\n";
  };

  SimSummary summary;
  std::vector<uint8_t> card_fraud(opts.customers, 0);
  std::vector<SimTransaction> day;
  const uint32_t phys = sim.physical_terminals();
  while (sim.next_day(&day)) {
    for (const auto& tx : day) {
      std::string& b = tx_out->buf();
      if (handbook) {
        append_int(b, static_cast<int64_t>(tx.id));
        b += ',';
        append_datetime(b, tx.ts);
        const TimeMs secs = (tx.ts - opts.start) / 1000;
        b += ',';
        append_int(b, tx.customer);
        b += ',';
        append_int(b, tx.terminal);
        b += ',';
        append_fixed(b, tx.amount, 2);
        b += ',';
        append_int(b, secs);
        b += ',';
        append_int(b, secs / 86'400);
        b += tx.fraud() ? ",1," : ",0,";
        append_int(b, static_cast<int>(tx.scenario));
        b += '\n';
      } else {
        const bool online = tx.terminal >= phys;
        b += R"({"id":"t)";
        append_int(b, static_cast<int64_t>(tx.id));
        b += R"(","ts":)";
        append_int(b, tx.ts);
        b += R"(,"card_id":"c)";
        append_int(b, tx.customer);
        b += online ? R"(","terminal_id":"W)" : R"(","terminal_id":"T)";
        append_int(b, online ? tx.terminal - phys : tx.terminal);
        b += R"(","mcc":")";
        append_int(b, sim.mcc(tx.terminal));
        b += R"(","amount":)";
        append_fixed(b, tx.amount, 2);
        b += tx.card_present ? R"(,"card_present":true,)" : R"(,"card_present":false,)";
        if (tx.device >= 0) {
          b += R"("device_id":"d)";
          append_int(b, tx.device);
          b += R"(",)";
        } else {
          b += R"("device_id":null,)";
        }
        b += R"("lat":)";
        append_fixed(b, FraudSimulator::latitude(tx.y), 4);
        b += R"(,"lon":)";
        append_fixed(b, FraudSimulator::longitude(tx.x), 4);
        b += R"(,"country":")";
        b += FraudSimulator::country_at(tx.x, tx.y);
        b += R"(","billing_country":")";
        b += sim.billing_country(tx.customer);
        b += "\"}\n";
        pending.push({tx.reported_at, tx.id, tx.ts, tx.customer, tx.terminal, tx.scenario});
      }
      if (Status s = tx_out->maybe_flush(); !s.ok()) return s;
      ++summary.transactions;
      ++summary.by_scenario[static_cast<int>(tx.scenario)];
      if (tx.fraud()) {
        ++summary.frauds;
        if (!card_fraud[tx.customer]) {
          card_fraud[tx.customer] = 1;
          ++summary.fraud_cards;
        }
      }
    }
    if (label_out) {
      // Every later transaction is at or after the next day's start.
      const TimeMs horizon = opts.start + static_cast<TimeMs>(sim.day()) * 86'400'000LL;
      while (!pending.empty() && pending.top().reported_at < horizon) {
        write_label(pending.top());
        pending.pop();
        if (Status s = label_out->maybe_flush(); !s.ok()) return s;
      }
    }
    if (progress) progress(sim.day(), opts.days, summary.transactions);
  }
  if (label_out) {
    while (!pending.empty()) {
      write_label(pending.top());
      pending.pop();
      if (Status s = label_out->maybe_flush(); !s.ok()) return s;
    }
    if (Status s = label_out->close(); !s.ok()) return s;
  }
  if (Status s = tx_out->close(); !s.ok()) return s;
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace millrace::sim
