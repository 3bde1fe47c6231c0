#include "millrace/core/schema.h"

#include <fmt/format.h>

namespace millrace {

const char* field_type_name(FieldType t) {
  switch (t) {
    case FieldType::String:
      return "string";
    case FieldType::Int64:
      return "int64";
    case FieldType::Double:
      return "double";
    case FieldType::Bool:
      return "bool";
    case FieldType::Timestamp:
      return "timestamp";
  }
  return "?";
}

Result<FieldDef> Schema::parse_field(std::string name, std::string_view t) {
  FieldDef f;
  f.name = std::move(name);
  if (!t.empty() && t.back() == '?') {
    f.optional = true;
    t.remove_suffix(1);
  }
  if (t == "string" || t == "str") {
    f.type = FieldType::String;
  } else if (t == "int64" || t == "int" || t == "long" || t == "int32") {
    f.type = FieldType::Int64;
  } else if (t == "double" || t == "float" || t == "number") {
    f.type = FieldType::Double;
  } else if (t == "bool" || t == "boolean") {
    f.type = FieldType::Bool;
  } else if (t == "timestamp" || t == "time") {
    f.type = FieldType::Timestamp;
  } else {
    return Status::Error(fmt::format(
        "field '{}': unknown type '{}' (expected string, int64, double, bool or timestamp, "
        "with '?' for optional)",
        f.name, t));
  }
  return f;
}

}  // namespace millrace
