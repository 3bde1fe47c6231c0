#include "millrace/core/event_parser.h"

#include <bit>
#include <cmath>

#include <fmt/format.h>

namespace millrace {

using simdjson::ondemand::json_type;

namespace {

const char* json_type_name(json_type t) {
  switch (t) {
    case json_type::array:
      return "array";
    case json_type::object:
      return "object";
    case json_type::number:
      return "number";
    case json_type::string:
      return "string";
    case json_type::boolean:
      return "boolean";
    case json_type::null:
      return "null";
  }
  return "value";
}

}  // namespace

EventParser::EventParser(const Schema& schema, int time_field)
    : schema_(schema), time_field_(time_field) {
  seen_.assign(schema_.size(), 0);
  for (size_t i = 0; i < schema_.size(); ++i) names_.emplace_back(schema_[i].name);
  for (size_t i = 0; i < schema_.size(); ++i)
    if (!schema_[i].optional || static_cast<int>(i) == time_field_)
      required_.push_back(static_cast<int>(i));
}

static_assert(std::endian::native == std::endian::little, "RawName packs words little-endian");

EventParser::RawName::RawName(std::string_view name) {
  if (name.size() + 1 > 8 * kWords) return;
  if (name.find_first_of("\"\\") != std::string_view::npos) return;
  std::string text(name);
  text += '"';
  n = static_cast<uint32_t>((text.size() + 7) / 8);
  for (size_t i = 0; i < text.size(); ++i) {
    const uint64_t shift = 8 * (i % 8);
    words[i / 8] |= uint64_t{static_cast<uint8_t>(text[i])} << shift;
    masks[i / 8] |= uint64_t{0xff} << shift;
  }
}

int EventParser::lookup(std::string_view name) const {
  const auto& f = schema_.fields();
  for (size_t i = 0; i < f.size(); ++i)
    if (f[i].name == name) return static_cast<int>(i);
  return -1;
}

bool EventParser::parse_value(int field, simdjson::ondemand::value& v, Event* out,
                              std::string* error) {
  const FieldDef& def = schema_[field];
  // The common case first: a value of the field's type. Anything else (null,
  // another type, an integer written as 3.0, an RFC 3339 time) takes the
  // checked path below, which also names what was wrong. A getter that fails
  // on a type leaves the value unread.
  FieldValue& fast = out->values[field];
  if (field == time_field_) {
    int64_t i;
    if (!v.get_int64().get(i)) {
      out->time = i;
      fast.kind = FieldValue::Kind::Int;
      fast.i = i;
      return true;
    }
  } else {
    switch (def.type) {
      case FieldType::String: {
        // Bytes without an escape are the string itself: no unescaping copy.
        simdjson::ondemand::raw_json_string raw;
        if (!v.get_raw_json_string().get(raw)) {
          const char* p = raw.raw();
          size_t n = 0;
          while (p[n] != '"' && p[n] != '\\') ++n;
          std::string_view s(p, n);
          if (p[n] != '"') {
            uint8_t* dst = unescaped_.data();
            if (parser_.unescape(raw, dst).get(s)) {
              *error = fmt::format(
                  "field '{}': bad escape in a string (JSON allows \\\" \\\\ \\/ \\b "
                  "\\f \\n \\r \\t and \\uXXXX)",
                  def.name);
              return false;
            }
          }
          out->set_string(field, s);
          return true;
        }
        break;
      }
      case FieldType::Int64:
      case FieldType::Timestamp: {
        int64_t i;
        if (!v.get_int64().get(i)) {
          fast.kind = FieldValue::Kind::Int;
          fast.i = i;
          return true;
        }
        break;
      }
      case FieldType::Double: {
        double d;
        if (!v.get_double().get(d)) {
          fast.kind = FieldValue::Kind::Double;
          fast.d = d;
          return true;
        }
        break;
      }
      case FieldType::Bool: {
        bool b;
        if (!v.get_bool().get(b)) {
          fast.kind = FieldValue::Kind::Bool;
          fast.b = b;
          return true;
        }
        break;
      }
    }
  }
  json_type type;
  if (v.type().get(type)) {
    *error = fmt::format("field '{}': malformed value", def.name);
    return false;
  }
  if (type == json_type::null) {
    if (def.optional && field != time_field_) return true;  // stays Null
    *error = fmt::format("field '{}' is null but required", def.name);
    return false;
  }
  FieldValue& fv = out->values[field];
  auto wrong = [&](const char* expected) {
    *error =
        fmt::format("field '{}': expected {}, got {}", def.name, expected, json_type_name(type));
    return false;
  };
  if (field == time_field_) {
    if (type == json_type::number) {
      int64_t i;
      if (!v.get_int64().get(i)) {
        out->time = i;
      } else {
        double d;
        if (v.get_double().get(d) || !std::isfinite(d)) return wrong("epoch milliseconds");
        out->time = static_cast<TimeMs>(d);
      }
    } else if (type == json_type::string) {
      std::string_view s;
      if (v.get_string().get(s)) return wrong("an RFC 3339 timestamp");
      auto t = parse_rfc3339_ms(s);
      if (!t) {
        *error = fmt::format("field '{}': '{}' is not an RFC 3339 timestamp", def.name, s);
        return false;
      }
      out->time = *t;
    } else {
      return wrong("epoch milliseconds or an RFC 3339 timestamp");
    }
    fv.kind = FieldValue::Kind::Int;
    fv.i = out->time;
    return true;
  }
  switch (def.type) {
    case FieldType::String: {
      if (type != json_type::string) return wrong("string");
      std::string_view s;
      if (v.get_string().get(s)) return wrong("string");
      out->set_string(field, s);
      return true;
    }
    case FieldType::Int64: {
      if (type != json_type::number) return wrong("integer");
      int64_t i;
      if (v.get_int64().get(i)) {
        double d;
        if (v.get_double().get(d) || d != std::floor(d) || std::fabs(d) > 9.2e18)
          return wrong("integer");
        i = static_cast<int64_t>(d);
      }
      fv.kind = FieldValue::Kind::Int;
      fv.i = i;
      return true;
    }
    case FieldType::Double: {
      if (type != json_type::number) return wrong("number");
      double d;
      if (v.get_double().get(d)) return wrong("number");
      fv.kind = FieldValue::Kind::Double;
      fv.d = d;
      return true;
    }
    case FieldType::Bool: {
      if (type != json_type::boolean) return wrong("boolean");
      bool b;
      if (v.get_bool().get(b)) return wrong("boolean");
      fv.kind = FieldValue::Kind::Bool;
      fv.b = b;
      return true;
    }
    case FieldType::Timestamp: {
      TimeMs t;
      if (type == json_type::number) {
        if (v.get_int64().get(t)) return wrong("epoch milliseconds");
      } else if (type == json_type::string) {
        std::string_view s;
        if (v.get_string().get(s)) return wrong("timestamp");
        auto p = parse_rfc3339_ms(s);
        if (!p) return wrong("an RFC 3339 timestamp");
        t = *p;
      } else {
        return wrong("timestamp");
      }
      fv.kind = FieldValue::Kind::Int;
      fv.i = t;
      return true;
    }
  }
  return true;
}

bool EventParser::parse(const char* data, size_t len, size_t capacity, Event* out,
                        std::string* error) {
  out->reset(schema_.size());
  if (unescaped_.size() < len + simdjson::SIMDJSON_PADDING)
    unescaped_.resize(len + simdjson::SIMDJSON_PADDING);
  std::fill(seen_.begin(), seen_.end(), 0);
  simdjson::padded_string_view input(data, len, capacity);
  simdjson::ondemand::document doc;
  if (auto err = parser_.iterate(input).get(doc)) {
    *error = fmt::format("not JSON: {}", simdjson::error_message(err));
    return false;
  }
  simdjson::ondemand::object obj;
  if (auto err = doc.get_object().get(obj)) {
    if (err == simdjson::INCORRECT_TYPE) {
      *error = "not a JSON object";
    } else {
      *error = fmt::format("not JSON: {}", simdjson::error_message(err));
    }
    return false;
  }
  size_t k = 0;  // position of the key in the object
  // The field is used in place, by reference: a field copied out of its
  // simdjson_result costs a stalled load of what was just stored, per key.
  for (auto field : obj) {
    if (auto err = field.error()) {
      *error = fmt::format("not JSON: {}", simdjson::error_message(err));
      return false;
    }
    simdjson::ondemand::field& f = field.value_unsafe();
    const char* raw = f.key().raw();
    // Producers mostly write every object's fields in one order: the k-th key
    // is first compared, as written, with the name of the field the k-th key
    // of the previous line was (a name without a quote or backslash is its
    // own JSON text; the padding after the line makes the word loads safe).
    int idx = k < order_.size() ? order_[k] : -1;
    if (idx < 0 || !names_[idx].matches(raw)) {
      // The key as written, when it has no escape (the common case): no copy.
      std::string_view key;
      size_t n = 0;
      while (raw[n] != '"' && raw[n] != '\\') ++n;
      if (raw[n] == '"') {
        key = std::string_view(raw, n);
      } else if (auto err = f.unescaped_key().get(key)) {
        *error = fmt::format("not JSON: {}", simdjson::error_message(err));
        return false;
      }
      idx = lookup(key);
      if (k < kMaxOrder) {
        if (k >= order_.size()) order_.resize(k + 1, -1);
        order_[k] = idx;
      }
    }
    ++k;
    if (idx < 0) continue;  // not in the schema: kept in the raw line only
    seen_[idx] = 1;
    if (!parse_value(idx, f.value(), out, error)) return false;
  }
  const char* rest = nullptr;
  if (!doc.current_location().get(rest)) {
    *error = "not JSON: trailing content after the object";
    return false;
  }
  for (int r : required_) {
    if (!seen_[r]) {
      *error = fmt::format("missing required field '{}'", schema_[r].name);
      return false;
    }
  }
  return true;
}

}  // namespace millrace
