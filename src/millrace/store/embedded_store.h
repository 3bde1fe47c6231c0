// EmbeddedStore: the in-process online store, and the home of per-event
// feature state. It holds, per worker, one SlidingFeatureGroup per feature
// group of the plan; worker w alone changes shard w (events, expiry), and any
// thread may read.
//
// Concurrency: with concurrent reads enabled (a run that serves reads over
// HTTP), each shard has a ShardLock. The worker holds its shard exclusively
// while it processes one event or advances its watermark (a few microseconds);
// readers share the shard owning the key while they evaluate the vector's
// groups of that shard, and wait for at most the event in progress (see
// shard_lock.h). Reads never change state, so readers see a vector as of one
// point between two events of the worker. (With the RocksDB state backend a
// read may load a key, and takes the shard exclusively.) Without concurrent
// reads (batch runs, backfill) nothing is locked.
//
// A read allocates nothing once its thread has read a vector of the same
// feature set into the same FeatureVector: names are filled on the first read
// and the value buffers are reused.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "millrace/features/feature_plan.h"
#include "millrace/features/sliding_features.h"
#include "millrace/store/online_store.h"
#include "millrace/store/shard_lock.h"

namespace millrace {

class EmbeddedStore : public OnlineStore {
 public:
  EmbeddedStore(const PipelineSpec& spec, const FeaturePlan& plan, int workers);
  ~EmbeddedStore() override;

  // Call before the workers start.
  void enable_concurrent_reads() { locking_ = true; }

  // The worker of a key: the owner of its key group (as the runtime routes).
  int worker_of(std::string_view key) const;
  // Worker w's state of plan group g; nullptr when the group has no features.
  SlidingFeatureGroup* group(int w, int g) { return shards_[w]->groups[g].get(); }

  // Worker side: brackets a change of shard w.
  void lock(int w) {
    if (locking_) shards_[w]->lock.lock();
  }
  void unlock(int w) {
    if (locking_) shards_[w]->lock.unlock();
  }
  // The pipeline's watermark, published for the retention check of reads.
  void set_watermark(TimeMs wm) { watermark_.store(wm, std::memory_order_relaxed); }

  Status read(int feature_set, std::string_view key, TimeMs at, FeatureVector* out) const override;

  const FeaturePlan& plan() const { return plan_; }

 private:
  struct Shard {
    ShardLock lock;
    std::vector<std::unique_ptr<SlidingFeatureGroup>> groups;
  };
  // What a read of one feature set needs, computed once.
  struct SetLayout {
    TimeMs min_lateness = 0;  // of the set's groups: reads before wm - this fail
    std::vector<int> groups;  // with features
    std::vector<int> slots;   // value slot of each feature of the vector
  };
  const PipelineSpec& spec_;
  const FeaturePlan& plan_;
  std::vector<SetLayout> layouts_;
  std::vector<std::unique_ptr<Shard>> shards_;
  bool locking_ = false;
  std::atomic<TimeMs> watermark_{kMinTime};
};

}  // namespace millrace
