#include "millrace/features/sliding_features.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>

#include <sched.h>

#include "millrace/core/block_pool.h"
#include "millrace/core/count_map.h"
#include "millrace/core/hash.h"
#include "millrace/state/rocks_state.h"

namespace millrace {
namespace {

// Neumaier-compensated running sums of a value and its square, shifted by K
// (the first value seen) so that the variance does not cancel catastrophically.
struct Moments {
  int64_t n = 0;
  double k = 0, s = 0, sc = 0, q = 0, qc = 0;

  [[gnu::always_inline]] static void kahan(double& sum, double& c, double x) {
    double t = sum + x;
    if (std::fabs(sum) >= std::fabs(x)) {
      c += (sum - t) + x;
    } else {
      c += (x - t) + sum;
    }
    sum = t;
  }
  [[gnu::always_inline]] void add(double x) {
    if (n == 0) {
      k = x;
      s = sc = q = qc = 0;
    }
    ++n;
    double d = x - k;
    kahan(s, sc, d);
    kahan(q, qc, d * d);
  }
  [[gnu::always_inline]] void remove(double x) {
    --n;
    if (n == 0) {
      s = sc = q = qc = 0;
      return;
    }
    double d = x - k;
    kahan(s, sc, -d);
    kahan(q, qc, -d * d);
  }
  double sum() const { return n * k + (s + sc); }
  double mean() const { return k + (s + sc) / n; }
  double stddev() const {
    if (n <= 1) return 0.0;
    double m = (s + sc) / n;
    double var = (q + qc) / n - m * m;
    return var > 0 ? std::sqrt(var) : 0.0;
  }
};

struct MonoEntry {
  TimeMs t = 0;
  double v = 0;  // value times the sign: the deque always keeps maxima
};

inline double bits_to_double(uint64_t b) {
  return std::bit_cast<double>(b);
}
inline uint64_t double_to_bits(double d) {
  return std::bit_cast<uint64_t>(d);
}

}  // namespace

// Event rows on the heap: arrays of up to kMaxPooled bytes come from pools of
// a few size classes (core/block_pool.h: huge pages once a class is large),
// longer ones from operator new.
class SlidingFeatureGroup::RowPools {
 public:
  static constexpr size_t kMaxPooled = 16384;
  // An array of at least `bytes`; *usable: its size.
  uint64_t* allocate(size_t bytes, size_t* usable) {
    if (bytes > kMaxPooled) {
      *usable = bytes;
      return new uint64_t[bytes / 8];
    }
    size_t c = 0;
    while (kClassLines[c] * 64 < bytes) ++c;
    if (!pools_[c]) {
      pools_[c] = std::make_unique<BlockPool>(kClassLines[c] * 64);
      pools_[c]->set_huge_pages(huge_pages_);
    }
    *usable = pools_[c]->block_bytes();
    return static_cast<uint64_t*>(pools_[c]->allocate());
  }
  // Frees an array of `bytes` (its usable size) from allocate().
  static void free(uint64_t* p, size_t bytes) {
    if (bytes > kMaxPooled) {
      delete[] p;
    } else {
      BlockPool::deallocate(p);
    }
  }
  void set_huge_pages(bool on) {
    huge_pages_ = on;
    for (auto& pool : pools_)
      if (pool) pool->set_huge_pages(on);
  }

 private:
  static constexpr size_t kClassLines[] = {1,  2,  3,  4,  6,  8,   12,  16,
                                           24, 32, 48, 64, 96, 128, 192, 256};
  static_assert(kClassLines[std::size(kClassLines) - 1] * 64 == kMaxPooled);
  std::unique_ptr<BlockPool> pools_[std::size(kClassLines)];
  bool huge_pages_ = true;
};

namespace {

using RowPools = SlidingFeatureGroup::RowPools;
using RowArray = SlidingFeatureGroup::RowArray;

// The key's buffered events in time order: one row per event, word 0 the
// event time, then one 64-bit cell per column, in a ring whose capacity is a
// power of two (a row's slot is one add and one mask away). The first rows
// live in the key's own allocation (`inline_rows`); more move to the heap,
// doubling.
class EventBuffer {
 public:
  EventBuffer(uint32_t columns, uint64_t* inline_rows, uint32_t inline_cap)
      : data_(inline_rows), stride_(static_cast<uint16_t>(columns + 1)), cap_(inline_cap) {
    assert(std::has_single_bit(inline_cap));
  }
  EventBuffer(const EventBuffer&) = delete;
  EventBuffer& operator=(const EventBuffer&) = delete;
  ~EventBuffer() {
    if (heap_) RowPools::free(data_, bytes());
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes on the heap (the inline rows are counted with the key).
  size_t heap_bytes() const { return heap_ ? bytes() : 0; }
  TimeMs time(size_t i) const { return static_cast<TimeMs>(row(i)[0]); }
  uint64_t cell(size_t i, int c) const { return row(i)[1 + c]; }
  uint64_t* row(size_t i) { return data_ + slot(i) * stride_; }
  const uint64_t* row(size_t i) const { return data_ + slot(i) * stride_; }
  // Makes room for a row at position pos and returns it. A heap array that
  // growing replaces goes to *replaced when given (readers may be reading
  // it), else is freed.
  uint64_t* insert(size_t pos, RowPools* pools, std::vector<RowArray>* replaced = nullptr) {
    if (size_ == cap_) grow(pools, replaced);
    ++size_;
    for (size_t i = size_ - 1; i > pos; --i) std::memcpy(row(i), row(i - 1), stride_ * 8);
    return row(pos);
  }
  void pop_front() {
    head_ = (head_ + 1) & (cap_ - 1);
    --size_;
  }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  const void* first_row_address() const { return size_ ? row(0) : data_; }
  // Leaves rows from a pool to go with the pools (the group is being
  // destroyed): the destructor then frees only an array from the heap.
  void leave_to_pools() {
    if (heap_ && bytes() <= RowPools::kMaxPooled) heap_ = false;
  }

  // The buffer's words as they are, for a copy made while the owner may be
  // changing them (SlidingFeatureGroup::copy_for_read()).
  struct Raw {
    const uint64_t* data;
    uint32_t stride, cap, head, size;
  };
  Raw raw() const { return {data_, stride_, cap_, head_, size_}; }
  // A buffer of at least n rows' capacity (a power of two): holds rows
  // 0..n-1 in order from row(0) on; returns row(0).
  uint64_t* set_linear(uint32_t n) {
    head_ = 0;
    size_ = n;
    return data_;
  }

 private:
  size_t slot(size_t i) const { return (head_ + i) & (cap_ - 1); }
  size_t bytes() const { return size_t{cap_} * stride_ * sizeof(uint64_t); }
  void grow(RowPools* pools, std::vector<RowArray>* replaced) {
    // From the inline rows, at least 8 (a key past its first rows mostly
    // keeps more: one step, and one dead block, fewer).
    const uint32_t want = heap_ ? 2 * cap_ : std::max<uint32_t>(2 * cap_, 8);
    size_t usable;
    uint64_t* d = pools->allocate(size_t{want} * stride_ * 8, &usable);
    // As many rows as the block holds, to a power of two.
    const uint32_t cap = std::bit_floor(static_cast<uint32_t>(usable / (size_t{stride_} * 8)));
    for (size_t i = 0; i < size_; ++i) std::memcpy(d + i * stride_, row(i), stride_ * 8);
    if (heap_) {
      if (replaced) {
        replaced->push_back({data_, bytes()});
      } else {
        RowPools::free(data_, bytes());
      }
    }
    data_ = d;
    heap_ = true;
    cap_ = cap;
    head_ = 0;
  }
  // 24 bytes: the key's header holds it beside its hash, time and key.
  uint64_t* data_;     // the rows: the key's own (inline) or on the heap
  uint16_t stride_;    // words per row
  bool heap_ = false;  // data_ is on the heap (else in the key's allocation)
  uint32_t cap_;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
};
static_assert(sizeof(EventBuffer) == 24);

// A key's bytes in 16: up to 15 inline, longer ones on the heap.
class KeyBytes {
 public:
  KeyBytes() = default;
  KeyBytes(const KeyBytes&) = delete;
  KeyBytes& operator=(const KeyBytes&) = delete;
  ~KeyBytes() { clear(); }
  std::string_view view() const {
    if (len_ != kHeap) return std::string_view(in_, len_);
    const char* p;
    uint32_t n;
    std::memcpy(&p, in_, sizeof p);
    std::memcpy(&n, in_ + sizeof p, sizeof n);
    return std::string_view(p, n);
  }
  bool operator==(std::string_view s) const { return view() == s; }
  void assign(std::string_view s) {
    clear();
    if (s.size() < kHeap && s.size() <= sizeof in_) {
      std::memcpy(in_, s.data(), s.size());
      len_ = static_cast<uint8_t>(s.size());
      return;
    }
    char* p = new char[s.size()];
    std::memcpy(p, s.data(), s.size());
    const uint32_t n = static_cast<uint32_t>(s.size());
    std::memcpy(in_, &p, sizeof p);
    std::memcpy(in_ + sizeof p, &n, sizeof n);
    len_ = kHeap;
  }
  void clear() {
    if (len_ == kHeap) delete[] view().data();
    len_ = 0;
  }
  size_t heap_bytes() const { return len_ == kHeap ? view().size() : 0; }

 private:
  static constexpr uint8_t kHeap = 0xff;
  char in_[15];
  uint8_t len_ = 0;  // inline length, or kHeap
};
static_assert(sizeof(KeyBytes) == 16);

}  // namespace

// The deque of a min/max head (MonoState): a ring of entries whose first
// kInline live in the head's own cache line, a longer one in an array from
// the group's RowPools (growing by doubling). Windows mostly hold few maxima
// (a card's 5 minutes one or two), so most keys never allocate one.
class MonoDeque {
 public:
  static constexpr uint32_t kInline = 2;
  MonoDeque() : heap_(nullptr) {}
  MonoDeque(const MonoDeque&) = delete;
  MonoDeque& operator=(const MonoDeque&) = delete;
  ~MonoDeque() {
    if (cap_ > kInline) RowPools::free(reinterpret_cast<uint64_t*>(heap_), heap_bytes());
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes of the array outside the head (the inline entries are counted
  // with the key).
  size_t heap_bytes() const { return cap_ > kInline ? cap_ * sizeof(MonoEntry) : 0; }
  MonoEntry& operator[](size_t i) { return data()[(head_ + i) & (cap_ - 1)]; }
  const MonoEntry& operator[](size_t i) const { return data()[(head_ + i) & (cap_ - 1)]; }
  MonoEntry& front() { return (*this)[0]; }
  MonoEntry& back() { return (*this)[size_ - 1]; }
  const MonoEntry& front() const { return (*this)[0]; }
  const MonoEntry& back() const { return (*this)[size_ - 1]; }
  void push_back(MonoEntry v, RowPools* pools) {
    if (size_ == cap_) grow(pools);
    data()[(head_ + size_) & (cap_ - 1)] = v;
    ++size_;
  }
  void pop_front() {
    head_ = (head_ + 1) & (cap_ - 1);
    if (--size_ == 0) head_ = 0;
  }
  void pop_back() { --size_; }
  // Inserts v before position pos (0 <= pos <= size()).
  void insert(size_t pos, MonoEntry v, RowPools* pools) {
    push_back(v, pools);
    for (size_t i = size_ - 1; i > pos; --i) std::swap((*this)[i], (*this)[i - 1]);
  }
  void erase(size_t pos) {
    for (size_t i = pos; i + 1 < size_; ++i) std::swap((*this)[i], (*this)[i + 1]);
    --size_;
  }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  // Whether the entries are in an array from the heap (past RowPools'
  // sizes), which only the destructor frees.
  bool on_heap() const { return heap_bytes() > RowPools::kMaxPooled; }

 private:
  MonoEntry* data() { return cap_ > kInline ? heap_ : inline_; }
  const MonoEntry* data() const { return cap_ > kInline ? heap_ : inline_; }
  void grow(RowPools* pools) {
    const size_t bytes = 2 * size_t{cap_} * sizeof(MonoEntry);
    size_t usable;
    auto* d = reinterpret_cast<MonoEntry*>(pools->allocate(bytes, &usable));
    for (uint32_t i = 0; i < size_; ++i) d[i] = (*this)[i];
    if (cap_ > kInline) RowPools::free(reinterpret_cast<uint64_t*>(heap_), heap_bytes());
    heap_ = d;
    cap_ *= 2;
    head_ = 0;
  }
  uint32_t cap_ = kInline;  // a power of two; above kInline, the entries are at heap_
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  union {
    MonoEntry inline_[kInline];
    MonoEntry* heap_;
  };
};
static_assert(sizeof(MonoDeque) == 48);

// The state of a min/max, count_distinct or quantile head: the count, then
// the structure, in the place of the sums that only sum/avg/stddev keep (the
// count comes first in each, so m.n reads it whatever the aggregate).
struct MonoState {
  int64_t n = 0;
  MonoDeque dq;
};
// count_distinct / is_new: the head window's distinct values are those of
// its event rows [start, size). A window of at most kScanRows rows is
// scanned when its values are needed (the rows are read anyway: no other
// memory); a longer one keeps `map`, each value with how many of the
// window's events carry it, until it is down to kScanRows / 2 rows.
struct DistinctState {
  static constexpr size_t kScanRows = 8;
  int64_t n = 0;
  CountMap map;  // active() while the window keeps it
};
struct SketchState {
  int64_t n = 0;
  QuantileSketch* sketch = nullptr;
  ~SketchState() { delete sketch; }
};

// One head state of a key (shared by the features of SlidingFeatureGroup::Head):
// 64 bytes, one cache line, with the deque of min/max (its first entries),
// the set of count_distinct and the sketch of quantile inline (the rest of
// their storage elsewhere: the group's row pools, the heap).
struct FeatState {
  enum : uint8_t { kNone, kMono, kDistinct, kSketch };
  uint32_t start = 0;  // ring index of the head window's first event
  uint8_t aux_kind = kNone;
  union {
    Moments m;  // sum/avg/stddev; m.n also counts the values of min/max/distinct/quantile
    MonoState mono_;
    DistinctState distinct_;
    SketchState sketch_;
  };

  FeatState() : m() {}
  FeatState(const FeatState&) = delete;
  FeatState& operator=(const FeatState&) = delete;
  ~FeatState() {
    if (aux_kind == kMono) mono_.~MonoState();
    if (aux_kind == kDistinct) distinct_.~DistinctState();
    if (aux_kind == kSketch) sketch_.~SketchState();
  }
  void make(uint8_t kind) {
    aux_kind = kind;
    if (kind == kMono) new (&mono_) MonoState();
    if (kind == kDistinct) new (&distinct_) DistinctState();
    if (kind == kSketch) new (&sketch_) SketchState{0, new QuantileSketch()};
  }
  // Back to an empty window, keeping memory.
  void reset() {
    start = 0;
    switch (aux_kind) {
      case kMono:
        mono_.n = 0;
        mono_.dq.clear();
        break;
      case kDistinct:
        distinct_.n = 0;
        distinct_.map.clear();
        break;
      case kSketch:
        sketch_.n = 0;
        sketch_.sketch->clear();
        break;
      default:
        m = Moments();
    }
  }
  MonoDeque* mono() const {
    return aux_kind == kMono ? const_cast<MonoDeque*>(&mono_.dq) : nullptr;
  }
  DistinctState* distinct() const {
    return aux_kind == kDistinct ? const_cast<DistinctState*>(&distinct_) : nullptr;
  }
  QuantileSketch* sketch() const { return aux_kind == kSketch ? sketch_.sketch : nullptr; }
};
static_assert(sizeof(FeatState) == 64);

// String values of Text columns, one ring per column (only groups with Text
// columns have them).
using TextColumns = std::vector<RingBuffer<std::string>>;

// One allocation: this 64-byte header (one cache line), then `nheads`
// FeatStates (one per head state, a line each), then, in groups with Text columns, their
// TextColumns, then the inline event rows. Made by new_key_state(),
// destroyed by KeyStateDeleter.
struct SlidingFeatureGroup::KeyState {
  KeyState(uint32_t columns, uint32_t head_states, uint64_t* rows_at, uint32_t inline_rows,
           bool with_text)
      : buf(columns, rows_at, inline_rows),
        nheads(static_cast<uint16_t>(head_states)),
        has_text(with_text) {}
  // An event of the key reads this line, then its head states' lines.
  uint64_t hash = 0;
  TimeMs max_t = kMinTime;
  EventBuffer buf;  // cells: double bits or string hash
  // Odd while the worker changes this state (concurrent reads only).
  std::atomic<uint32_t> version{0};
  uint16_t nheads;
  bool referenced = false;  // used since eviction last considered it (RocksDB backend)
  bool has_text;
  KeyBytes key;

  FeatState* heads() const {
    return reinterpret_cast<FeatState*>(const_cast<char*>(reinterpret_cast<const char*>(this)) +
                                        sizeof(KeyState));
  }
  TextColumns& text() const { return *reinterpret_cast<TextColumns*>(heads() + nheads); }

  // Destroys the state, but for the blocks it has from the group's pools
  // (the group is being destroyed with them): only heads that may hold
  // memory from elsewhere (`heap_heads`) are looked at.
  void destroy_leaving_pools(const std::vector<uint32_t>& heap_heads) {
    for (uint32_t h : heap_heads) {
      FeatState& st = heads()[h];
      if (!st.mono() || st.mono()->on_heap()) st.~FeatState();
    }
    if (has_text) text().~TextColumns();
    buf.leave_to_pools();
    this->~KeyState();
  }
  // Makes a freed key's state ready for another key, keeping its memory.
  void reset() {
    max_t = kMinTime;
    referenced = false;
    key.clear();
    buf.clear();
    for (size_t i = 0; i < nheads; ++i) heads()[i].reset();
    if (has_text)
      for (auto& t : text()) t.clear();
  }
};
static_assert(sizeof(SlidingFeatureGroup::KeyState) == 64);

namespace {

// Key states are allocated on cache lines; the feature states start on one.
constexpr size_t kLine = 64;
constexpr size_t kFeatsOffset = sizeof(SlidingFeatureGroup::KeyState);
static_assert(kFeatsOffset % kLine == 0);

}  // namespace

void SlidingFeatureGroup::KeyStateDeleter::operator()(KeyState* ks) const {
  for (uint32_t i = 0; i < ks->nheads; ++i) ks->heads()[i].~FeatState();
  if (ks->has_text) ks->text().~TextColumns();
  ks->~KeyState();
  BlockPool::deallocate(ks);
}

void SlidingFeatureGroup::clear_keys() {
  KeyStateDeleter del;
  keys_.for_each([&](uint64_t, KeyState* ks) { del(ks); });
  keys_.clear();
  if (published_) published_->clear();
}

void SlidingFeatureGroup::set_huge_pages(bool on) {
  state_pool_->set_huge_pages(on);
  row_pools_->set_huge_pages(on);
}

void SlidingFeatureGroup::enable_concurrent_reads() {
  if (concurrent_) return;
  concurrent_ = true;
  reclaimer_ = std::make_unique<EpochReclaimer>();
  published_ = std::make_unique<PublishedIndex<KeyState>>(reclaimer_.get());
  keys_.for_each([&](uint64_t hash, KeyState* ks) { published_->insert(hash, ks); });
}

void SlidingFeatureGroup::publish(KeyState* ks) {
  if (concurrent_) published_->insert(ks->hash, ks);
}

// A freed key's state goes back to the free list (or is deleted) once no
// reader can be reading it.
void SlidingFeatureGroup::retire_key(KeyState* ks) {
  published_->erase(ks->hash, ks);
  reclaimer_->retire(
      ks,
      [](void* group, void* state) {
        auto* g = static_cast<SlidingFeatureGroup*>(group);
        KeyStatePtr owned(static_cast<KeyState*>(state));
        if (g->free_.size() < kMaxFree) g->free_.push_back(std::move(owned));  // reset on reuse
      },
      this);
}

const SlidingFeatureGroup::KeyState* SlidingFeatureGroup::prefetch_state(std::string_view key,
                                                                         uint64_t hash) const {
  const KeyState* ks = keys_.find_hash(hash);
  if (ks == nullptr) return nullptr;
  (void)key;
  const char* p = reinterpret_cast<const char*>(ks);
  const size_t lines = (kFeatsOffset + heads_.size() * sizeof(FeatState)) / kLine;
  for (size_t i = 0; i < lines; ++i) __builtin_prefetch(p + i * kLine);
  return ks;
}

uint64_t SlidingFeatureGroup::column_bits(const Event& event, size_t c) const {
  const FieldValue& fv = event.values[columns_[c].field];
  if (columns_[c].kind == ColumnKind::Number) {
    double d = fv.is_null() ? std::numeric_limits<double>::quiet_NaN() : fv.as_double();
    if (d == 0) d = 0;  // -0.0 and 0.0 are one value
    return double_to_bits(d);
  }
  return fv.is_null() ? 0 : (hash_string(event.str(fv)) | 1);
}

void SlidingFeatureGroup::prefetch_rows(const KeyState* ks, const Event* event) const {
  if (!ks->buf.empty()) {
    __builtin_prefetch(ks->buf.row(0));
    __builtin_prefetch(ks->buf.row(ks->buf.size() - 1));
  }
  for (uint32_t i = 0; i < ks->nheads; ++i) {
    const FeatState& st = ks->heads()[i];
    if (const auto* dq = st.mono(); dq && !dq->empty()) {
      __builtin_prefetch(&dq->front());
      __builtin_prefetch(&dq->back());
    }
    if (const auto* d = st.distinct(); d && d->map.active() && event)
      __builtin_prefetch(d->map.home_of(column_bits(*event, heads_[i].column)));
    if (st.start < ks->buf.size()) __builtin_prefetch(ks->buf.row(st.start));
  }
}

SlidingFeatureGroup::SlidingFeatureGroup(const Schema& schema, std::vector<FeatureSpec> features,
                                         std::vector<int> outputs, TimeMs allowed_lateness)
    : schema_(schema), lateness_(allowed_lateness), retention_(0) {
  for (size_t i = 0; i < features.size(); ++i) {
    Feature f;
    f.spec = std::move(features[i]);
    f.output = outputs[i];
    f.column = -1;
    f.field_type = FieldType::Int64;
    f.has_head = f.spec.agg != AggKind::Prev && f.spec.agg != AggKind::TimeSinceLast;
    f.head = -1;
    f.owns_head = false;
    retention_ = std::max(retention_, f.spec.window);
    if (f.spec.field >= 0) {
      f.field_type = schema_[f.spec.field].type;
      ColumnKind kind = ColumnKind::Number;
      if (f.field_type == FieldType::String)
        kind = agg_returns_field(f.spec.agg) ? ColumnKind::Text : ColumnKind::Hash;
      auto it = std::find_if(columns_.begin(), columns_.end(),
                             [&](const Column& c) { return c.field == f.spec.field; });
      if (it == columns_.end()) {
        columns_.push_back({f.spec.field, kind});
        f.column = static_cast<int>(columns_.size()) - 1;
      } else {
        if (kind == ColumnKind::Text) it->kind = ColumnKind::Text;
        f.column = static_cast<int>(it - columns_.begin());
      }
    }
    features_.push_back(std::move(f));
  }
  for (const Column& c : columns_) has_text_ |= c.kind == ColumnKind::Text;
  assign_heads();
  plan_reads();
  head_reads_ = !features_.empty();
  for (const Feature& f : features_)
    head_reads_ &= f.has_head && (f.spec.agg == AggKind::Count || f.spec.agg == AggKind::Sum ||
                                  f.spec.agg == AggKind::Avg || f.spec.agg == AggKind::Stddev);
  // Inline rows: as many as fit in 64 bytes, at least one, to a power of two.
  const size_t row_bytes = (columns_.size() + 1) * sizeof(uint64_t);
  inline_rows_ = std::bit_floor(static_cast<uint32_t>(std::max<size_t>(1, 64 / row_bytes)));
  state_alloc_bytes_ = kFeatsOffset + heads_.size() * sizeof(FeatState) +
                       (has_text_ ? sizeof(TextColumns) : 0) + inline_rows_ * row_bytes;
  state_pool_ = std::make_unique<BlockPool>(state_alloc_bytes_);
  row_pools_ = std::make_unique<RowPools>();
}

// Features whose head state evolves identically share one: the same window
// length and aggregate kind over the same column (sum, avg and stddev keep the
// same sums). A count of a field's values joins any head of its window and
// field (each counts them); count of events, first and last need only the
// window's start and join any head of their window. Otherwise a feature gets
// a head of its own kind.
void SlidingFeatureGroup::assign_heads() {
  auto kind_of = [](const Feature& f) {
    switch (f.spec.agg) {
      case AggKind::Sum:
      case AggKind::Avg:
      case AggKind::Stddev:
        return HeadKind::Sums;
      case AggKind::Max:
        return HeadKind::Max;
      case AggKind::Min:
        return HeadKind::Min;
      case AggKind::CountDistinct:
      case AggKind::IsNew:
        return HeadKind::Distinct;
      case AggKind::Quantile:
        return HeadKind::Sketch;
      case AggKind::Count:
        return f.column >= 0 ? HeadKind::Count : HeadKind::Start;
      default:
        return HeadKind::Start;  // first, last
    }
  };
  // Pass 0: heads with an aggregate; 1: counts of a field; 2: the others.
  for (int pass = 0; pass < 3; ++pass) {
    for (Feature& f : features_) {
      if (!f.has_head) continue;
      const HeadKind kind = kind_of(f);
      if ((kind == HeadKind::Count) != (pass == 1) || (kind == HeadKind::Start) != (pass == 2))
        continue;
      int h = -1;
      for (size_t i = 0; i < heads_.size() && h < 0; ++i) {
        const Head& head = heads_[i];
        if (head.window != f.spec.window) continue;
        if (pass == 2 || (pass == 1 && head.kind != HeadKind::Start && head.column == f.column) ||
            (head.kind == kind && head.column == f.column))
          h = static_cast<int>(i);
      }
      f.owns_head = h < 0;  // the first feature of a head restores it
      if (h < 0) {
        heads_.push_back({f.spec.window, kind, kind == HeadKind::Start ? -1 : f.column});
        h = static_cast<int>(heads_.size()) - 1;
      }
      f.head = h;
    }
  }
}

SlidingFeatureGroup::~SlidingFeatureGroup() {
  if (reclaimer_) reclaimer_->free_all();
  // The pools go with the group: the keys' blocks (states, rows, deques) are
  // not given back one by one; only the heads that may hold other memory
  // are visited.
  const std::vector<uint32_t> heap_heads = heads_holding_memory();
  keys_.for_each([&](uint64_t, KeyState* ks) { ks->destroy_leaving_pools(heap_heads); });
  keys_.clear();
  if (published_) published_->clear();
  if (reclaimer_) reclaimer_->free_all();
}

std::vector<uint32_t> SlidingFeatureGroup::heads_holding_memory() const {
  std::vector<uint32_t> out;
  for (size_t h = 0; h < heads_.size(); ++h)
    if (heads_[h].kind != HeadKind::Start && heads_[h].kind != HeadKind::Count &&
        heads_[h].kind != HeadKind::Sums)
      out.push_back(static_cast<uint32_t>(h));
  return out;
}

namespace {

inline bool cell_null(uint64_t bits, bool hash) {
  return hash ? bits == 0 : std::isnan(bits_to_double(bits));
}

}  // namespace

[[gnu::always_inline]] inline bool SlidingFeatureGroup::read_column(const KeyState& ks, int column,
                                                                    size_t pos, uint64_t* bits,
                                                                    double* x) const {
  *bits = 0;
  *x = 0;
  if (column < 0) return true;  // the feature reads no field (count)
  *bits = ks.buf.cell(pos, column);
  const bool hash = columns_[column].kind != ColumnKind::Number;
  if (cell_null(*bits, hash)) return false;
  if (!hash) *x = bits_to_double(*bits);
  return true;
}

int64_t SlidingFeatureGroup::head_count(const KeyState& ks, size_t fi) const {
  const Feature& f = features_[fi];
  const FeatState& st = ks.heads()[f.head];
  if (f.column < 0) return static_cast<int64_t>(ks.buf.size() - st.start);
  const Head& head = heads_[f.head];
  if (head.kind != HeadKind::Start && head.column == f.column) return st.m.n;  // its values
  int64_t n = 0;  // first/last on another column's head: counted (snapshots only)
  for (size_t i = st.start; i < ks.buf.size(); ++i) {
    uint64_t bits;
    double x;
    n += read_cell(ks, f, i, &bits, &x);
  }
  return n;
}

// Calls f(value, events) for each distinct non-null value of head h's
// window, in order of first appearance when the window is scanned.
template <typename F>
void SlidingFeatureGroup::for_each_distinct(const KeyState& ks, size_t h, F&& f) const {
  const DistinctState& d = *ks.heads()[h].distinct();
  if (d.map.active()) {
    d.map.for_each(f);
    return;
  }
  // Scanned windows have at most kScanRows rows, one more while add_to_head
  // builds the map.
  uint64_t values[DistinctState::kScanRows + 1];
  uint32_t counts[DistinctState::kScanRows + 1];
  size_t k = 0;
  const int column = heads_[h].column;
  for (size_t i = ks.heads()[h].start; i < ks.buf.size(); ++i) {
    uint64_t bits;
    double x;
    if (!read_column(ks, column, i, &bits, &x)) continue;
    size_t j = 0;
    while (j < k && values[j] != bits) ++j;
    if (j == k) {
      values[k] = bits;
      counts[k++] = 0;
    }
    ++counts[j];
  }
  for (size_t j = 0; j < k; ++j) f(values[j], counts[j]);
}

size_t SlidingFeatureGroup::distinct_size(const KeyState& ks, size_t h) const {
  const DistinctState& d = *ks.heads()[h].distinct();
  if (d.map.active()) return d.map.size();
  size_t n = 0;
  for_each_distinct(ks, h, [&](uint64_t, uint32_t) { ++n; });
  return n;
}

uint32_t SlidingFeatureGroup::distinct_count(const KeyState& ks, size_t h, uint64_t bits) const {
  const DistinctState& d = *ks.heads()[h].distinct();
  if (d.map.active()) {
    return d.map.count(bits);
  }
  uint32_t n = 0;
  const int column = heads_[h].column;
  for (size_t i = ks.heads()[h].start; i < ks.buf.size(); ++i) {
    uint64_t b;
    double x;
    n += read_column(ks, column, i, &b, &x) && b == bits;
  }
  return n;
}

[[gnu::always_inline]] inline void SlidingFeatureGroup::add_to_head(KeyState& ks, size_t h,
                                                                    size_t pos, bool in_order) {
  const Head& head = heads_[h];
  FeatState& st = ks.heads()[h];
  uint64_t bits;
  double x;
  if (head.kind == HeadKind::Start) return;  // the window's start is all it keeps
  if (DistinctState* d = st.distinct()) {
    // The row at pos is in the window [start, size) already.
    const bool value = read_column(ks, head.column, pos, &bits, &x);
    d->n += value;
    if (d->map.active()) {
      if (value) d->map.add(bits);
    } else if (ks.buf.size() - st.start > DistinctState::kScanRows) {
      CountMap map;
      map.activate();
      for_each_distinct(ks, h, [&](uint64_t v, uint32_t n) { map.add(v, n); });
      d->map.swap(map);
    }
    return;
  }
  if (!read_column(ks, head.column, pos, &bits, &x)) return;
  switch (head.kind) {
    case HeadKind::Sums:
      st.m.add(x);
      return;
    case HeadKind::Max:
    case HeadKind::Min: {
      ++st.m.n;
      double v = head.kind == HeadKind::Max ? x : -x;
      TimeMs t = ks.buf.time(pos);
      auto& dq = *st.mono();
      if (in_order) {
        while (!dq.empty() && dq.back().v <= v) dq.pop_back();
        dq.push_back({t, v}, row_pools_.get());
        return;
      }
      // Out of order: insert by time unless a later entry dominates it.
      size_t q = 0;
      while (q < dq.size() && dq[q].t <= t) ++q;
      if (q < dq.size() && dq[q].v >= v) return;
      dq.insert(q, {t, v}, row_pools_.get());
      while (q > 0 && dq[q - 1].v <= v) {
        dq.erase(q - 1);
        --q;
      }
      return;
    }
    case HeadKind::Sketch:
      ++st.m.n;
      st.sketch()->add(x);
      return;
    default:
      ++st.m.n;  // Count: the values of its column
      return;
  }
}

[[gnu::always_inline]] inline void SlidingFeatureGroup::remove_from_head(KeyState& ks, size_t h,
                                                                         size_t pos) {
  const Head& head = heads_[h];
  FeatState& st = ks.heads()[h];
  uint64_t bits;
  double x;
  if (head.kind == HeadKind::Start) return;
  if (DistinctState* d = st.distinct()) {
    // The row at pos (= start) is leaving the window.
    if (!read_column(ks, head.column, pos, &bits, &x)) return;
    --d->n;
    if (d->map.active()) {
      d->map.remove_one(bits);
      if (ks.buf.size() - pos - 1 <= DistinctState::kScanRows / 2) {
        d->map.clear();
      }
    }
    return;
  }
  if (!read_column(ks, head.column, pos, &bits, &x)) return;
  switch (head.kind) {
    case HeadKind::Sums:
      st.m.remove(x);
      return;
    case HeadKind::Sketch:
      --st.m.n;
      st.sketch()->remove(x);
      return;
    default:
      --st.m.n;
      return;  // count; min/max leave the deque by time
  }
}

[[gnu::always_inline]] inline void SlidingFeatureGroup::advance_head(KeyState& ks, size_t h,
                                                                     size_t pos) {
  FeatState& st = ks.heads()[h];
  const TimeMs cutoff = ks.buf.time(pos) - heads_[h].window;
  // The event at pos is after the cutoff: it stays whichever comes first.
  // Distinct values leave first (the set holds only this window's values,
  // mostly few enough to stay in the head's cache line); the running sums
  // add first (their rounding depends on the order, kept as it was).
  const bool distinct = st.distinct() != nullptr;
  if (!distinct) add_to_head(ks, h, pos, true);
  while (st.start < ks.buf.size() && ks.buf.time(st.start) <= cutoff) {
    remove_from_head(ks, h, st.start);
    ++st.start;
  }
  if (distinct) add_to_head(ks, h, pos, true);
  if (st.mono())
    while (!st.mono()->empty() && st.mono()->front().t <= cutoff) st.mono()->pop_front();
}

void SlidingFeatureGroup::write_field_value(const KeyState& ks, size_t pos, const Feature& f,
                                            FeatureValue& v) const {
  uint64_t bits = ks.buf.cell(pos, f.column);
  const Column& c = columns_[f.column];
  if (cell_null(bits, c.kind != ColumnKind::Number)) {
    v.set_null();
    return;
  }
  if (c.kind == ColumnKind::Text) {
    v.set_string(ks.text()[f.column][pos]);
    return;
  }
  double d = bits_to_double(bits);
  switch (f.field_type) {
    case FieldType::Int64:
    case FieldType::Timestamp:
      v.set_int(static_cast<int64_t>(d));
      break;
    case FieldType::Bool:
      v.set_bool(d != 0);
      break;
    default:
      v.set_double(d);
  }
}

namespace {

// Writes the numeric result of an invertible aggregate.
[[gnu::always_inline]] inline void write_moments(AggKind agg, const Moments& m, FeatureValue& v) {
  switch (agg) {
    case AggKind::Count:
      v.set_int(m.n);
      return;
    case AggKind::Sum:
      v.set_double(m.n == 0 ? 0.0 : m.sum());
      return;  // a sum of nothing is 0
    case AggKind::Avg:
      if (m.n == 0) {
        v.set_null();
      } else {
        v.set_double(m.mean());
      }
      return;
    case AggKind::Stddev:
      if (m.n == 0) {
        v.set_null();
      } else {
        v.set_double(m.stddev());
      }
      return;
    default:
      v.set_null();
  }
}

}  // namespace

// The heads have taken the event at pos (advance_head()): the head window is
// this event's window (t - window, t].
[[gnu::always_inline]] inline void SlidingFeatureGroup::compute_in_order(KeyState& ks, size_t pos,
                                                                         const Feature& f,
                                                                         size_t fi,
                                                                         FeatureValue& v) {
  (void)fi;
  const FeatState* st = f.head >= 0 ? &ks.heads()[f.head] : nullptr;  // none: prev, since
  const TimeMs t = ks.buf.time(pos);
  const TimeMs cutoff = t - f.spec.window;
  const bool hash = f.column >= 0 && columns_[f.column].kind != ColumnKind::Number;
  switch (f.spec.agg) {
    case AggKind::Count:  // events, or (with a field) the field's values
      v.set_int(f.column < 0 ? static_cast<int64_t>(ks.buf.size() - st->start) : st->m.n);
      return;
    case AggKind::Sum:
    case AggKind::Avg:
    case AggKind::Stddev:
      write_moments(f.spec.agg, st->m, v);
      return;
    case AggKind::Min:
    case AggKind::Max:
      if (st->mono()->empty()) {
        v.set_null();
      } else {
        v.set_double(f.spec.agg == AggKind::Max ? st->mono()->front().v : -st->mono()->front().v);
      }
      return;
    case AggKind::CountDistinct:
      v.set_int(static_cast<int64_t>(distinct_size(ks, f.head)));
      return;
    case AggKind::IsNew: {
      // The head window is this event's (t - window, t]: new when the value
      // was counted once, by this event.
      const uint64_t bits = ks.buf.cell(pos, f.column);
      if (cell_null(bits, hash)) {
        v.set_null();
      } else {
        v.set_bool(distinct_count(ks, f.head, bits) == 1);
      }
      return;
    }
    case AggKind::Quantile:
      if (st->sketch()->empty()) {
        v.set_null();
      } else {
        v.set_double(st->sketch()->quantile(f.spec.q));
      }
      return;
    case AggKind::First:
      for (size_t i = st->start; i <= pos; ++i) {
        if (!cell_null(ks.buf.cell(i, f.column), hash)) return write_field_value(ks, i, f, v);
      }
      v.set_null();
      return;
    case AggKind::Last:
      for (size_t i = pos + 1; i-- > st->start;) {
        if (!cell_null(ks.buf.cell(i, f.column), hash)) return write_field_value(ks, i, f, v);
      }
      v.set_null();
      return;
    case AggKind::Prev:
      if (pos > 0 && ks.buf.time(pos - 1) > cutoff) {
        write_field_value(ks, pos - 1, f, v);
      } else {
        v.set_null();
      }
      return;
    case AggKind::TimeSinceLast:
      if (pos > 0 && ks.buf.time(pos - 1) > cutoff) {
        v.set_int(t - ks.buf.time(pos - 1));
      } else {
        v.set_null();
      }
      return;
  }
}

// The heads have taken the event at pos (on_event()).
void SlidingFeatureGroup::compute_out_of_order(KeyState& ks, size_t pos, const Feature& f,
                                               size_t fi, FeatureValue& v) {
  (void)fi;
  const FeatState* st = f.head >= 0 ? &ks.heads()[f.head] : nullptr;  // none: prev, since
  const TimeMs t = ks.buf.time(pos);
  const TimeMs cutoff = t - f.spec.window;
  const size_t n = ks.buf.size();
  // lo: first event of this event's window (t - window, t].
  size_t lo_a = 0, lo_b = pos;
  while (lo_a < lo_b) {
    size_t mid = (lo_a + lo_b) / 2;
    if (ks.buf.time(mid) <= cutoff) {
      lo_a = mid + 1;
    } else {
      lo_b = mid;
    }
  }
  const size_t lo = lo_a;
  const bool hash = f.column >= 0 && columns_[f.column].kind != ColumnKind::Number;
  auto null_at = [&](size_t i) {
    return f.column >= 0 && cell_null(ks.buf.cell(i, f.column), hash);
  };
  auto num_at = [&](size_t i) { return bits_to_double(ks.buf.cell(i, f.column)); };

  switch (f.spec.agg) {
    case AggKind::Count:
    case AggKind::Sum:
    case AggKind::Avg:
    case AggKind::Stddev: {
      // Either correct the head aggregate by the events between the two
      // windows, or scan this event's window: whichever touches fewer events.
      const bool in_head = pos >= st->start;
      const size_t delta_cost =
          in_head ? (n - 1 - pos) + (st->start - lo) : std::numeric_limits<size_t>::max();
      Moments m;
      const bool counting = f.spec.agg == AggKind::Count;
      if (delta_cost < pos - lo + 1) {
        if (counting) {
          m.n = f.column < 0 ? static_cast<int64_t>(n - st->start) : st->m.n;
        } else {
          m = st->m;
        }
        for (size_t i = pos + 1; i < n; ++i)
          if (!null_at(i)) counting ? void(--m.n) : m.remove(num_at(i));
        for (size_t i = lo; i < st->start; ++i)
          if (!null_at(i)) counting ? void(++m.n) : m.add(num_at(i));
      } else {
        for (size_t i = lo; i <= pos; ++i)
          if (!null_at(i)) counting ? void(++m.n) : m.add(num_at(i));
      }
      write_moments(f.spec.agg, m, v);
      return;
    }
    case AggKind::Min:
    case AggKind::Max: {
      bool any = false;
      double best = 0;
      for (size_t i = lo; i <= pos; ++i) {
        if (null_at(i)) continue;
        double x = num_at(i);
        if (!any || (f.spec.agg == AggKind::Max ? x > best : x < best)) best = x;
        any = true;
      }
      if (any) {
        v.set_double(best);
      } else {
        v.set_null();
      }
      return;
    }
    case AggKind::IsNew: {
      if (null_at(pos)) {
        v.set_null();
        return;
      }
      const uint64_t bits = ks.buf.cell(pos, f.column);
      bool seen = false;
      for (size_t i = lo; i < pos && !seen; ++i) seen = ks.buf.cell(i, f.column) == bits;
      v.set_bool(!seen);
      return;
    }
    case AggKind::CountDistinct:
      scratch_set_.clear();
      for (size_t i = lo; i <= pos; ++i)
        if (!null_at(i)) scratch_set_.emplace(ks.buf.cell(i, f.column), 1);
      v.set_int(static_cast<int64_t>(scratch_set_.size()));
      return;
    case AggKind::Quantile:
      scratch_sketch_.clear();
      for (size_t i = lo; i <= pos; ++i)
        if (!null_at(i)) scratch_sketch_.add(num_at(i));
      if (scratch_sketch_.empty()) {
        v.set_null();
      } else {
        v.set_double(scratch_sketch_.quantile(f.spec.q));
      }
      return;
    case AggKind::First:
      for (size_t i = lo; i <= pos; ++i)
        if (!null_at(i)) return write_field_value(ks, i, f, v);
      v.set_null();
      return;
    case AggKind::Last:
      for (size_t i = pos + 1; i-- > lo;)
        if (!null_at(i)) return write_field_value(ks, i, f, v);
      v.set_null();
      return;
    case AggKind::Prev:
    case AggKind::TimeSinceLast:
      if (pos > 0 && ks.buf.time(pos - 1) > cutoff) {
        if (f.spec.agg == AggKind::Prev) {
          write_field_value(ks, pos - 1, f, v);
        } else {
          v.set_int(t - ks.buf.time(pos - 1));
        }
      } else {
        v.set_null();
      }
      return;
  }
}

void SlidingFeatureGroup::prune(KeyState& ks, TimeMs watermark) {
  const TimeMs threshold = watermark - lateness_ - retention_;
  if (ks.buf.empty() || ks.buf.time(0) > threshold) return;
  size_t min_start = ks.buf.size();
  for (size_t h = 0; h < ks.nheads; ++h)
    min_start = std::min<size_t>(min_start, ks.heads()[h].start);
  size_t dropped = 0;
  while (dropped < min_start && !ks.buf.empty() && ks.buf.time(0) <= threshold) {
    ks.buf.pop_front();
    if (has_text_)
      for (size_t c = 0; c < columns_.size(); ++c)
        if (columns_[c].kind == ColumnKind::Text) ks.text()[c].pop_front();
    ++dropped;
  }
  if (dropped == 0) return;
  for (size_t h = 0; h < ks.nheads; ++h) ks.heads()[h].start -= dropped;
}

SlidingFeatureGroup::KeyStatePtr SlidingFeatureGroup::new_key_state() {
  if (!free_.empty()) {  // the most recently freed: still in the cache
    KeyStatePtr ks = std::move(free_.back());
    free_.pop_back();
    ks->reset();
    return ks;
  }
  char* block = static_cast<char*>(state_pool_->allocate());
  FeatState* heads = reinterpret_cast<FeatState*>(block + kFeatsOffset);
  for (size_t h = 0; h < heads_.size(); ++h) new (heads + h) FeatState();
  char* after = reinterpret_cast<char*>(heads + heads_.size());
  if (has_text_) new (after) TextColumns(columns_.size());
  uint64_t* rows = reinterpret_cast<uint64_t*>(after + (has_text_ ? sizeof(TextColumns) : 0));
  KeyStatePtr ks(new (block)
                     KeyState(static_cast<uint32_t>(columns_.size()),
                              static_cast<uint32_t>(heads_.size()), rows, inline_rows_, has_text_));
  for (size_t h = 0; h < heads_.size(); ++h) {
    switch (heads_[h].kind) {
      case HeadKind::Min:
      case HeadKind::Max:
        ks->heads()[h].make(FeatState::kMono);
        break;
      case HeadKind::Distinct:
        ks->heads()[h].make(FeatState::kDistinct);
        break;
      case HeadKind::Sketch:
        ks->heads()[h].make(FeatState::kSketch);
        break;
      default:
        break;
    }
  }
  return ks;
}

void SlidingFeatureGroup::on_event(std::string_view key, uint64_t hash, const Event& event,
                                   TimeMs watermark, FeatureValue* out) {
  KeyState* found = keys_.find(hash, [&](const KeyState* ks) { return ks->key == key; });
  if (found == nullptr) {
    KeyStatePtr ks;
    if (store_) {
      if (keys_.size() >= cache_keys_) evict(watermark);
      db_key_.assign(prefix_).append(key);
      if (store_->get(db_key_, watermark, &io_)) {
        ByteReader r(io_);
        ks = load_key(r);  // nullptr (damage): the key starts afresh
      }
    }
    if (!ks) {
      ks = new_key_state();
      ks->key.assign(key);
    }
    ks->hash = hash;
    expiry_.push_back({std::max(ks->max_t, event.time) + lateness_ + retention_, ks.get()});
    found = ks.release();
    keys_.insert(hash, found);
    publish(found);
  } else {
    found->referenced = true;
  }
  KeyState& ks = *found;
  // Concurrent reads: the state is odd-numbered while it changes (a reader
  // that sees the same even number before and after its copy has a
  // consistent one).
  uint32_t version = 0;
  if (concurrent_) {
    version = ks.version.load(std::memory_order_relaxed);
    ks.version.store(version + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  prune(ks, watermark);

  const TimeMs t = event.time;
  const bool in_order = ks.buf.empty() || t >= ks.max_t;
  size_t pos;
  if (in_order) {
    pos = ks.buf.size();
  } else {
    size_t a = 0, b = ks.buf.size();  // upper bound: after equal times (ties by arrival)
    while (a < b) {
      size_t mid = (a + b) / 2;
      if (ks.buf.time(mid) <= t) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    pos = a;
  }
  uint64_t* row = ks.buf.insert(pos, row_pools_.get(), concurrent_ ? &grown_ : nullptr);
  row[0] = static_cast<uint64_t>(t);
  for (size_t c = 0; c < columns_.size(); ++c) {
    row[1 + c] = column_bits(event, c);
    if (columns_[c].kind == ColumnKind::Text) {
      const FieldValue& fv = event.values[columns_[c].field];
      ks.text()[c].insert(pos, fv.is_null() ? std::string() : std::string(event.str(fv)));
    }
  }
  if (in_order) {
    ks.max_t = t;
    for (size_t h = 0; h < heads_.size(); ++h) advance_head(ks, h, pos);
    for (size_t i = 0; i < features_.size(); ++i)
      compute_in_order(ks, pos, features_[i], i, out[features_[i].output]);
  } else {
    for (size_t h = 0; h < heads_.size(); ++h) {
      if (t > ks.max_t - heads_[h].window) {
        add_to_head(ks, h, pos, false);
      } else {
        ++ks.heads()[h].start;  // inserted before the head window
      }
    }
    for (size_t i = 0; i < features_.size(); ++i)
      compute_out_of_order(ks, pos, features_[i], i, out[features_[i].output]);
  }
  if (concurrent_) {
    ks.version.store(version + 2, std::memory_order_release);
    for (const RowArray& rows : grown_)
      reclaimer_->retire(
          rows.data,
          [](void* bytes, void* p) {
            RowPools::free(static_cast<uint64_t*>(p), reinterpret_cast<uintptr_t>(bytes));
          },
          // The reclaimer passes one pointer of context: the array's size rides in it.
          reinterpret_cast<void*>(rows.bytes));  // NOLINT(performance-no-int-to-ptr)
    grown_.clear();
    reclaimer_->collect();
  }
}

void SlidingFeatureGroup::expire(TimeMs watermark) {
  // A FIFO in order of creation: nearly in order of due time. An entry that is
  // not due yet holds back the ones behind it, which only delays freeing.
  while (!expiry_.empty() && expiry_.front().first <= watermark) {
    // The keys next in line are freed soon (most often by the next events):
    // their states, then (once those are cached) their table slots.
    if (expiry_.size() > 16) {  // the whole state: a freed one is reset when reused
      const char* p = reinterpret_cast<const char*>(expiry_[16].second);
      for (size_t off = 0; off < state_alloc_bytes_; off += kLine) __builtin_prefetch(p + off);
    }
    if (expiry_.size() > 8) keys_.prefetch(expiry_[8].second->hash);
    KeyState* ks = expiry_.front().second;
    expiry_.pop_front();
    TimeMs due = ks->max_t + lateness_ + retention_;
    if (due > watermark) {
      expiry_.push_back({due, ks});
      continue;
    }
    free_key(ks);
  }
  if (concurrent_) reclaimer_->collect();
  if (store_) store_->set_watermark(watermark);
}

void SlidingFeatureGroup::free_key(KeyState* ks) {
  keys_.erase(ks->hash, ks);  // by pointer: the stored hash finds it
  if (concurrent_) return retire_key(ks);
  KeyStatePtr owned(ks);
  // Reset when reused (new_key_state): freeing touches only the key's first line.
  if (free_.size() < kMaxFree) free_.push_back(std::move(owned));
}

void SlidingFeatureGroup::evict(TimeMs watermark) {
  for (size_t guard = 2 * expiry_.size() + 1; keys_.size() >= cache_keys_ && guard > 0; --guard) {
    auto [due, ks] = expiry_.front();
    expiry_.pop_front();
    if (ks->referenced) {  // second chance
      ks->referenced = false;
      expiry_.push_back({due, ks});
      continue;
    }
    // Expired keys are dropped: no event at or after `watermark` can use them.
    const TimeMs expiry = ks->max_t + lateness_ + retention_;
    if (expiry > watermark) {
      io_.clear();
      ByteWriter w(&io_);
      save_key(w, *ks);
      db_key_.assign(prefix_).append(ks->key.view());
      store_->put(db_key_, expiry, io_);
    }
    free_key(ks);
  }
}

namespace {

// Moments beyond the count are only kept by these aggregates (Moments::add).
bool uses_sums(AggKind agg) {
  return agg == AggKind::Sum || agg == AggKind::Avg || agg == AggKind::Stddev;
}

}  // namespace

// Encoding of one key's state (snapshots and the RocksDB backend):
//   str key, i64 max_t, u32 rows, rows (time + one word per column), the
//   strings of each Text column (one per row), then per feature: u32 start,
//   i64 count, for sum/avg/stddev the sums (f64 k s sc q qc), and by
//   aggregate: min/max u32 n +
//   (i64 t, f64 v)*; count_distinct u32 n + (u64 value, u32 count)*;
//   quantile the sketch.
void SlidingFeatureGroup::save_key(ByteWriter& w, const KeyState& ks) const {
  const size_t stride = columns_.size() + 1;
  w.str(ks.key.view());
  w.i64(ks.max_t);
  w.u32(static_cast<uint32_t>(ks.buf.size()));
  for (size_t i = 0; i < ks.buf.size(); ++i) w.raw(ks.buf.row(i), stride * 8);
  for (size_t c = 0; c < columns_.size(); ++c)
    if (columns_[c].kind == ColumnKind::Text)
      for (size_t i = 0; i < ks.buf.size(); ++i) w.str(ks.text()[c][i]);
  // Per feature, as when each feature kept its own head state: features
  // sharing a head write the same start and aggregate.
  for (size_t f = 0; f < features_.size(); ++f) {
    const Feature& feat = features_[f];
    if (feat.head < 0) {  // prev / time_since_last: no head window
      w.u32(0);
      w.i64(0);
      continue;
    }
    const FeatState& st = ks.heads()[feat.head];
    const AggKind agg = feat.spec.agg;
    w.u32(static_cast<uint32_t>(st.start));
    w.i64(head_count(ks, f));
    if (uses_sums(agg))
      for (double d : {st.m.k, st.m.s, st.m.sc, st.m.q, st.m.qc}) w.f64(d);
    if (agg == AggKind::Min || agg == AggKind::Max) {
      w.u32(static_cast<uint32_t>(st.mono()->size()));
      for (size_t i = 0; i < st.mono()->size(); ++i) {
        w.i64((*st.mono())[i].t);
        w.f64((*st.mono())[i].v);
      }
    }
    if (agg == AggKind::CountDistinct || agg == AggKind::IsNew) {
      w.u32(static_cast<uint32_t>(distinct_size(ks, feat.head)));
      for_each_distinct(ks, feat.head, [&](uint64_t bits, uint32_t n) {
        w.u64(bits);
        w.u32(n);
      });
    }
    if (agg == AggKind::Quantile) st.sketch()->save(w);
  }
}

SlidingFeatureGroup::KeyStatePtr SlidingFeatureGroup::load_key(ByteReader& r) {
  const size_t stride = columns_.size() + 1;
  KeyStatePtr ks = new_key_state();
  ks->key.assign(r.str());
  ks->hash = key_hash(ks->key.view());
  ks->max_t = r.i64();
  const uint32_t rows = r.count(stride * 8);
  for (uint32_t i = 0; i < rows; ++i) r.raw(ks->buf.insert(i, row_pools_.get()), stride * 8);
  for (size_t c = 0; c < columns_.size(); ++c)
    if (columns_[c].kind == ColumnKind::Text)
      for (uint32_t i = 0; i < rows; ++i) ks->text()[c].push_back(std::string(r.str()));
  // Each head is restored from the record of its first feature (the
  // others hold the same values and are read past).
  for (size_t f = 0; f < features_.size(); ++f) {
    const Feature& feat = features_[f];
    const AggKind agg = feat.spec.agg;
    const uint32_t start = r.u32();
    const int64_t count = r.i64();
    if (start > rows) return nullptr;
    FeatState* st = feat.owns_head ? &ks->heads()[feat.head] : nullptr;
    if (st) {
      st->start = start;
      if (heads_[feat.head].kind != HeadKind::Start) st->m.n = count;
    }
    if (uses_sums(agg)) {
      double sums[5];
      for (double& d : sums) d = r.f64();
      if (st) {
        st->m.k = sums[0];
        st->m.s = sums[1];
        st->m.sc = sums[2];
        st->m.q = sums[3];
        st->m.qc = sums[4];
      }
    }
    if (agg == AggKind::Min || agg == AggKind::Max) {
      const uint32_t m = r.count(16);
      for (uint32_t i = 0; i < m; ++i) {
        TimeMs t = r.i64();
        const double v = r.f64();
        if (st) st->mono()->push_back({t, v}, row_pools_.get());
      }
    }
    if (agg == AggKind::CountDistinct || agg == AggKind::IsNew) {
      if (st && rows - start > DistinctState::kScanRows) st->distinct()->map.activate();
      const uint32_t m = r.count(12);
      for (uint32_t i = 0; i < m; ++i) {
        // A window of few rows is scanned: its values are those of the rows.
        uint64_t bits = r.u64();
        const uint32_t n = r.u32();
        if (st && st->distinct()->map.active() && n > 0) st->distinct()->map.set(bits, n);
      }
    }
    if (agg == AggKind::Quantile) {
      QuantileSketch skipped;
      if (!(st ? st->sketch() : &skipped)->load(r)) return nullptr;
    }
  }
  if (r.failed()) return nullptr;
  return ks;
}

// Snapshot encoding: u32 columns, u32 features, u32 keys, then per key in
// expiry order: i64 due, the key's state (save_key).
void SlidingFeatureGroup::snapshot(ByteWriter& w) const {
  w.u32(static_cast<uint32_t>(columns_.size()));
  w.u32(static_cast<uint32_t>(features_.size()));
  w.u32(static_cast<uint32_t>(expiry_.size()));
  for (size_t e = 0; e < expiry_.size(); ++e) {
    w.i64(expiry_[e].first);
    save_key(w, *expiry_[e].second);
  }
}

bool SlidingFeatureGroup::restore(ByteReader& r) {
  clear_keys();
  expiry_.clear();
  if (r.u32() != columns_.size() || r.u32() != features_.size()) return false;
  const uint32_t n = r.count(24);
  for (uint32_t e = 0; e < n; ++e) {
    const TimeMs due = r.i64();
    KeyStatePtr ks = load_key(r);
    if (!ks || keys_.find(ks->hash, [&](const KeyState* k) { return k->key == ks->key.view(); })) {
      clear_keys();
      expiry_.clear();
      return false;
    }
    expiry_.push_back({due, ks.get()});
    const uint64_t h = ks->hash;
    publish(ks.get());
    keys_.insert(h, ks.release());
  }
  return !r.failed();
}

size_t SlidingFeatureGroup::state_bytes() const {
  size_t bytes = keys_.capacity() * sizeof(KeyTable<KeyState>::Slot);
  bytes += expiry_.capacity() * sizeof(Expiry);
  if (published_) bytes += published_->memory_bytes();
  const std::vector<uint32_t> heap_heads = heads_holding_memory();  // the others hold none
  keys_.for_each([&](uint64_t, const KeyState* ks) {
    bytes += state_alloc_bytes_ + ks->key.heap_bytes();
    bytes += ks->buf.heap_bytes();
    if (ks->has_text)
      for (const auto& c : ks->text()) bytes += sizeof(c) + c.capacity() * sizeof(std::string);
    for (uint32_t h : heap_heads) {
      const FeatState& st = ks->heads()[h];
      if (st.mono()) bytes += st.mono()->heap_bytes();
      if (st.distinct()) bytes += st.distinct()->map.table_bytes();
      if (st.sketch()) bytes += st.sketch()->memory_bytes();
    }
  });
  return bytes;
}

}  // namespace millrace

namespace millrace {

void SlidingFeatureGroup::evaluate_range(const KeyState& ks, size_t fi, size_t lo, size_t hi,
                                         TimeMs at, ReadScratch* scratch, FeatureValue& v,
                                         TimeMs* freshness) const {
  const Feature& f = features_[fi];
  const bool hash = f.column >= 0 && columns_[f.column].kind != ColumnKind::Number;
  auto null_at = [&](size_t i) {
    return f.column >= 0 && cell_null(ks.buf.cell(i, f.column), hash);
  };
  auto num_at = [&](size_t i) { return bits_to_double(ks.buf.cell(i, f.column)); };
  // The newest contributing event: the last non-null one in the range.
  auto newest = [&]() -> TimeMs {
    for (size_t i = hi; i-- > lo;)
      if (!null_at(i)) return ks.buf.time(i);
    return kMinTime;
  };
  *freshness = kMinTime;
  switch (f.spec.agg) {
    case AggKind::Count:
    case AggKind::Sum:
    case AggKind::Avg:
    case AggKind::Stddev: {
      Moments m;
      const bool counting = f.spec.agg == AggKind::Count;
      const FeatState& st = ks.heads()[f.head];
      // Reading at or after the newest event: the head aggregate minus the
      // events that aged out since, when that touches fewer events.
      if (hi == ks.buf.size() && lo >= st.start && lo - st.start < hi - lo) {
        if (counting) {
          m.n = f.column < 0 ? static_cast<int64_t>(hi - st.start) : st.m.n;
        } else {
          m = st.m;
        }
        for (size_t i = st.start; i < lo; ++i)
          if (!null_at(i)) counting ? void(--m.n) : m.remove(num_at(i));
      } else {
        for (size_t i = lo; i < hi; ++i)
          if (!null_at(i)) counting ? void(++m.n) : m.add(num_at(i));
      }
      write_moments(f.spec.agg, m, v);
      if (m.n > 0) *freshness = newest();
      return;
    }
    case AggKind::Min:
    case AggKind::Max: {
      bool any = false;
      double best = 0;
      for (size_t i = lo; i < hi; ++i) {
        if (null_at(i)) continue;
        double x = num_at(i);
        if (!any || (f.spec.agg == AggKind::Max ? x > best : x < best)) best = x;
        any = true;
      }
      if (any) {
        v.set_double(best);
        *freshness = newest();
      } else {
        v.set_null();
      }
      return;
    }
    case AggKind::CountDistinct:
      scratch->set.clear();
      for (size_t i = lo; i < hi; ++i)
        if (!null_at(i)) scratch->set.emplace(ks.buf.cell(i, f.column), 1);
      v.set_int(static_cast<int64_t>(scratch->set.size()));
      if (!scratch->set.empty()) *freshness = newest();
      return;
    case AggKind::Quantile:
      scratch->sketch.clear();
      for (size_t i = lo; i < hi; ++i)
        if (!null_at(i)) scratch->sketch.add(num_at(i));
      if (scratch->sketch.empty()) {
        v.set_null();
      } else {
        v.set_double(scratch->sketch.quantile(f.spec.q));
        *freshness = newest();
      }
      return;
    case AggKind::First:
      for (size_t i = lo; i < hi; ++i)
        if (!null_at(i)) {
          write_field_value(ks, i, f, v);
          *freshness = newest();
          return;
        }
      v.set_null();
      return;
    case AggKind::Last:
      for (size_t i = hi; i-- > lo;)
        if (!null_at(i)) {
          write_field_value(ks, i, f, v);
          *freshness = ks.buf.time(i);
          return;
        }
      v.set_null();
      return;
    case AggKind::Prev:
    case AggKind::TimeSinceLast:
      if (hi > lo) {
        *freshness = ks.buf.time(hi - 1);
        if (f.spec.agg == AggKind::Prev) {
          write_field_value(ks, hi - 1, f, v);
        } else {
          v.set_int(at - ks.buf.time(hi - 1));
        }
      } else {
        v.set_null();
      }
      return;
    case AggKind::IsNew:  // says something of an event's value: no value when read as of a time
      v.set_null();
      return;
  }
}

const SlidingFeatureGroup::KeyState* SlidingFeatureGroup::lookup(std::string_view key,
                                                                 KeyStatePtr* loaded) const {
  const uint64_t hash = key_hash(key);
  if (const KeyState* ks = keys_.find(hash, [&](const KeyState* k) { return k->key == key; }))
    return ks;
  if (!store_) return nullptr;
  std::string db_key = prefix_, bytes;
  db_key.append(key);
  if (!store_->get(db_key, kMinTime, &bytes)) return nullptr;
  ByteReader r(bytes);
  // load_key() takes a state from the free list: the worker's, reached
  // under the shard's lock, as the contract above says.
  *loaded = const_cast<SlidingFeatureGroup*>(this)->load_key(r);
  return loaded->get();
}

void SlidingFeatureGroup::plan_reads() {
  for (size_t i = 0; i < features_.size(); ++i) {
    const Feature& f = features_[i];
    auto w = std::find(read_windows_.begin(), read_windows_.end(), f.spec.window);
    const size_t wi = w - read_windows_.begin();
    if (w == read_windows_.end()) read_windows_.push_back(f.spec.window);
    auto pass = std::find_if(read_passes_.begin(), read_passes_.end(), [&](const ReadPass& p) {
      return p.column == f.column && p.window == wi;
    });
    if (pass == read_passes_.end()) {
      ReadPass p;
      p.column = f.column;
      p.window = wi;
      read_passes_.push_back(std::move(p));
      pass = read_passes_.end() - 1;
    }
    pass->features.push_back(static_cast<uint32_t>(i));
    const AggKind a = f.spec.agg;
    pass->moments |= a == AggKind::Sum || a == AggKind::Avg || a == AggKind::Stddev;
    pass->extremes |= a == AggKind::Min || a == AggKind::Max;
    pass->distinct |= a == AggKind::CountDistinct;
  }
}

void SlidingFeatureGroup::read_at(std::string_view key, TimeMs at, ReadScratch* scratch,
                                  FeatureValue* out, TimeMs* freshness) const {
  KeyStatePtr loaded;
  evaluate_at(lookup(key, &loaded), at, scratch, out, freshness);
}

void SlidingFeatureGroup::read_at_concurrent(std::string_view key, TimeMs at, ReadScratch* scratch,
                                             FeatureValue* out, TimeMs* freshness) const {
  const KeyState* copy = nullptr;
  {
    EpochReclaimer::ReadGuard guard(*reclaimer_);
    const uint64_t hash = key_hash(key);
    // A published state's hash and key are set before it is published and
    // do not change until it is freed, which waits for this guard.
    const KeyState* ks =
        published_->find(hash, [&](const KeyState* p) { return p->hash == hash && p->key == key; });
    if (ks != nullptr)
      for (int spins = 0; (copy = copy_for_read(*ks, scratch)) == nullptr;)
        if (++spins > 64) sched_yield();
  }
  evaluate_at(copy, at, scratch, out, freshness);
}

// The worker may change the state while this copies it: every word is read
// as it is, and the copy is used only if the state's number was even before
// and unchanged after (a seqlock). The memory read stays valid meanwhile
// (retired, not freed). Not instrumented by ThreadSanitizer: the races are
// the point, and the number check discards their results.
__attribute__((no_sanitize("thread"))) const SlidingFeatureGroup::KeyState*
SlidingFeatureGroup::copy_for_read(const KeyState& src, ReadScratch* scratch) const {
  const uint32_t v = src.version.load(std::memory_order_acquire);
  if (v & 1) {
    __builtin_ia32_pause();
    return nullptr;
  }
  const EventBuffer::Raw raw = src.buf.raw();
  std::atomic_thread_fence(std::memory_order_acquire);
  if (src.version.load(std::memory_order_relaxed) != v) return nullptr;
  // The buffer's fields are consistent: its rows are within its array.
  const size_t nf = heads_.size();
  const size_t stride = raw.stride;
  const size_t rows = std::bit_ceil(std::max<size_t>(raw.size, 1));  // the ring's capacity
  const size_t words = (kFeatsOffset + nf * sizeof(FeatState)) / 8 + rows * stride;
  if (scratch->copy.size() < words + kLine / 8) scratch->copy.resize(words + kLine / 8 + 64);
  char* base = reinterpret_cast<char*>(scratch->copy.data());
  base += (kLine - reinterpret_cast<uintptr_t>(base) % kLine) % kLine;
  FeatState* heads = reinterpret_cast<FeatState*>(base + kFeatsOffset);
  uint64_t* row_mem = reinterpret_cast<uint64_t*>(heads + nf);
  // Trivially destructible contents: the FeatStates hold no structure (the
  // copy needs only the heads' starts and sums) and the key and text are
  // left empty.
  for (size_t h = 0; h < nf; ++h) new (heads + h) FeatState();
  auto* ks = new (base) KeyState(static_cast<uint32_t>(columns_.size()), static_cast<uint32_t>(nf),
                                 row_mem, static_cast<uint32_t>(rows), false);
  for (size_t h = 0; h < nf; ++h) {
    heads[h].start = src.heads()[h].start;
    // The sums, or the count (the first word whatever the head's kind).
    const size_t bytes = heads_[h].kind == HeadKind::Sums ? sizeof(Moments) : sizeof(int64_t);
    std::memcpy(static_cast<void*>(&heads[h].m), &src.heads()[h].m, bytes);
  }
  uint64_t* dst = ks->buf.set_linear(raw.size);
  const size_t first = std::min<size_t>(raw.size, raw.cap - raw.head);
  std::memcpy(dst, raw.data + size_t{raw.head} * stride, first * stride * 8);
  std::memcpy(dst + first * stride, raw.data, (raw.size - first) * stride * 8);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (src.version.load(std::memory_order_relaxed) != v) return nullptr;
  return ks;
}

void SlidingFeatureGroup::evaluate_at(const KeyState* ks, TimeMs at, ReadScratch* scratch,
                                      FeatureValue* out, TimeMs* freshness) const {
  if (ks == nullptr) {
    for (const Feature& f : features_) {
      // No buffered event: what an empty window gives.
      FeatureValue& v = out[f.output];
      if (f.spec.agg == AggKind::Count || f.spec.agg == AggKind::CountDistinct) {
        v.set_int(0);
      } else if (f.spec.agg == AggKind::Sum) {
        v.set_double(0);
      } else {
        v.set_null();
      }
      if (freshness) freshness[f.output] = kMinTime;
    }
    return;
  }
  const EventBuffer& buf = ks->buf;
  // The first buffered event after t (events are in time order).
  auto first_after = [&](TimeMs t, size_t a, size_t b) {
    while (a < b) {
      size_t mid = (a + b) / 2;
      if (buf.time(mid) <= t) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    return a;
  };
  auto finish = [&](const Feature& f, FeatureValue& v, TimeMs fresh) {
    if (f.spec.ttl > 0 && fresh != kMinTime && fresh <= at - f.spec.ttl) v.set_null();
    if (freshness) freshness[f.output] = fresh;
  };
  // Reading at or after the key's newest event (as a transaction reads its
  // terminal's delayed labels), when every feature keeps a running count or
  // sum: a window's first event is at most a few rows after its head
  // window's (whose row the worker prefetched with the key), and
  // evaluate_range() takes the head aggregate minus the rows between. The
  // window's other rows are not read.
  if (head_reads_ && (buf.empty() || buf.time(buf.size() - 1) <= at)) {
    const size_t hi = buf.size();
    for (size_t fi = 0; fi < features_.size(); ++fi) {
      const Feature& f = features_[fi];
      const TimeMs from = at - f.spec.window;
      size_t lo = std::min<size_t>(ks->heads()[f.head].start, hi);
      for (size_t walked = 0; lo < hi && buf.time(lo) <= from; ++lo)
        if (++walked == 8) {
          lo = first_after(from, lo, hi);
          break;
        }
      TimeMs fresh = kMinTime;
      evaluate_range(*ks, fi, lo, hi, at, scratch, out[f.output], &fresh);
      finish(f, out[f.output], fresh);
    }
    return;
  }
  // Usually every buffered event is at or before `at`, and a window reaches
  // back past the oldest one: one look at each end saves a search.
  size_t hi = buf.size();
  if (hi > 0 && buf.time(hi - 1) > at) hi = first_after(at, 0, hi);
  // Per window length: its first event, at most 64 window lengths on the stack.
  size_t lo_small[64];
  std::unique_ptr<size_t[]> lo_big;
  size_t* lo = lo_small;
  if (read_windows_.size() > 64) {
    lo_big.reset(new size_t[read_windows_.size()]);
    lo = lo_big.get();
  }
  const size_t nw = read_windows_.size();
  if (nw <= 64) {
    // The windows from the shortest. Walking back from the newest event, at
    // most kWalk events, reads the rows the short windows' scans read next;
    // a binary search over the whole buffer missed the cache on rows no scan
    // reads and mispredicted half of its branches. Past kWalk events, a
    // binary search over the older ones.
    uint8_t order[64];
    for (size_t w = 0; w < nw; ++w) {
      size_t k = w;
      for (; k > 0 && read_windows_[order[k - 1]] > read_windows_[w]; --k) order[k] = order[k - 1];
      order[k] = static_cast<uint8_t>(w);
    }
    constexpr size_t kWalk = 64;
    const size_t stop = hi - std::min(hi, kWalk);
    size_t j = hi;  // the events in [j, hi) are inside every window done so far
    for (size_t k = 0; k < nw; ++k) {
      const size_t w = order[k];
      const TimeMs from = at - read_windows_[w];
      while (j > stop && buf.time(j - 1) > from) --j;
      if (j > stop || j == 0) {
        lo[w] = j;  // the event before j is at or before `from`, or there is none
      } else {
        lo[w] = buf.time(0) > from ? 0 : first_after(from, 0, j);
        j = lo[w];
      }
    }
  } else {
    for (size_t w = 0; w < nw; ++w) {
      const TimeMs from = at - read_windows_[w];
      lo[w] = hi == 0 || buf.time(0) > from ? 0 : first_after(from, 0, hi);
    }
  }

  // Windows longer than this are evaluated feature by feature (count, sum,
  // avg and stddev then start from the running head aggregate).
  constexpr size_t kOnePassRows = 64;
  uint64_t distinct[kOnePassRows];
  for (const ReadPass& pass : read_passes_) {
    const size_t a = lo[pass.window];
    if (hi - a > kOnePassRows) {
      for (uint32_t fi : pass.features) {
        const Feature& f = features_[fi];
        TimeMs fresh = kMinTime;
        evaluate_range(*ks, fi, a, hi, at, scratch, out[f.output], &fresh);
        finish(f, out[f.output], fresh);
      }
      continue;
    }
    // One scan: the non-null values of the field in (at - window, at].
    int64_t n = 0;
    size_t first = hi, last = hi;
    Moments m;
    double mn = 0, mx = 0;
    if (pass.column < 0) {
      n = static_cast<int64_t>(hi - a);
      if (n > 0) first = a, last = hi - 1;
    } else {
      const bool hash = columns_[pass.column].kind != ColumnKind::Number;
      for (size_t i = a; i < hi; ++i) {
        const uint64_t bits = buf.cell(i, pass.column);
        if (cell_null(bits, hash)) continue;
        if (n == 0) first = i;
        last = i;
        if (pass.distinct) distinct[n] = bits;
        ++n;
        if (hash) continue;
        const double x = bits_to_double(bits);
        if (pass.moments) m.add(x);
        if (pass.extremes) {
          if (n == 1 || x < mn) mn = x;
          if (n == 1 || x > mx) mx = x;
        }
      }
    }
    m.n = n;
    const TimeMs newest = n > 0 ? buf.time(last) : kMinTime;
    int64_t distinct_n = -1;
    for (uint32_t fi : pass.features) {
      const Feature& f = features_[fi];
      FeatureValue& v = out[f.output];
      TimeMs fresh = newest;
      switch (f.spec.agg) {
        case AggKind::Count:
        case AggKind::Sum:
        case AggKind::Avg:
        case AggKind::Stddev:
          write_moments(f.spec.agg, m, v);
          break;
        case AggKind::Min:
        case AggKind::Max:
          if (n > 0) {
            v.set_double(f.spec.agg == AggKind::Min ? mn : mx);
          } else {
            v.set_null();
          }
          break;
        case AggKind::CountDistinct:
          if (distinct_n < 0) {
            std::sort(distinct, distinct + n);
            distinct_n = std::unique(distinct, distinct + n) - distinct;
          }
          v.set_int(distinct_n);
          break;
        case AggKind::First:
        case AggKind::Last:
          if (n > 0) {
            write_field_value(*ks, f.spec.agg == AggKind::First ? first : last, f, v);
          } else {
            v.set_null();
          }
          break;
        case AggKind::Quantile:
        case AggKind::Prev:
        case AggKind::TimeSinceLast:
        case AggKind::IsNew:
          evaluate_range(*ks, fi, a, hi, at, scratch, v, &fresh);
          break;
      }
      finish(f, v, fresh);
    }
  }
}

}  // namespace millrace

namespace millrace {

void SlidingFeatureGroup::slice_aggregate(std::string_view key, size_t fi, TimeMs lo, TimeMs hi,
                                          SliceAggregate* out) const {
  *out = SliceAggregate();
  KeyStatePtr loaded;
  const KeyState* found = lookup(key, &loaded);
  if (!found) return;
  const KeyState& ks = *found;
  const Feature& f = features_[fi];
  auto first_after = [&](TimeMs t) {
    size_t a = 0, b = ks.buf.size();
    while (a < b) {
      size_t mid = (a + b) / 2;
      if (ks.buf.time(mid) <= t) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    return a;
  };
  const size_t begin = first_after(lo), end = first_after(hi);
  const bool hash = f.column >= 0 && columns_[f.column].kind != ColumnKind::Number;
  for (size_t i = begin; i < end; ++i) {
    const TimeMs t = ks.buf.time(i);
    if (f.spec.agg == AggKind::Prev || f.spec.agg == AggKind::TimeSinceLast) {
      out->last_t = t;
      if (f.spec.agg == AggKind::Prev) write_field_value(ks, i, f, out->last);
      ++out->n;
      continue;
    }
    if (f.column >= 0 && cell_null(ks.buf.cell(i, f.column), hash)) continue;
    if (out->n == 0) {
      out->first_t = t;
      if (f.column >= 0) write_field_value(ks, i, f, out->first);
    }
    out->last_t = t;
    ++out->n;
    if (f.column < 0) continue;
    if (hash) {
      out->distinct.push_back(ks.buf.cell(i, f.column));
    } else {
      double x = bits_to_double(ks.buf.cell(i, f.column));
      out->sum += x;
      out->sumsq += x * x;
      if (out->n == 1 || x < out->min) out->min = x;
      if (out->n == 1 || x > out->max) out->max = x;
    }
    if (f.spec.agg == AggKind::Last) write_field_value(ks, i, f, out->last);
  }
  if (f.spec.agg == AggKind::CountDistinct && f.column >= 0 && !hash)
    for (size_t i = begin; i < end; ++i) {
      uint64_t c = ks.buf.cell(i, f.column);
      if (!cell_null(c, false)) out->distinct.push_back(c);
    }
  std::sort(out->distinct.begin(), out->distinct.end());
  out->distinct.erase(std::unique(out->distinct.begin(), out->distinct.end()), out->distinct.end());
}

}  // namespace millrace
