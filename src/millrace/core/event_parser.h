// Parses JSON lines into Events against a Schema, with simdjson's on-demand
// parser. Fields not in the schema are skipped (they stay in the raw line).
// A line that is not a JSON object, lacks a required field or has a field of
// the wrong type is rejected with a message naming the field: the caller sends
// it to the dead-letter output. Not thread-safe: one parser per thread.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "millrace/core/event.h"
#include "millrace/core/schema.h"

namespace millrace {

class EventParser {
 public:
  // `time_field` is the index of the event-time field (epoch ms as a number,
  // or an RFC 3339 string).
  EventParser(const Schema& schema, int time_field);

  // Parses data[0, len). The buffer must stay readable up to `capacity` bytes,
  // with capacity >= len + simdjson::SIMDJSON_PADDING. Returns false and sets
  // *error when the line is rejected.
  bool parse(const char* data, size_t len, size_t capacity, Event* out, std::string* error);

  const Schema& schema() const { return schema_; }

 private:
  int lookup(std::string_view name) const;
  bool parse_value(int field, simdjson::ondemand::value& v, Event* out, std::string* error);

  // A field's name as a JSON key is written without escapes: its bytes and
  // the closing quote, compared 8 at a time with a key's raw text.
  struct RawName {
    static constexpr size_t kWords = 4;  // names of up to 31 bytes
    uint64_t words[kWords] = {}, masks[kWords] = {};
    uint32_t n = 0;  // words used; 0: compared by the slow path only
    explicit RawName(std::string_view name);
    bool matches(const char* raw) const {
      for (uint32_t i = 0; i < n; ++i) {
        uint64_t w;
        std::memcpy(&w, raw + 8 * i, 8);
        if ((w & masks[i]) != words[i]) return false;  // stops before the key ends
      }
      return n != 0;
    }
  };

  Schema schema_;
  std::vector<RawName> names_;  // by field
  int time_field_;
  simdjson::ondemand::parser parser_;
  std::vector<uint8_t> seen_;
  std::vector<int> required_;
  // By key position in the previous object: the schema field found there (-1: none).
  static constexpr size_t kMaxOrder = 64;
  std::vector<int> order_;
  std::vector<uint8_t> unescaped_;  // strings with escapes, unescaped (a line's length and padding)
};

}  // namespace millrace
