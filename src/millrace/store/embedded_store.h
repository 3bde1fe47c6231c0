// EmbeddedStore: the in-process online store, and the home of per-event
// feature state. It holds, per worker, one SlidingFeatureGroup per feature
// group of the plan; worker w alone changes shard w (events, expiry), and any
// thread may read.
//
// Concurrency: with concurrent reads enabled (a run that serves reads over
// HTTP), each shard has a spin lock. The worker holds its shard's lock while
// it processes one event or advances its watermark (a few microseconds at
// most); a reader holds the lock of the shard owning the key while it
// evaluates the vector's groups of that shard. Reads never change state, so
// readers see a vector as of one point between two events of the worker.
// Without concurrent reads (batch runs, backfill) nothing is locked.
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "millrace/features/feature_plan.h"
#include "millrace/features/sliding_features.h"
#include "millrace/store/online_store.h"

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
    if (locking_) shards_[w]->lock();
  }
  void unlock(int w) {
    if (locking_) shards_[w]->unlock();
  }
  // The pipeline's watermark, published for the retention check of reads.
  void set_watermark(TimeMs wm) { watermark_.store(wm, std::memory_order_relaxed); }

  Status read(int feature_set, std::string_view key, TimeMs at, FeatureVector* out) const override;

  const FeaturePlan& plan() const { return plan_; }

 private:
  struct Shard {
    std::atomic<bool> busy{false};
    std::vector<std::unique_ptr<SlidingFeatureGroup>> groups;
    void lock() {
      while (busy.exchange(true, std::memory_order_acquire))
        while (busy.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
    void unlock() { busy.store(false, std::memory_order_release); }
  };
  const PipelineSpec& spec_;
  const FeaturePlan& plan_;
  std::vector<std::unique_ptr<Shard>> shards_;
  bool locking_ = false;
  std::atomic<TimeMs> watermark_{kMinTime};
};

}  // namespace millrace
