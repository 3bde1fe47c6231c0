#include "millrace/eval/handbook.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <absl/container/flat_hash_set.h>
#include <fmt/format.h>

#include "millrace/core/event_parser.h"
#include "millrace/core/hash.h"
#include "millrace/core/json_writer.h"
#include "millrace/model/model.h"
#include "millrace/model/trainer.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"

namespace millrace::eval {
namespace {

constexpr TimeMs kDayMs = 86'400'000;
constexpr const char* kColumns[] = {"TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID",
                                    "TERMINAL_ID",    "TX_AMOUNT",   "TX_FRAUD"};

// Splits one CSV line into cells (double-quoted cells may hold commas and "").
void split_csv(std::string_view line, std::vector<std::string>* cells) {
  cells->clear();
  std::string cell;
  size_t i = 0;
  while (true) {
    cell.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        cell += line[i++];
      }
      while (i < line.size() && line[i] != ',') cell += line[i++];
    } else {
      const size_t end = std::min(line.find(',', i), line.size());
      cell.assign(line.substr(i, end - i));
      i = end;
    }
    cells->push_back(cell);
    if (i >= line.size()) break;
    ++i;  // the comma
    if (i == line.size()) {
      cells->emplace_back();
      break;
    }
  }
}

// "YYYY-MM-DD HH:MM:SS" (a 'T' may stand for the space) -> epoch ms, UTC.
bool parse_datetime(std::string_view s, TimeMs* out) {
  if (s.size() != 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
      s[13] != ':' || s[16] != ':')
    return false;
  auto num = [&](size_t pos, size_t len, int* v) {
    auto r = std::from_chars(s.data() + pos, s.data() + pos + len, *v);
    return r.ec == std::errc() && r.ptr == s.data() + pos + len;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &se))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return false;
  *out = (days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86'400 +
          h * 3'600 + mi * 60 + se) *
         1000;
  return true;
}

bool parse_double(std::string_view s, double* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(*out);
}

int64_t day_index(TimeMs ts) {
  return ts >= 0 ? ts / kDayMs : -((-ts + kDayMs - 1) / kDayMs);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// A working directory that removes itself when it made itself.
class WorkDir {
 public:
  static Result<WorkDir> make(const std::string& requested) {
    WorkDir w;
    std::error_code ec;
    if (!requested.empty()) {
      std::filesystem::create_directories(requested, ec);
      if (ec) return Status::Error(requested + ": " + ec.message());
      w.path_ = requested;
      return w;
    }
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "millrace-handbook-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      return Status::Error("cannot create a temporary directory in " +
                           std::filesystem::temp_directory_path().string());
    w.path_ = tmpl;
    w.owned_ = true;
    return w;
  }
  WorkDir() = default;
  WorkDir(WorkDir&& o) noexcept : path_(std::move(o.path_)), owned_(o.owned_) { o.owned_ = false; }
  ~WorkDir() {
    if (owned_) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool owned_ = false;
};

}  // namespace

Result<std::vector<HandbookTransaction>> read_handbook_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Error(path + ": cannot open");
  std::string line;
  std::vector<std::string> cells;
  if (!std::getline(in, line)) return Status::Error(path + ":1: empty file; expected a header");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  split_csv(line, &cells);
  const size_t width = cells.size();
  int col[6];
  for (int c = 0; c < 6; ++c) {
    auto it = std::find(cells.begin(), cells.end(), kColumns[c]);
    if (it == cells.end())
      return Status::Error(
          fmt::format("{}:1: no column {}; the handbook's table needs TRANSACTION_ID, TX_DATETIME, "
                      "CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT and TX_FRAUD",
                      path, kColumns[c]));
    col[c] = static_cast<int>(it - cells.begin());
  }
  std::vector<HandbookTransaction> rows;
  size_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    split_csv(line, &cells);
    if (cells.size() != width)
      return Status::Error(
          fmt::format("{}:{}: {} cells; the header has {}", path, lineno, cells.size(), width));
    HandbookTransaction tx;
    tx.id = cells[col[0]];
    tx.customer = cells[col[2]];
    tx.terminal = cells[col[3]];
    for (int c : {0, 2, 3})
      if (cells[col[c]].empty())
        return Status::Error(fmt::format("{}:{}: column {}: empty", path, lineno, kColumns[c]));
    if (!parse_datetime(cells[col[1]], &tx.ts))
      return Status::Error(
          fmt::format("{}:{}: column TX_DATETIME: expected \"YYYY-MM-DD HH:MM:SS\", got \"{}\"",
                      path, lineno, cells[col[1]]));
    if (!parse_double(cells[col[4]], &tx.amount))
      return Status::Error(fmt::format("{}:{}: column TX_AMOUNT: expected a number, got \"{}\"",
                                       path, lineno, cells[col[4]]));
    double fraud = 0;
    if (!parse_double(cells[col[5]], &fraud) || (fraud != 0 && fraud != 1))
      return Status::Error(fmt::format("{}:{}: column TX_FRAUD: expected 0 or 1, got \"{}\"", path,
                                       lineno, cells[col[5]]));
    tx.fraud = fraud == 1;
    rows.push_back(std::move(tx));
  }
  if (in.bad()) return Status::Error(path + ": read failed");
  return rows;
}

HandbookSplit handbook_split(const std::vector<HandbookTransaction>& rows,
                             const HandbookProtocol& p) {
  const int64_t first = day_index(p.train_start);
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rows[a].ts < rows[b].ts; });
  // Frauds by day, for the customers known to be compromised.
  absl::flat_hash_map<int64_t, std::vector<size_t>> frauds_by_day;
  HandbookSplit split;
  absl::flat_hash_set<std::string> known;
  for (size_t r : order) {
    const int64_t day = day_index(rows[r].ts);
    if (rows[r].fraud) frauds_by_day[day].push_back(r);
    if (day >= first && day < first + p.train_days) {
      split.train.push_back(r);
      if (rows[r].fraud) known.insert(rows[r].customer);
    }
  }
  for (int d = 0; d < p.test_days; ++d) {
    // Test day first + train + delay + d: the frauds of day first + train + d - 1
    // are known by then (the training week's frauds are known from the start).
    const int64_t reported_day = first + p.train_days + d - 1;
    if (reported_day >= first + p.train_days)
      for (size_t r : frauds_by_day[reported_day]) known.insert(rows[r].customer);
    const int64_t test_day = first + p.train_days + p.delay_days + d;
    for (size_t r : order)
      if (day_index(rows[r].ts) == test_day && !known.contains(rows[r].customer))
        split.test.push_back(r);
  }
  return split;
}

Result<HandbookResult> run_handbook(const HandbookOptions& o,
                                    const std::function<void(const std::string&)>& progress) {
  const auto started = std::chrono::steady_clock::now();
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  HandbookResult result;
  const HandbookProtocol& p = o.protocol;
  if (p.train_days < 1 || p.delay_days < 0 || p.test_days < 1)
    return Status::Error("the protocol needs at least one training and one test day");

  // The spec first: a bad spec fails before the table is read.
  auto spec = load_spec(o.spec);
  if (!spec.ok()) return spec.status();
  for (const char* field : {"kind", "i", "ts", "customer_id", "terminal_id", "amount", "fraud"})
    if (spec->source.schema.index_of(field) < 0)
      return Status::Error(
          fmt::format("{}: the schema has no field '{}'; the handbook's events have kind, i, ts, "
                      "customer_id, terminal_id, amount and fraud",
                      o.spec, field));

  say("reading " + o.transactions);
  auto t0 = std::chrono::steady_clock::now();
  MR_TRY_ASSIGN(rows, read_handbook_csv(o.transactions));
  result.rows_read = rows.size();
  const HandbookSplit split = handbook_split(rows, p);
  result.seconds_read = seconds_since(t0);
  if (split.train.empty())
    return Status::Error(fmt::format("{}: no transaction in the training period ({} days from {})",
                                     o.transactions, p.train_days,
                                     format_rfc3339_ms(p.train_start)));
  if (split.test.empty())
    return Status::Error(fmt::format(
        "{}: no transaction in the test period ({} days from {})", o.transactions, p.test_days,
        format_rfc3339_ms(p.train_start + (p.train_days + p.delay_days) * kDayMs)));

  // The stream: every transaction from the longest window before the
  // training start to the end of the test, and its label 7 days later.
  TimeMs longest = 0;
  for (const auto& f : spec->features) longest = std::max(longest, f.window);
  const TimeMs delay = p.delay_days * kDayMs;
  const TimeMs from = p.train_start - delay - longest - kDayMs;
  const TimeMs to = p.train_start + (p.train_days + p.delay_days + p.test_days) * kDayMs;
  struct StreamEvent {
    TimeMs time;
    bool is_tx;  // labels first at equal times: a label at t counts for a transaction at t
    size_t row;
  };
  std::vector<StreamEvent> events;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].ts < from || rows[r].ts >= to) continue;
    events.push_back({rows[r].ts, true, r});
    if (rows[r].ts + delay < to) events.push_back({rows[r].ts + delay, false, r});
  }
  std::sort(events.begin(), events.end(), [](const StreamEvent& a, const StreamEvent& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.is_tx != b.is_tx) return !a.is_tx;
    return a.row < b.row;
  });
  result.events_streamed = events.size();

  MR_TRY_ASSIGN(work, WorkDir::make(o.work_dir));
  say(fmt::format("computing features of {} events with {}", events.size(), o.spec));
  t0 = std::chrono::steady_clock::now();
  {
    std::ofstream out(work.file("events.jsonl"), std::ios::binary | std::ios::trunc);
    if (!out) return Status::Error(work.file("events.jsonl") + ": cannot open for writing");
    std::string buf;
    for (const auto& e : events) {
      const HandbookTransaction& tx = rows[e.row];
      buf += e.is_tx ? R"({"kind":"tx","i":)" : R"({"kind":"label","i":)";
      append_json_int(buf, static_cast<int64_t>(e.row));
      buf += R"(,"ts":)";
      append_json_int(buf, e.time);
      buf += R"(,"customer_id":)";
      append_json_string(buf, tx.customer);
      buf += R"(,"terminal_id":)";
      append_json_string(buf, tx.terminal);
      if (e.is_tx) {
        buf += R"(,"amount":)";
        append_json_double(buf, tx.amount);
      } else {
        buf += tx.fraud ? R"(,"fraud":1)" : R"(,"fraud":0)";
      }
      buf += "}\n";
      if (buf.size() > (1 << 20)) {
        out << buf;
        buf.clear();
      }
    }
    out << buf;
    if (!out.flush()) return Status::Error(work.file("events.jsonl") + ": write failed");
  }
  RunOptions run;
  run.input = work.file("events.jsonl");
  run.output = work.file("features.jsonl");
  run.dead_letter = work.file("dead-letters.jsonl");
  run.workers = o.workers;
  MR_TRY_ASSIGN(stats, run_pipeline(*spec, run));
  if (stats.dead_letters > 0 || stats.late_dropped + stats.late_side_output > 0)
    return Status::Error(fmt::format(
        "{}: the engine rejected {} events and found {} late (see {}); the spec's schema must "
        "accept the handbook's events",
        o.spec, stats.dead_letters, stats.late_dropped + stats.late_side_output,
        work.file("dead-letters.jsonl")));

  // Columns: the amount, the weekend and night flags (unless the spec has
  // features of those names), then the spec's features in order, where a
  // count of frauds `X_nb_fraud_Y` stands for the risk `X_risk_Y` (the spec's
  // feature of that name if it has one, else the count divided by `X_nb_tx_Y`
  // here), and is not a column itself.
  auto feature_index = [&](const std::string& name) {
    for (size_t g = 0; g < spec->features.size(); ++g)
      if (spec->features[g].name == name) return static_cast<int>(g);
    return -1;
  };
  enum class Kind { Amount, Weekend, Night, Feature, Risk };
  struct Column {
    Kind kind;
    int value = -1;        // spec feature index
    int denominator = -1;  // for a risk: the count's index
  };
  std::vector<std::string>& names = result.features;
  std::vector<Column> columns = {{Kind::Amount}};
  names = {"tx_amount"};
  for (auto [name, kind] :
       {std::pair{"tx_during_weekend", Kind::Weekend}, std::pair{"tx_during_night", Kind::Night}})
    if (feature_index(name) < 0) {
      names.emplace_back(name);
      columns.push_back({kind});
    }
  for (size_t f = 0; f < spec->features.size(); ++f) {
    const std::string& name = spec->features[f].name;
    const size_t at = name.find("_nb_fraud_");
    if (at == std::string::npos) {
      names.push_back(name);
      columns.push_back({Kind::Feature, static_cast<int>(f)});
      continue;
    }
    const std::string risk = name.substr(0, at) + "_risk_" + name.substr(at + 10);
    if (feature_index(risk) >= 0) continue;  // the spec computes it
    std::string count = name;
    count.replace(at, 10, "_nb_tx_");
    const int denominator = feature_index(count);
    if (denominator < 0)
      return Status::Error(
          fmt::format("{}: feature '{}' has no count '{}' to divide it by", o.spec, name, count));
    names.push_back(risk);
    columns.push_back({Kind::Risk, static_cast<int>(f), denominator});
  }
  const size_t width = names.size();

  // Rows of the sets, and their place in the matrices.
  std::vector<int64_t> slot(rows.size(), -1);
  for (size_t i = 0; i < split.train.size(); ++i) slot[split.train[i]] = static_cast<int64_t>(i);
  for (size_t i = 0; i < split.test.size(); ++i)
    slot[split.test[i]] = static_cast<int64_t>(split.train.size() + i);
  std::vector<float> matrix((split.train.size() + split.test.size()) * width, NAN);
  std::vector<uint8_t> filled(split.train.size() + split.test.size(), 0);
  {
    Schema schema;
    const int kind = schema.add({"kind", FieldType::String, false});
    const int idx = schema.add({"i", FieldType::Int64, false});
    const int ts = schema.add({"ts", FieldType::Int64, false});
    std::vector<int> fidx;
    for (const auto& f : spec->features)
      fidx.push_back(schema.add({f.name, FieldType::Double, true}));
    EventParser parser(schema, ts);
    std::ifstream in(work.file("features.jsonl"), std::ios::binary);
    if (!in) return Status::Error(work.file("features.jsonl") + ": cannot open");
    std::string line;
    Event ev;
    std::string error;
    size_t lineno = 0;
    std::vector<double> v(spec->features.size());
    while (std::getline(in, line)) {
      ++lineno;
      const size_t len = line.size();
      line.resize(len + simdjson::SIMDJSON_PADDING);
      if (!parser.parse(line.data(), len, line.size(), &ev, &error))
        return Status::Error(fmt::format("{}:{}: {}", work.file("features.jsonl"), lineno, error));
      if (ev.str(kind) != "tx") continue;
      const int64_t row = ev.values[idx].i;
      if (row < 0 || static_cast<size_t>(row) >= rows.size() || slot[row] < 0) continue;
      for (size_t f = 0; f < fidx.size(); ++f) {
        const double x = ev.values[fidx[f]].as_double();
        v[f] = std::isnan(x) ? 0 : x;
      }
      float* out = &matrix[static_cast<size_t>(slot[row]) * width];
      const HandbookTransaction& tx = rows[row];
      const int64_t days = day_index(tx.ts);
      const int64_t weekday = ((days % 7) + 7 + 3) % 7;  // 1970-01-01 was a Thursday: 0 = Monday
      const int64_t hour = (tx.ts - days * kDayMs) / 3'600'000;
      for (size_t c = 0; c < columns.size(); ++c) {
        const Column& col = columns[c];
        double x = 0;
        switch (col.kind) {
          case Kind::Amount:
            x = tx.amount;
            break;
          case Kind::Weekend:
            x = weekday >= 5;
            break;
          case Kind::Night:
            x = hour <= 6;
            break;
          case Kind::Feature:
            x = v[col.value];
            break;
          case Kind::Risk: {
            const double n = v[col.denominator];
            x = n > 0 ? v[col.value] / n : 0;
            break;
          }
        }
        out[c] = static_cast<float>(x);
      }
      filled[slot[row]] = 1;
    }
  }
  if (std::find(filled.begin(), filled.end(), 0) != filled.end())
    return Status::Error("the engine's output misses transactions of the training or test set");
  result.seconds_features = seconds_since(t0);

  // Training, through libxgboost, on the training week.
  say(fmt::format("training on {} transactions", split.train.size()));
  t0 = std::chrono::steady_clock::now();
  // The tables: id, time, features, label (the test table for whoever wants
  // to train something else on the same features).
  auto write_table = [&](const std::string& path, const std::vector<size_t>& set,
                         size_t first) -> Status {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    std::string buf = "id,ts";
    for (const auto& n : names) buf += "," + n;
    buf += ",tx_fraud\n";
    for (size_t i = 0; i < set.size(); ++i) {
      const HandbookTransaction& tx = rows[set[i]];
      buf += tx.id;
      buf += ',';
      buf += std::to_string(tx.ts);
      for (size_t c = 0; c < width; ++c) {
        buf += ',';
        append_json_double(buf, matrix[(first + i) * width + c]);
      }
      buf += tx.fraud ? ",1\n" : ",0\n";
    }
    out << buf;
    if (!out.flush()) return Status::Error(path + ": write failed");
    return Status::Ok();
  };
  if (Status s = write_table(work.file("train.csv"), split.train, 0); !s.ok()) return s;
  if (!o.work_dir.empty())
    if (Status s = write_table(work.file("test.csv"), split.test, split.train.size()); !s.ok())
      return s;
  result.train_rows = split.train.size();
  for (size_t r : split.train) result.train_frauds += rows[r].fraud;
  model::TrainOptions train;
  train.data_path = work.file("train.csv");
  train.label = "tx_fraud";
  train.time_column = "ts";
  train.features = names;
  train.out_dir = work.file("model");
  train.trees = o.trees;
  train.depth = o.depth;
  train.eta = o.eta;
  train.valid_fraction = 0.02;  // the last hours of the training week: the model's meta
  MR_TRY_ASSIGN(report, model::train_gbdt(train));
  MR_TRY_ASSIGN(model, model::load_model_file(report.model_path));
  result.seconds_train = seconds_since(t0);

  say(fmt::format("scoring {} test transactions", split.test.size()));
  std::vector<double> scores(split.test.size());
  model->predict_batch(&matrix[split.train.size() * width], split.test.size(), width,
                       scores.data());
  std::vector<ScoredTransaction> scored(split.test.size());
  for (size_t i = 0; i < split.test.size(); ++i) {
    const HandbookTransaction& tx = rows[split.test[i]];
    scored[i] = {tx.ts, hash_bytes(tx.customer.data(), tx.customer.size()), scores[i], tx.fraud};
  }
  QualityOptions q;
  q.k = 100;
  q.day_origin = 0;
  result.quality = evaluate(scored, {}, q);

  if (!o.predictions.empty()) {
    std::ofstream out(o.predictions, std::ios::binary | std::ios::trunc);
    if (!out) return Status::Error(o.predictions + ": cannot open for writing");
    std::string buf = "TRANSACTION_ID,prediction\n";
    for (size_t i = 0; i < split.test.size(); ++i) {
      buf += rows[split.test[i]].id;
      buf += ',';
      append_json_double(buf, scores[i]);
      buf += '\n';
    }
    out << buf;
    if (!out.flush()) return Status::Error(o.predictions + ": write failed");
  }
  result.seconds_total = seconds_since(started);
  return result;
}

std::string handbook_json(const HandbookResult& r) {
  auto num = [](double v) {
    return std::isnan(v) ? std::string("null") : fmt::format("{:.4f}", v);
  };
  return fmt::format(R"({{"auc":{},"ap":{},"cp100":{},"n_test":{},"n_test_fraud":{}}})",
                     num(r.quality.auc), num(r.quality.ap), num(r.quality.card_precision),
                     r.quality.n, r.quality.n_fraud);
}

}  // namespace millrace::eval
