// RedisStore: the online store kept in Redis (`store: redis://HOST:PORT` in
// the spec), shared by several millrace processes and readable without one.
//
// Key layout (docs/feature_store.md): one hash per entity key and feature set,
//   {prefix}:{feature_set}:{key}        e.g. mr:card_id:c42, mr:card_id+merchant_id:c42|m7
// with one field per feature and time slice,
//   {feature}@{slice}                   slice i covers event times (i*S, (i+1)*S]
// whose value is the slice's partial aggregate, as text:
//   n|sum|sumsq|min|max|first_t|last_t|distinct|first|last
// (distinct: sorted hex value hashes joined by ','; first and last: a typed
// value, "n<number>", "s<text>" or "" for null, the first one prefixed by its
// length and ':'). A slice's value is recomputed whole from the events the
// writer holds and written with HSET: writes are idempotent (a replay after a
// restart writes the same values), so at-least-once delivery is enough. The
// hash's TTL is reset on every write to the feature set's longest window plus
// allowed lateness: an entity no event has touched for that long disappears.
//
// Reads as of t combine, per feature, the slices i with
// floor((t - W - 1) / S) < i <= floor((t - 1) / S): exact when t and the
// window W are multiples of the slice size S; otherwise the window is (t' - W,
// t'] with t' = t rounded up to a slice boundary. Smaller slices are more
// exact and cost more hash fields (W / S per feature and key). One vector is
// one HGETALL: one round trip whatever the number of features or sources.
// quantile is not kept in Redis (the spec is rejected).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "millrace/features/feature_plan.h"
#include "millrace/features/sliding_features.h"
#include "millrace/store/online_store.h"

struct redisContext;

namespace millrace {

// One connection to a Redis server; not thread-safe.
class RedisConnection {
 public:
  // "redis://HOST:PORT" (PORT defaults to 6379).
  static Result<std::unique_ptr<RedisConnection>> Open(const std::string& uri);
  ~RedisConnection();
  // Queues a command (pipelining); replies are read by drain().
  void append(const std::vector<std::string>& args);
  // Reads the replies of every queued command; the first error, if any.
  Status drain();
  // Runs one command; *reply receives the elements of an array reply.
  Status command(const std::vector<std::string>& args, std::vector<std::string>* reply);
  size_t queued() const { return queued_; }
  const std::string& uri() const { return uri_; }

 private:
  redisContext* ctx_ = nullptr;
  size_t queued_ = 0;
  std::string uri_;
};

// Slice sizes and key names of a spec's features in Redis.
class RedisLayout {
 public:
  RedisLayout(const PipelineSpec& spec, const FeaturePlan& plan);
  // Rejects what Redis cannot keep (quantile), naming the feature.
  static Status Check(const PipelineSpec& spec);
  TimeMs slice(int feature) const { return slice_[feature]; }
  std::string hash_key(int feature_set, std::string_view key) const;
  TimeMs key_ttl(int feature_set) const { return ttl_[feature_set]; }

 private:
  std::string prefix_;
  const FeaturePlan& plan_;
  std::vector<TimeMs> slice_;  // per spec feature
  std::vector<TimeMs> ttl_;    // per feature set
};

// Writes slices from a worker's feature state, pipelined. One per worker.
class RedisStoreWriter {
 public:
  static Result<std::unique_ptr<RedisStoreWriter>> Open(const PipelineSpec& spec,
                                                        const FeaturePlan& plan);
  // After group g of `key` took an event at time t: rewrites the slice of t
  // of each of the group's features. Sends once enough commands are queued.
  Status on_event(int g, std::string_view key, TimeMs t, const SlidingFeatureGroup& group);
  // Sends everything queued and checks the replies.
  Status flush();

 private:
  RedisStoreWriter(const PipelineSpec& spec, const FeaturePlan& plan)
      : spec_(spec), plan_(plan), layout_(spec, plan) {}
  const PipelineSpec& spec_;
  const FeaturePlan& plan_;
  RedisLayout layout_;
  std::unique_ptr<RedisConnection> conn_;
  SlidingFeatureGroup::SliceAggregate agg_;
  std::vector<std::string> args_;
};

class RedisStore : public OnlineStore {
 public:
  static Result<std::unique_ptr<RedisStore>> Open(const PipelineSpec& spec,
                                                  const FeaturePlan& plan);
  // One HGETALL. Thread-safe (one connection, locked).
  Status read(int feature_set, std::string_view key, TimeMs at, FeatureVector* out) const override;

 private:
  RedisStore(const PipelineSpec& spec, const FeaturePlan& plan)
      : spec_(spec), plan_(plan), layout_(spec, plan) {}
  const PipelineSpec& spec_;
  const FeaturePlan& plan_;
  RedisLayout layout_;
  mutable std::mutex mu_;
  std::unique_ptr<RedisConnection> conn_;
};

// Text form of a slice's partial aggregate (see the layout above).
std::string encode_slice(const SlidingFeatureGroup::SliceAggregate& a);
bool decode_slice(std::string_view text, FieldType type, SlidingFeatureGroup::SliceAggregate* a);

}  // namespace millrace
