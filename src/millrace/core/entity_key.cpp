#include "millrace/core/entity_key.h"

#include <charconv>

namespace millrace {

void build_entity_key(const Event& e, const std::vector<int>& fields, std::string* key) {
  key->clear();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) key->push_back('\x1f');
    const FieldValue& v = e.values[fields[i]];
    switch (v.kind) {
      case FieldValue::Kind::String:
        key->append(e.str(v));
        break;
      case FieldValue::Kind::Int: {
        char buf[24];
        auto r = std::to_chars(buf, buf + sizeof buf, v.i);
        key->append(buf, r.ptr);
        break;
      }
      case FieldValue::Kind::Double: {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, v.d);
        key->append(buf, r.ptr);
        break;
      }
      case FieldValue::Kind::Bool:
        key->append(v.b ? "true" : "false");
        break;
      case FieldValue::Kind::Null:
        key->append("\x1e");
        break;
    }
  }
}

}  // namespace millrace
