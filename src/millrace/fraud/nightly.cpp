#include "millrace/fraud/nightly.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "millrace/core/event_parser.h"
#include "millrace/core/json_writer.h"

namespace millrace::fraud {
namespace {

constexpr TimeMs kDay = 86'400'000;
constexpr int kWindowDays = 30;

int64_t day_of(TimeMs t) {
  return t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay);
}

struct DayEntry {
  uint32_t card;
  int32_t device;  // index into device keys, -1 for card present
  double amount;
  bool cnp;
};

// Running 30-day sums of one card.
struct CardWindow {
  uint64_t n = 0, cnp = 0, lifetime = 0;
  double sum = 0, sumsq = 0;
};

Status write_file(const std::string& path, const std::string& body) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::Error(tmp + ": cannot open for writing");
  const bool ok = std::fwrite(body.data(), 1, body.size(), f) == body.size();
  if (std::fclose(f) != 0 || !ok) return Status::Error(tmp + ": write failed");
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // readers polling the file see it whole
  if (ec) return Status::Error(path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<NightlyStats> run_nightly(const NightlyOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  NightlyStats stats;
  Schema schema;
  const int ts = schema.add({"ts", FieldType::Timestamp, false});
  const int card = schema.add({"card_id", FieldType::String, false});
  const int amount = schema.add({"amount", FieldType::Double, false});
  const int present = schema.add({"card_present", FieldType::Bool, false});
  const int device = schema.add({"device_id", FieldType::String, true});
  EventParser parser(schema, ts);

  std::ifstream in(o.transactions, std::ios::binary);
  if (!in) return Status::Error(o.transactions + ": cannot open");
  std::vector<std::string> cards, devices;
  absl::flat_hash_map<std::string, uint32_t> card_index, device_index;
  std::map<int64_t, std::vector<DayEntry>> by_day;
  std::string line, error;
  Event ev;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    const size_t len = line.size();
    line.resize(len + simdjson::SIMDJSON_PADDING);
    if (!parser.parse(line.data(), len, line.size(), &ev, &error))
      return Status::Error(fmt::format("{}:{}: {}", o.transactions, lineno, error));
    if (ev.time >= o.until) continue;
    ++stats.transactions;
    const std::string_view c = ev.str(card);
    auto [it, fresh] = card_index.try_emplace(absl::string_view(c.data(), c.size()),
                                              static_cast<uint32_t>(cards.size()));
    if (fresh) cards.emplace_back(c);
    DayEntry e{it->second, -1, ev.values[amount].d, !ev.values[present].b};
    if (!ev.values[device].is_null()) {
      const std::string key = fmt::format("{},{}", c, ev.str(device));
      auto [d, dfresh] = device_index.try_emplace(key, static_cast<int32_t>(devices.size()));
      if (dfresh) devices.push_back(key);
      e.device = static_cast<int32_t>(d->second);
    }
    by_day[day_of(ev.time)].push_back(e);
  }
  if (in.bad()) return Status::Error(o.transactions + ": read failed");
  if (by_day.empty()) return Status::Error(o.transactions + ": no transaction");

  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return Status::Error(o.out_dir + ": " + ec.message());
  std::string card_csv =
      "card_id,as_of,avg_amount_30d,std_amount_30d,tx_30d,cnp_share_30d,lifetime_count\n";
  std::string device_csv = "card_id,device_id,as_of,tx_count\n";
  std::vector<CardWindow> w(cards.size());
  std::vector<uint64_t> device_count(devices.size(), 0);
  std::vector<uint8_t> device_changed(devices.size(), 0);
  std::vector<int32_t> changed;
  const int64_t first = by_day.begin()->first, last = by_day.rbegin()->first;
  static const std::vector<DayEntry> kNone;
  auto day_entries = [&](int64_t d) -> const std::vector<DayEntry>& {
    auto it = by_day.find(d);
    return it == by_day.end() ? kNone : it->second;
  };
  for (int64_t night = first + 1; night <= last + 1; ++night) {
    const TimeMs midnight = night * kDay;
    if (midnight > o.until) break;
    ++stats.nights;
    for (const DayEntry& e : day_entries(night - 1)) {  // the day that just ended comes in
      CardWindow& cw = w[e.card];
      ++cw.n;
      ++cw.lifetime;
      cw.cnp += e.cnp;
      cw.sum += e.amount;
      cw.sumsq += e.amount * e.amount;
      if (e.device >= 0) {
        ++device_count[e.device];
        if (!device_changed[e.device]) changed.push_back(e.device);
        device_changed[e.device] = 1;
      }
    }
    for (const DayEntry& e : day_entries(night - 1 - kWindowDays)) {  // leaves the 30 days
      CardWindow& cw = w[e.card];
      --cw.n;
      cw.cnp -= e.cnp;
      cw.sum -= e.amount;
      cw.sumsq -= e.amount * e.amount;
    }
    const TimeMs as_of = midnight + o.ready_after;
    std::string as_of_text;
    append_json_int(as_of_text, as_of);
    for (size_t c = 0; c < cards.size(); ++c) {
      const CardWindow& cw = w[c];
      if (cw.lifetime == 0) continue;
      card_csv += cards[c];
      card_csv += ',';
      card_csv += as_of_text;
      if (cw.n == 0) {
        card_csv += ",,,0,,";
      } else {
        const double n = static_cast<double>(cw.n);
        const double mean = cw.sum / n;
        const double var = std::max(0.0, cw.sumsq / n - mean * mean);
        card_csv += fmt::format(",{:.4f},{:.4f},{},{:.4f},", mean, std::sqrt(var), cw.n,
                                static_cast<double>(cw.cnp) / n);
      }
      append_json_int(card_csv, static_cast<int64_t>(cw.lifetime));
      card_csv += '\n';
      ++stats.card_rows;
    }
    for (int32_t d : changed) {
      device_csv += devices[d];
      device_csv += ',';
      device_csv += as_of_text;
      device_csv += ',';
      append_json_int(device_csv, static_cast<int64_t>(device_count[d]));
      device_csv += '\n';
      device_changed[d] = 0;
      ++stats.device_rows;
    }
    changed.clear();
  }
  stats.cards = cards.size();
  if (Status s = write_file(o.out_dir + "/card_stats.csv", card_csv); !s.ok()) return s;
  if (Status s = write_file(o.out_dir + "/device_stats.csv", device_csv); !s.ok()) return s;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace millrace::fraud
