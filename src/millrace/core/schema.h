// Schema of a source's events: typed fields, which of them may be missing,
// which one holds event time. Events are parsed against it; a line that does
// not fit goes to the dead-letter output with the reason.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"

namespace millrace {

enum class FieldType { String, Int64, Double, Bool, Timestamp };

const char* field_type_name(FieldType t);

struct FieldDef {
  std::string name;
  FieldType type = FieldType::String;
  bool optional = false;  // written `double?` in a spec
};

class Schema {
 public:
  // Adds a field; its index is the position in the schema.
  int add(FieldDef f) {
    fields_.push_back(std::move(f));
    return static_cast<int>(fields_.size()) - 1;
  }
  // Parses a type name: string, int64 (or int, long), double (or float),
  // bool, timestamp; a trailing '?' makes the field optional.
  static Result<FieldDef> parse_field(std::string name, std::string_view type_text);

  int index_of(std::string_view name) const {
    for (size_t i = 0; i < fields_.size(); ++i)
      if (fields_[i].name == name) return static_cast<int>(i);
    return -1;
  }
  const std::vector<FieldDef>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const FieldDef& operator[](size_t i) const { return fields_[i]; }
  FieldDef& mutable_field(size_t i) { return fields_[i]; }

 private:
  std::vector<FieldDef> fields_;
};

}  // namespace millrace
