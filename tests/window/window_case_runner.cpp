#include "window_case_runner.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "millrace/core/event_parser.h"
#include "millrace/window/window_operator.h"

namespace millrace::testing {

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

Result<WindowCaseOutput> run_window_case(const std::string& dir) {
  auto spec = load_spec(dir + "/spec.yaml");
  if (!spec.ok()) return spec.status();
  return run_window_lines(spec.value(), read_lines(dir + "/input.jsonl"));
}

Result<WindowCaseOutput> run_window_lines(const PipelineSpec& spec,
                                          const std::vector<std::string>& lines,
                                          const WindowRunOptions& options) {
  const SourceSpec& src = spec.source;
  std::vector<std::unique_ptr<WindowOperator>> ops;
  for (const WindowSpec& w : spec.windows) ops.push_back(WindowOperator::Create(w, src.schema));
  EventParser parser(src.schema, src.time_field);
  std::string buf, error;
  WindowOutput out;
  WindowCaseOutput result;
  TimeMs wm = kMinTime, max_time = kMinTime;
  const size_t batch = std::max<size_t>(1, options.batch);
  std::vector<Event> events(batch);
  std::vector<WindowEvent> pending;
  size_t since_restore = 0, nulls = 0;
  auto track_open = [&] {
    if (!options.count_open) return;
    size_t open = 0;
    for (auto& op : ops) open += op->open_windows();
    result.max_open_windows = std::max(result.max_open_windows, open);
  };
  auto run_pending = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    for (auto& op : ops) {
      if (batch == 1 && pending.size() == 1) {
        const WindowEvent& e = pending[0];
        op->advance(e.watermark_before, &out);
        op->on_event(*e.event, e.raw, e.watermark_before, &out);
        op->advance(e.watermark_after, &out);
      } else {
        op->on_events(pending.data(), pending.size(), &out);
      }
    }
    since_restore += pending.size() - nulls;
    nulls = 0;
    pending.clear();
    track_open();
    if (options.restore_every == 0 || since_restore < options.restore_every) return Status::Ok();
    since_restore = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      std::string saved;
      ByteWriter w(&saved);
      ops[i]->snapshot(w);
      auto fresh = WindowOperator::Create(spec.windows[i], src.schema);
      ByteReader r(saved);
      if (Status st = fresh->restore(r); !st.ok()) return st;
      if (!r.at_end())
        return Status::Error("window " + spec.windows[i].name + ": restore left bytes unread");
      ops[i] = std::move(fresh);
    }
    return Status::Ok();
  };
  for (const std::string& line : lines) {
    Event& event = events[pending.size() - nulls];
    buf.assign(line);
    buf.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    if (!parser.parse(buf.data(), line.size(), buf.capacity(), &event, &error)) continue;
    if (event.time < wm - src.allowed_lateness) continue;  // late at the source
    WindowEvent e{&event, line, wm, wm};
    max_time = std::max(max_time, event.time);
    wm = std::max(wm, max_time - src.max_out_of_orderness);
    e.watermark_after = wm;
    if (options.watermark_entries && batch > 1 && wm != e.watermark_before) {
      pending.push_back(WindowEvent{&event, line, e.watermark_before, e.watermark_before});
      pending.push_back(WindowEvent{nullptr, {}, e.watermark_before, wm});
      ++nulls;
    } else {
      pending.push_back(e);
    }
    if (pending.size() - nulls >= batch)
      if (Status st = run_pending(); !st.ok()) return st;
  }
  if (Status st = run_pending(); !st.ok()) return st;
  for (auto& op : ops) op->advance(kMaxTime, &out);
  for (auto& op : ops)
    if (op->open_windows() != 0 || op->keys() != 0)
      return Status::Error("state left after the end of input");
  auto split = [](const std::string& text, std::vector<std::string>* lines) {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      lines->push_back(text.substr(pos, nl - pos));
      pos = nl + 1;
    }
  };
  split(out.results, &result.results);
  split(out.late, &result.late);
  return result;
}

namespace {

using nlohmann::json;

bool is_quantile_name(const std::string& name) {
  return name.size() >= 2 && name[0] == 'p' &&
         std::all_of(name.begin() + 1, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// `a` is the expected value: quantiles are within 1% of the exact one.
bool same_value(const std::string& name, const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.get<double>(), y = b.get<double>();
    if (is_quantile_name(name)) return std::fabs(x - y) <= 0.0101 * std::fabs(x) + 1e-9;
    return std::fabs(x - y) <= 1e-9 * std::max(std::fabs(x), std::fabs(y)) + 1e-12;
  }
  return a == b;
}

bool same_record(const json& a, const json& b) {
  if (a.size() != b.size()) return false;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (!b.contains(it.key()) || !same_value(it.key(), it.value(), b[it.key()])) return false;
  }
  return true;
}

// window, key fields, start, end: everything but aggregates and kind.
std::string instance_of(const PipelineSpec& spec, const json& r) {
  json id = r;
  id.erase("kind");
  for (const WindowSpec& w : spec.windows)
    if (w.name == r.value("window", ""))
      for (const WindowAggSpec& a : w.aggs) id.erase(a.name);
  return id.dump();
}

}  // namespace

::testing::AssertionResult same_window_results(const PipelineSpec& spec,
                                               const std::vector<std::string>& expected,
                                               const std::vector<std::string>& actual) {
  std::map<std::string, std::vector<json>> want, got;
  for (const auto& l : expected) {
    json r = json::parse(l);
    want[instance_of(spec, r)].push_back(r);
  }
  for (const auto& l : actual) {
    json r = json::parse(l);
    got[instance_of(spec, r)].push_back(r);
  }
  std::string diffs;
  int n = 0;
  auto describe = [](const std::vector<json>& v) {
    std::string s;
    for (const auto& r : v) s += "\n      " + r.dump();
    return s.empty() ? std::string("\n      (none)") : s;
  };
  std::map<std::string, int> all;
  for (const auto& [k, v] : want) all[k] = 1;
  for (const auto& [k, v] : got) all[k] = 1;
  for (const auto& [k, unused] : all) {
    const auto& w = want[k];
    const auto& g = got[k];
    bool same = w.size() == g.size();
    for (size_t i = 0; same && i < w.size(); ++i) same = same_record(w[i], g[i]);
    if (!same && ++n <= 5)
      diffs +=
          "\n  instance " + k + "\n    expected:" + describe(w) + "\n    actual:" + describe(g);
  }
  if (n == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << n << " of " << all.size() << " window instances differ" << diffs;
}

::testing::AssertionResult same_late_records(const std::vector<std::string>& expected,
                                             const std::vector<std::string>& actual) {
  std::vector<std::string> a, b;
  for (const auto& l : expected) a.push_back(json::parse(l).dump());
  for (const auto& l : actual) b.push_back(json::parse(l).dump());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a == b) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << "late records differ: expected " << a.size() << ", got " << b.size();
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string x = i < a.size() ? a[i] : "(none)", y = i < b.size() ? b[i] : "(none)";
    if (x != y) {
      failure << "\n  first difference:\n    expected " << x << "\n    actual   " << y;
      break;
    }
  }
  return failure;
}

}  // namespace millrace::testing
