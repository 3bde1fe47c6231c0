#include "millrace/sim/transactions.h"

#include <cmath>

#include <fmt/format.h>

namespace millrace {

void TransactionStream::next(std::string* out) {
  std::uniform_real_distribution<double> u(0, 1);
  time_ += static_cast<TimeMs>(-std::log(1 - u(rng_)) * opts_.mean_gap_ms);
  TimeMs t = time_;
  if (u(rng_) < opts_.out_of_order) t -= static_cast<TimeMs>(u(rng_) * 3000);
  std::lognormal_distribution<double> amount(3.5, 1.0);
  uint64_t card = rng_() % opts_.cards;
  uint64_t merchant = rng_() % opts_.merchants;
  double a = std::round(amount(rng_) * 100) / 100;
  fmt::format_to(std::back_inserter(*out),
                 "{{\"id\": \"t{}\", \"card_id\": \"c{}\", \"merchant_id\": \"m{}\", "
                 "\"amount\": {}, \"ts\": {}}}\n",
                 n_++, card, merchant, a, t);
}

}  // namespace millrace
