// The text of an entity key: the value of one key field, or the values of
// several joined by '\x1f' (a byte that cannot appear in numbers). Sliding
// features, batch values and routing all build keys this way, so a key read
// from a file matches the same key built from an event.
#pragma once

#include <string>
#include <vector>

#include "millrace/core/event.h"

namespace millrace {

// Sets *key to the key of `e` over `fields` (schema indexes). Ints are
// decimal, doubles in shortest round-trip form, bools true/false, null '\x1e'.
void build_entity_key(const Event& e, const std::vector<int>& fields, std::string* key);

}  // namespace millrace
