// The baseline the benchmarks print their figures beside: simdjson's on-demand
// parser over the same JSON lines, reading every field of every line (numbers
// as doubles, strings as views, booleans) and nothing else. One thread.
#pragma once

#include <time.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace millrace::bench {

struct ParseOnly {
  uint64_t lines = 0;
  uint64_t checksum = 0;   // of the values read: keeps the loop from being optimized out
  double seconds = 0;      // wall clock
  double cpu_seconds = 0;  // of the calling thread
  double per_second() const { return lines / seconds; }
  double per_cpu_second() const { return lines / cpu_seconds; }
};

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

inline ParseOnly parse_only_loop(const std::string& data) {
  simdjson::ondemand::parser parser;
  simdjson::padded_string padded(data);
  ParseOnly r;
  timespec w0{}, w1{};
  clock_gettime(CLOCK_MONOTONIC, &w0);
  const double c0 = thread_cpu_seconds();
  size_t pos = 0;
  while (pos < data.size()) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    simdjson::padded_string_view line(padded.data() + pos, nl - pos,
                                      padded.size() + simdjson::SIMDJSON_PADDING - pos);
    auto doc = parser.iterate(line);
    simdjson::ondemand::object obj = doc.get_object();
    for (auto field : obj) {
      std::string_view key = field.unescaped_key();
      simdjson::ondemand::value v = field.value();
      switch (v.type()) {
        case simdjson::ondemand::json_type::number:
          r.checksum += static_cast<uint64_t>(double(v));
          break;
        case simdjson::ondemand::json_type::string:
          r.checksum += std::string_view(v).size();
          break;
        case simdjson::ondemand::json_type::boolean:
          r.checksum += bool(v);
          break;
        default:
          r.checksum += key.size();
      }
    }
    ++r.lines;
    pos = nl + 1;
  }
  r.cpu_seconds = thread_cpu_seconds() - c0;
  clock_gettime(CLOCK_MONOTONIC, &w1);
  r.seconds = (w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9;
  return r;
}

}  // namespace millrace::bench
