// millrace generate: synthetic event streams for demos and benchmarks.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "command.h"
#include "millrace/sim/transactions.h"

namespace millrace::cli {
namespace {

void register_generate(CLI::App& app) {
  auto* gen = app.add_subcommand("generate", "Generate synthetic event streams (JSONL on stdout)");
  gen->footer(
      "Example:\n"
      "  millrace generate transactions --events 1000 > tx.jsonl\n");
  gen->require_subcommand(1);
  auto opts = std::make_shared<TransactionStreamOptions>();
  auto events = std::make_shared<uint64_t>(100'000);
  auto* tx = gen->add_subcommand("transactions",
                                 "Card transactions: id, card_id, merchant_id, amount, ts");
  tx->add_option("--events", *events, "How many (default 100000)");
  tx->add_option("--cards", opts->cards, "Distinct cards (default 10000)");
  tx->add_option("--merchants", opts->merchants, "Distinct merchants (default 1000)");
  tx->add_option("--gap-ms", opts->mean_gap_ms,
                 "Mean event-time gap between transactions (default 10)");
  tx->add_option("--out-of-order", opts->out_of_order,
                 "Fraction of events up to 3 s behind (default 0.02)");
  tx->add_option("--seed", opts->seed, "Random seed: the same seed gives the same stream");
  tx->footer(
      "Example:\n"
      "  millrace generate transactions --events 1000000 --cards 50000 --seed 7 > tx.jsonl");
  tx->callback([opts, events] {
    TransactionStream stream(*opts);
    std::string buf;
    for (uint64_t i = 0; i < *events; ++i) {
      stream.next(&buf);
      if (buf.size() >= (1 << 20)) {
        if (std::fwrite(buf.data(), 1, buf.size(), stdout) != buf.size()) return;  // pipe closed
        buf.clear();
      }
    }
    std::fwrite(buf.data(), 1, buf.size(), stdout);
  });
}

CommandRegistrar reg("generate", register_generate);

}  // namespace
}  // namespace millrace::cli
