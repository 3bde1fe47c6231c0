// WatermarkTracker: event-time progress of a source's partitions.
//
// A partition's watermark is (max event time seen - max_out_of_orderness), or
// kMinTime before its first event. The combined watermark is the minimum over
// the partitions, leaving out those idle for longer than idle_timeout
// (processing time) and those finished (end of a bounded input); it never
// goes backwards. With every partition finished it is kMaxTime.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "millrace/core/time.h"

namespace millrace {

class WatermarkTracker {
 public:
  WatermarkTracker(uint32_t partitions, TimeMs max_out_of_orderness, TimeMs idle_timeout)
      : ooo_(max_out_of_orderness), idle_timeout_(idle_timeout), parts_(partitions) {}

  TimeMs partition_watermark(uint32_t p) const {
    return parts_[p].max_time == kMinTime ? kMinTime : parts_[p].max_time - ooo_;
  }
  // Records an accepted event of partition p at processing time now_ms.
  void observe(uint32_t p, TimeMs event_time, TimeMs now_ms) {
    Part& part = parts_[p];
    part.max_time = std::max(part.max_time, event_time);
    part.last_active = now_ms;
  }
  void touch(uint32_t p, TimeMs now_ms) { parts_[p].last_active = now_ms; }
  void finish(uint32_t p) { parts_[p].finished = true; }

  TimeMs combined(TimeMs now_ms) {
    TimeMs wm = kMaxTime;
    bool any = false;
    for (const Part& part : parts_) {
      if (part.finished) continue;
      if (idle_timeout_ > 0 && part.last_active != kMinTime &&
          now_ms - part.last_active > idle_timeout_)
        continue;
      any = true;
      wm = std::min(wm, part.max_time == kMinTime ? kMinTime : part.max_time - ooo_);
    }
    if (!any) {
      bool all_finished =
          std::all_of(parts_.begin(), parts_.end(), [](const Part& p) { return p.finished; });
      if (!all_finished) return combined_;  // all idle: hold
    }
    combined_ = std::max(combined_, wm);
    return combined_;
  }
  TimeMs current() const { return combined_; }

  // Checkpoints: each partition's max event time, and the combined watermark.
  // A restored partition counts as active from its next event on.
  std::vector<TimeMs> max_times() const {
    std::vector<TimeMs> v;
    for (const Part& p : parts_) v.push_back(p.max_time);
    return v;
  }
  bool restore(const std::vector<TimeMs>& max_times, TimeMs combined) {
    if (max_times.size() != parts_.size()) return false;
    for (size_t i = 0; i < parts_.size(); ++i) parts_[i].max_time = max_times[i];
    combined_ = combined;
    return true;
  }

 private:
  struct Part {
    TimeMs max_time = kMinTime;
    TimeMs last_active = kMinTime;
    bool finished = false;
  };
  TimeMs ooo_;
  TimeMs idle_timeout_;
  std::vector<Part> parts_;
  TimeMs combined_ = kMinTime;
};

}  // namespace millrace
