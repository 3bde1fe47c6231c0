// EmbeddedStore: the in-process online store, and the home of per-event
// feature state. It holds, per worker, one SlidingFeatureGroup per feature
// group of the plan; worker w alone changes shard w (events, expiry), and any
// thread may read.
//
// Concurrency: with concurrent reads enabled (a run that serves reads over
// HTTP), readers do not wait for the workers. Each key's state carries a
// sequence number the worker makes odd while it processes an event of that
// key; a reader copies the key's state (its buffered events and head sums)
// while the number is even and unchanged, and evaluates the copy; memory the
// worker replaces or frees stays valid until no reader can hold it
// (SlidingFeatureGroup::read_at_concurrent(), core/epoch.h). A reader waits
// only while the worker is inside an event of that very key. Reads see each
// group as of one point between two events of the worker.
//
// Shards whose groups cannot be read that way (the RocksDB state backend,
// where a read may load a key; features returning text values) fall back to
// a ShardLock: the worker holds the shard exclusively for one message (an
// event with its windows and the expiry its watermark brings, a watermark
// step, or a checkpoint's snapshot of the worker's state), readers share it
// (or, loading keys from RocksDB, take it alone) and wait for at most the
// message in progress, plus any time the worker is preempted holding it
// (shard_lock.h; figures in docs/benchmarks.md). Without concurrent reads
// (batch runs, backfill) nothing is locked or numbered.
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

  // Call before the workers start (keys the groups already hold, restored
  // from a checkpoint, are published then).
  void enable_concurrent_reads();

  // The worker of a key: the owner of its key group (as the runtime routes).
  int worker_of(std::string_view key) const;
  // Worker w's state of plan group g; nullptr when the group has no features.
  SlidingFeatureGroup* group(int w, int g) { return shards_[w]->groups[g].get(); }
  // SlidingFeatureGroup::set_huge_pages() for every group (before any event).
  void set_huge_pages(bool on) {
    for (auto& shard : shards_)
      for (auto& g : shard->groups)
        if (g) g->set_huge_pages(on);
  }

  // Worker side: brackets a change of shard w (locks only shards that are
  // not read lock-free).
  void lock(int w) {
    if (concurrent_ && needs_lock(*shards_[w])) shards_[w]->lock.lock();
  }
  void unlock(int w) {
    if (concurrent_ && needs_lock(*shards_[w])) shards_[w]->lock.unlock();
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
  // Whether a group of the shard cannot be read lock-free (decided when the
  // first lock is taken: a RocksDB store is attached after construction).
  static bool needs_lock(const Shard& shard) {
    for (const auto& g : shard.groups)
      if (g && !g->lock_free_reads()) return true;
    return false;
  }
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
  bool concurrent_ = false;
  std::atomic<TimeMs> watermark_{kMinTime};
};

}  // namespace millrace
