// OnlineStore: the online feature store's read side. It answers "the features
// of feature set S for entity key K as of time t", evaluating every window at
// t (a 5-minute count falls as events age out, with no new event), applying
// each feature's TTL, and returning each value with its freshness: the event
// time of the newest event that contributed to it.
//
// Implementations: EmbeddedStore (in process, the default) and RedisStore
// (`store: redis://HOST:PORT`, shared by several processes). docs/feature_store.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/features/feature_plan.h"
#include "millrace/features/feature_value.h"

namespace millrace {

// One vector: the features of a feature set, in spec order.
struct FeatureVector {
  std::vector<std::string> names;
  // The store and feature set `names` were filled for (a store fills them
  // again only when these change).
  const void* names_of = nullptr;
  int names_set = -1;
  std::vector<FeatureValue> values;
  std::vector<TimeMs> freshness;  // kMinTime: no event contributed

  // {"feature_set": ..., "key": ..., "at": ..., "features": {"f": {"value": v,
  // "freshness": ms|null}, ...}}
  std::string to_json(std::string_view feature_set, std::string_view key, TimeMs at) const;
};

class OnlineStore {
 public:
  virtual ~OnlineStore() = default;

  // Reads feature set `feature_set` (an index into the plan's feature sets)
  // for `key` (composite keys: the values joined by kKeySeparator) as of
  // `at`. Thread-safe. Fails when `at` is older than what the store keeps.
  virtual Status read(int feature_set, std::string_view key, TimeMs at,
                      FeatureVector* out) const = 0;
};

// Parses a key as given in a URL or on the command line: composite key values
// are separated by '|' ("c42|m7"); returns the internal form.
std::string parse_entity_key(std::string_view text);

// Wall-clock time in epoch ms: the default `at` of a read.
TimeMs wall_clock_ms();

}  // namespace millrace
