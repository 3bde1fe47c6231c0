// Throughput of the fraud simulator (millrace simulate fraud), beside a
// baseline run in the same process: the simple benchmark transaction stream
// (sim/transactions.h), which draws a card, a merchant and an amount per
// event and formats one JSON line. The fraud simulator does much more per
// transaction (profiles, terminals in reach, scenarios, sorting each day into
// event-time order, labels), so ratios below 1 are the cost of that.
//
//   sim_bench [customers=5000] [days=30] [dir=/tmp]
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "millrace/sim/fraud_simulator.h"
#include "millrace/sim/transactions.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

void Print(const char* what, uint64_t n, double s, double base_rate) {
  const double rate = n / s;
  if (base_rate <= 0)
    std::printf("%-52s %9.2f M tx/s   (baseline)\n", what, rate / 1e6);
  else
    std::printf("%-52s %9.2f M tx/s   %5.2fx baseline\n", what, rate / 1e6, rate / base_rate);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace millrace;
  sim::FraudSimOptions o;
  o.customers = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000;
  o.terminals = o.customers * 2;
  o.days = argc > 2 ? std::atoi(argv[2]) : 30;
  const std::string dir =
      (std::filesystem::path(argc > 3 ? argv[3] : "/tmp") / "millrace-sim-bench").string();

  // How many transactions the handbook design makes, in memory.
  o.handbook = true;
  auto t = Clock::now();
  uint64_t n = 0;
  {
    sim::FraudSimulator s(o);
    std::vector<sim::SimTransaction> day;
    while (s.next_day(&day)) n += day.size();
  }
  const double in_memory = Seconds(t);

  // Baseline: the same number of events from the simple stream, formatted.
  TransactionStreamOptions so;
  TransactionStream stream(so);
  std::string buf;
  t = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    stream.next(&buf);
    if (buf.size() > (1 << 20)) buf.clear();
  }
  const double base = n / Seconds(t);
  std::printf("%lu transactions (%lu customers, %lu terminals, %d days)\n", n, o.customers,
              o.terminals, o.days);
  Print("simple stream, JSON lines in memory", n, n / base, 0);
  Print("fraud simulator, handbook design, in memory", n, in_memory, base);

  for (auto [format, what] :
       {std::pair{sim::SimFormat::Handbook, "fraud simulator, handbook CSV file"},
        std::pair{sim::SimFormat::Jsonl, "fraud simulator, extended, JSONL + labels files"}}) {
    o.handbook = false;
    t = Clock::now();
    auto r = sim::write_fraud_dataset(o, dir, format);
    const double s = Seconds(t);
    if (!r.ok()) {
      std::fprintf(stderr, "sim_bench: %s\n", r.status().message().c_str());
      return 1;
    }
    Print(what, r->transactions, s, base);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
