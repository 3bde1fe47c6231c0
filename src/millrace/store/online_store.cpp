#include "millrace/store/online_store.h"

#include <chrono>

#include "millrace/core/json_writer.h"

namespace millrace {

std::string FeatureVector::to_json(std::string_view feature_set, std::string_view key,
                                   TimeMs at) const {
  std::string out = "{\"feature_set\": ";
  append_json_string(out, feature_set);
  append_json_key(out, "key");
  std::string shown(key);
  for (char& c : shown)
    if (c == kKeySeparator) c = '|';
  append_json_string(out, shown);
  append_json_key(out, "at");
  append_json_int(out, at);
  out += ", \"features\": {";
  for (size_t i = 0; i < names.size(); ++i) {
    append_json_key(out, names[i], i == 0);
    out += "{\"value\": ";
    values[i].append_json(out);
    out += ", \"freshness\": ";
    if (freshness[i] == kMinTime) {
      out += "null";
    } else {
      append_json_int(out, freshness[i]);
    }
    out += "}";
  }
  out += "}}";
  return out;
}

std::string parse_entity_key(std::string_view text) {
  std::string key(text);
  for (char& c : key)
    if (c == '|') c = kKeySeparator;
  return key;
}

TimeMs wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace millrace
