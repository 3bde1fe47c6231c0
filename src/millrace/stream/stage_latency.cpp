#include "millrace/stream/stage_latency.h"

#include <fmt/format.h>

namespace millrace {

const char* StageLatency::name(int stage) {
  static const char* names[] = {
      "ingest",   "feature computation",      "feature retrieval", "inference",
      "decision", "total (event -> decision)"};
  return stage >= 0 && stage < kStages ? names[stage] : "?";
}

std::string StageLatency::table() const {
  std::string out = fmt::format("{:<27} {:>10} {:>10} {:>10} {:>10}\n", "stage (us)", "p50", "p99",
                                "p99.9", "max");
  for (int i = 0; i < kStages; ++i) {
    const LatencyHistogram& h = stages[i];
    out += fmt::format("{:<27} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n", name(i),
                       h.quantile(0.5) / 1e3, h.quantile(0.99) / 1e3, h.quantile(0.999) / 1e3,
                       static_cast<double>(h.max()) / 1e3);
  }
  return out;
}

}  // namespace millrace
