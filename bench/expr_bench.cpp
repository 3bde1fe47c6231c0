// Cost of derived features: a set of 10 expressions (arithmetic, coalesce,
// comparisons and logic, if, log1p/abs/min/max, haversine_km, hour_of_day,
// day_of_week, a batch value as of the event and a table lookup) evaluated per
// event, beside the parse-only loop (simdjson parsing the same events' JSON
// lines into Events) run in the same process. The expressions are compiled
// once; each event runs the 10 postfix programs into its feature values.
//
//   expr_bench [events=1000000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <simdjson.h>

#include "millrace/core/event_parser.h"
#include "millrace/features/derived_features.h"
#include "millrace/stream/spec.h"

namespace millrace {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

int Main(int argc, char** argv) {
  const size_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  // The spec and its files in a temporary directory, removed at the end.
  struct Dir {
    std::string path;
    Dir() {
      std::string t = (std::filesystem::temp_directory_path() / "millrace-expr-XXXXXX").string();
      path = ::mkdtemp(t.data());
    }
    ~Dir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return path + "/" + name; }
  } dir;
  {
    std::ofstream b(dir.file("card_stats.csv"));
    b << "card_id,as_of,avg_amount_30d\n";
    for (int c = 0; c < 10'000; ++c) b << "c" << c << ",1767225600000," << (c % 97 + 5) << "\n";
    std::ofstream m(dir.file("merchants.csv"));
    m << "merchant_id,risk,lat,lon\n";
    for (int i = 0; i < 1000; ++i)
      m << "m" << i << "," << (i % 100) / 100.0 << "," << 40 + i % 10 << "," << i % 20 << "\n";
  }
  std::ofstream(dir.file("spec.yaml")) << R"Y(source:
  time: ts
  schema: {id: string, card_id: string, merchant_id: string, amount: double, lat: double?,
           lon: double?, ts: int64}
batch:
  - {name: card_stats, path: card_stats.csv, key: card_id, columns: {avg_amount_30d: double?}, poll: 0}
tables:
  - {name: merchants, path: merchants.csv, key: merchant_id,
     columns: {risk: double?, lat: double?, lon: double?}}
features:
  - {name: f1, expr: "amount / coalesce(batch.card_stats.avg_amount_30d, amount)"}
  - {name: f2, expr: "coalesce(lookup(merchants, merchant_id).risk, 0.5)"}
  - {name: f3, expr: "log1p(abs(amount - 50))"}
  - {name: f4, expr: "amount > 100 and f2 > 0.5 or f1 > 3"}
  - {name: f5, expr: "if(f4, min(amount, 500), max(amount * 0.5, 1))"}
  - {name: f6, expr: "hour_of_day(ts)"}
  - {name: f7, expr: "day_of_week(ts) >= 5 or hour_of_day(ts) < 6"}
  - {name: f8, expr: "haversine_km(coalesce(lat, 0.0), coalesce(lon, 0.0), 45.0, 10.0)"}
  - {name: f9, expr: "(amount * 3 + f3 - f1) % 7"}
  - {name: f10, expr: "if(is_null(lat), -1.0, f8 / (1 + f6))"}
)Y";
  auto spec = load_spec(dir.file("spec.yaml"));
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 1;
  }
  auto derived = DerivedFeatures::Open(spec.value(), DerivedFeatures::Options{false, false});
  if (!derived.ok()) {
    std::fprintf(stderr, "%s\n", derived.status().message().c_str());
    return 1;
  }
  auto evaluator = derived.value()->evaluator();

  std::mt19937_64 rng(7);
  std::string lines;
  std::vector<std::pair<size_t, size_t>> at;
  for (size_t i = 0; i < events; ++i) {
    size_t start = lines.size();
    std::string lat = rng() % 10 ? fmt::format("{}", 40 + (rng() % 1000) / 100.0) : "null";
    lines += fmt::format(
        "{{\"id\": \"t{}\", \"card_id\": \"c{}\", \"merchant_id\": \"m{}\", \"amount\": {}, "
        "\"lat\": {}, \"lon\": {}, \"ts\": {}}}",
        i, rng() % 12'000, rng() % 1100, (rng() % 100'000) / 100.0, lat, (rng() % 2000) / 100.0,
        1767225600000 + static_cast<int64_t>(i) * 37);
    at.emplace_back(start, lines.size() - start);
    lines += '\n';
  }
  lines.append(simdjson::SIMDJSON_PADDING, ' ');
  EventParser parser(spec->source.schema, spec->source.time_field);
  Event e;
  std::string error;
  std::vector<FeatureValue> values(spec->feature_slots());

  // Parse-only loop.
  double parse_s = 1e30, both_s = 1e30;
  uint64_t check = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    for (const auto& [off, len] : at) {
      parser.parse(lines.data() + off, len, lines.size() - off, &e, &error);
      check += e.values.size();
    }
    parse_s = std::min(parse_s, Seconds(t0));
    // Parse, then the 10 derived features.
    t0 = Clock::now();
    for (const auto& [off, len] : at) {
      parser.parse(lines.data() + off, len, lines.size() - off, &e, &error);
      evaluator->evaluate(e, values.data());
      check += values[4].kind == FeatureValue::Kind::Double;
    }
    both_s = std::min(both_s, Seconds(t0));
  }
  const double parse_ns = parse_s * 1e9 / events, both_ns = both_s * 1e9 / events;
  const double expr_ns = both_ns - parse_ns;
  std::printf("derived features: 10 expressions over %zu events (best of 3)\n", events);
  std::printf("  parse only          %7.1f ns/event  %6.2f M events/s\n", parse_ns,
              events / parse_s / 1e6);
  std::printf(
      "  parse + 10 exprs    %7.1f ns/event  %6.2f M events/s  (%.2fx the parse-only "
      "throughput)\n",
      both_ns, events / both_s / 1e6, parse_s / both_s);
  std::printf(
      "  10 exprs alone      %7.1f ns/event  (%.1f ns per expression; %.2fx the parse "
      "cost)\n",
      expr_ns, expr_ns / 10, expr_ns / parse_ns);
  return check == 0;
}

}  // namespace
}  // namespace millrace

int main(int argc, char** argv) {
  return millrace::Main(argc, argv);
}
