#include "millrace/window/accumulator.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include <absl/container/flat_hash_set.h>

#include "millrace/core/json_writer.h"
#include "millrace/window/quantile_sketch.h"

namespace millrace {

namespace {

using DistinctSet = absl::flat_hash_set<std::string>;
constexpr double kInf = std::numeric_limits<double>::infinity();

double get_d(const uint64_t* w) {
  double d;
  std::memcpy(&d, w, sizeof d);
  return d;
}
void set_d(uint64_t* w, double d) {
  std::memcpy(w, &d, sizeof d);
}
int64_t get_i(const uint64_t* w) {
  return static_cast<int64_t>(*w);
}
void set_i(uint64_t* w, int64_t i) {
  *w = static_cast<uint64_t>(i);
}
template <typename T>
T* get_p(const uint64_t* w) {
  // The state word holds a pointer the operator set with set_p.
  return reinterpret_cast<T*>(static_cast<uintptr_t>(*w));  // NOLINT(performance-no-int-to-ptr)
}
template <typename T>
void set_p(uint64_t* w, T* p) {
  *w = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
}

size_t slot_words(AggKind k) {
  switch (k) {
    case AggKind::Avg:
      return 2;
    case AggKind::Stddev:
      return 3;
    case AggKind::First:
    case AggKind::Last:
      return 4;
    default:
      return 1;
  }
}

// An encoded field value for count_distinct: equal values, equal bytes.
std::string distinct_bytes(const Event& e, const FieldValue& v) {
  std::string s;
  switch (v.kind) {
    case FieldValue::Kind::String:
      s.reserve(v.s.len + 1);
      s.push_back('s');
      s.append(e.str(v));
      break;
    case FieldValue::Kind::Int:
      s.push_back('i');
      s.append(reinterpret_cast<const char*>(&v.i), sizeof v.i);
      break;
    case FieldValue::Kind::Double:
      s.push_back('d');
      s.append(reinterpret_cast<const char*>(&v.d), sizeof v.d);
      break;
    case FieldValue::Kind::Bool:
      s.push_back('b');
      s.push_back(v.b ? 1 : 0);
      break;
    default:
      break;
  }
  return s;
}

// first/last: [time, seq, kind, value]. True when (t1, s1) is earlier than (t2, s2).
bool earlier(const uint64_t* a, const uint64_t* b) {
  return get_i(a) < get_i(b) || (get_i(a) == get_i(b) && a[1] < b[1]);
}

void set_value(uint64_t* w, FieldValue::Kind kind, uint64_t payload, const std::string* str) {
  if (static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::String)
    delete get_p<std::string>(w + 3);
  w[2] = static_cast<uint64_t>(kind);
  if (kind == FieldValue::Kind::String)
    set_p(w + 3, new std::string(*str));
  else
    w[3] = payload;
}

}  // namespace

AccumulatorLayout::AccumulatorLayout(const std::vector<WindowAggSpec>& aggs, const Schema& schema) {
  (void)schema;
  for (const WindowAggSpec& a : aggs) {
    Slot s;
    s.kind = a.agg;
    s.field = a.field;
    s.q = a.q;
    s.word = static_cast<uint32_t>(words_);
    append_json_key(s.key, a.name);
    text_bound_ += s.key.size() + kValueChars;
    words_ += slot_words(a.agg);
    if (a.agg == AggKind::CountDistinct || a.agg == AggKind::Quantile || a.agg == AggKind::First ||
        a.agg == AggKind::Last)
      owns_heap_ = true;
    slots_.push_back(std::move(s));
  }
}

void AccumulatorLayout::init(uint64_t* acc) const {
  for (const Slot& s : slots_) {
    uint64_t* w = acc + s.word;
    if (s.kind == AggKind::Min) set_d(w, kInf);
    if (s.kind == AggKind::Max) set_d(w, -kInf);
  }
}

void AccumulatorLayout::add(uint64_t* acc, const Event& event, uint64_t seq) const {
  for (const Slot& s : slots_) {
    uint64_t* w = acc + s.word;
    if (s.field < 0) {  // count of events
      ++*w;
      continue;
    }
    const FieldValue& v = event.values[s.field];
    if (v.is_null()) continue;
    switch (s.kind) {
      case AggKind::Count:
        ++*w;
        break;
      case AggKind::Sum:
        set_d(w, get_d(w) + v.as_double());
        break;
      case AggKind::Avg:
        set_d(w, get_d(w) + v.as_double());
        ++w[1];
        break;
      case AggKind::Min:
        set_d(w, std::fmin(get_d(w), v.as_double()));
        break;
      case AggKind::Max:
        set_d(w, std::fmax(get_d(w), v.as_double()));
        break;
      case AggKind::Stddev: {
        double x = v.as_double();
        int64_t n = get_i(w) + 1;
        double mean = get_d(w + 1);
        double d = x - mean;
        mean += d / static_cast<double>(n);
        set_i(w, n);
        set_d(w + 1, mean);
        set_d(w + 2, get_d(w + 2) + d * (x - mean));
        break;
      }
      case AggKind::CountDistinct: {
        DistinctSet* set = get_p<DistinctSet>(w);
        if (!set) {
          set = new DistinctSet();
          set_p(w, set);
        }
        set->insert(distinct_bytes(event, v));
        break;
      }
      case AggKind::First:
      case AggKind::Last: {
        uint64_t cand[2] = {static_cast<uint64_t>(event.time), seq};
        bool empty = static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::Null;
        bool take = empty || (s.kind == AggKind::First ? earlier(cand, w) : !earlier(cand, w));
        if (!take) break;
        w[0] = cand[0];
        w[1] = cand[1];
        uint64_t payload = 0;
        std::string str;
        switch (v.kind) {
          case FieldValue::Kind::Int:
            payload = static_cast<uint64_t>(v.i);
            break;
          case FieldValue::Kind::Double:
            std::memcpy(&payload, &v.d, sizeof payload);
            break;
          case FieldValue::Kind::Bool:
            payload = v.b ? 1 : 0;
            break;
          case FieldValue::Kind::String:
            str.assign(event.str(v));
            break;
          default:
            break;
        }
        set_value(w, v.kind, payload, &str);
        break;
      }
      case AggKind::Quantile: {
        QuantileSketch* q = get_p<QuantileSketch>(w);
        if (!q) {
          q = new QuantileSketch();
          set_p(w, q);
        }
        q->add(v.as_double());
        break;
      }
      default:
        break;
    }
  }
}

void AccumulatorLayout::merge(uint64_t* into, const uint64_t* from) const {
  for (const Slot& s : slots_) {
    uint64_t* w = into + s.word;
    const uint64_t* f = from + s.word;
    switch (s.kind) {
      case AggKind::Count:
        *w += *f;
        break;
      case AggKind::Sum:
        set_d(w, get_d(w) + get_d(f));
        break;
      case AggKind::Avg:
        set_d(w, get_d(w) + get_d(f));
        w[1] += f[1];
        break;
      case AggKind::Min:
        set_d(w, std::fmin(get_d(w), get_d(f)));
        break;
      case AggKind::Max:
        set_d(w, std::fmax(get_d(w), get_d(f)));
        break;
      case AggKind::Stddev: {
        int64_t na = get_i(w), nb = get_i(f);
        if (nb == 0) break;
        if (na == 0) {
          std::memcpy(w, f, 3 * sizeof(uint64_t));
          break;
        }
        double n = static_cast<double>(na + nb);
        double d = get_d(f + 1) - get_d(w + 1);
        set_d(w + 1, get_d(w + 1) + d * static_cast<double>(nb) / n);
        set_d(w + 2, get_d(w + 2) + get_d(f + 2) +
                         d * d * static_cast<double>(na) * static_cast<double>(nb) / n);
        set_i(w, na + nb);
        break;
      }
      case AggKind::CountDistinct: {
        const DistinctSet* fs = get_p<DistinctSet>(f);
        if (!fs) break;
        DistinctSet* set = get_p<DistinctSet>(w);
        if (!set) {
          set = new DistinctSet();
          set_p(w, set);
        }
        set->insert(fs->begin(), fs->end());
        break;
      }
      case AggKind::First:
      case AggKind::Last: {
        auto kind = static_cast<FieldValue::Kind>(f[2]);
        if (kind == FieldValue::Kind::Null) break;
        bool empty = static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::Null;
        bool take = empty || (s.kind == AggKind::First ? earlier(f, w) : earlier(w, f));
        if (!take) break;
        w[0] = f[0];
        w[1] = f[1];
        set_value(w, kind, f[3],
                  kind == FieldValue::Kind::String ? get_p<std::string>(f + 3) : nullptr);
        break;
      }
      case AggKind::Quantile: {
        const QuantileSketch* fq = get_p<QuantileSketch>(f);
        if (!fq) break;
        QuantileSketch* q = get_p<QuantileSketch>(w);
        if (!q) {
          q = new QuantileSketch();
          set_p(w, q);
        }
        q->merge(*fq);
        break;
      }
      default:
        break;
    }
  }
}

void AccumulatorLayout::destroy(uint64_t* acc) const {
  if (!owns_heap_) return;
  for (const Slot& s : slots_) {
    uint64_t* w = acc + s.word;
    switch (s.kind) {
      case AggKind::CountDistinct:
        delete get_p<DistinctSet>(w);
        break;
      case AggKind::Quantile:
        delete get_p<QuantileSketch>(w);
        break;
      case AggKind::First:
      case AggKind::Last:
        if (static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::String)
          delete get_p<std::string>(w + 3);
        w[2] = 0;
        continue;
      default:
        continue;
    }
    *w = 0;
  }
}

void AccumulatorLayout::save(ByteWriter& out, const uint64_t* acc) const {
  for (const Slot& s : slots_) {
    const uint64_t* w = acc + s.word;
    switch (s.kind) {
      case AggKind::CountDistinct: {
        const DistinctSet* set = get_p<DistinctSet>(w);
        out.u32(set ? static_cast<uint32_t>(set->size()) : 0);
        if (set)
          for (const std::string& v : *set) out.str(v);
        break;
      }
      case AggKind::Quantile: {
        const QuantileSketch* q = get_p<QuantileSketch>(w);
        out.u8(q ? 1 : 0);
        if (q) q->save(out);
        break;
      }
      case AggKind::First:
      case AggKind::Last:
        out.u64(w[0]);
        out.u64(w[1]);
        out.u64(w[2]);
        if (static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::String)
          out.str(*get_p<std::string>(w + 3));
        else
          out.u64(w[3]);
        break;
      default:
        out.raw(w, slot_words(s.kind) * sizeof(uint64_t));
        break;
    }
  }
}

bool AccumulatorLayout::load(ByteReader& in, uint64_t* acc) const {
  for (const Slot& s : slots_) {
    uint64_t* w = acc + s.word;
    switch (s.kind) {
      case AggKind::CountDistinct: {
        const uint32_t n = in.count(4);
        if (n == 0) break;
        auto* set = new DistinctSet();
        set_p(w, set);
        for (uint32_t i = 0; i < n; ++i) set->insert(std::string(in.str()));
        break;
      }
      case AggKind::Quantile:
        if (in.u8()) {
          auto* q = new QuantileSketch();
          set_p(w, q);
          if (!q->load(in)) return false;
        }
        break;
      case AggKind::First:
      case AggKind::Last: {
        w[0] = in.u64();
        w[1] = in.u64();
        const uint64_t kind = in.u64();
        if (kind > static_cast<uint64_t>(FieldValue::Kind::Bool)) return false;
        if (static_cast<FieldValue::Kind>(kind) == FieldValue::Kind::String) {
          std::string str(in.str());
          set_value(w, FieldValue::Kind::String, 0, &str);
        } else {
          w[2] = kind;
          w[3] = in.u64();
        }
        break;
      }
      default:
        in.raw(w, slot_words(s.kind) * sizeof(uint64_t));
        break;
    }
  }
  return !in.failed();
}

size_t AccumulatorLayout::heap_bytes(const uint64_t* acc) const {
  if (!owns_heap_) return 0;
  size_t bytes = 0;
  for (const Slot& s : slots_) {
    const uint64_t* w = acc + s.word;
    switch (s.kind) {
      case AggKind::CountDistinct:
        if (const DistinctSet* set = get_p<DistinctSet>(w)) {
          bytes += sizeof(DistinctSet) + set->capacity() * (sizeof(std::string) + 1);
          for (const std::string& v : *set)
            if (v.capacity() > 15) bytes += v.capacity() + 1;
        }
        break;
      case AggKind::Quantile:
        if (const QuantileSketch* q = get_p<QuantileSketch>(w)) bytes += q->memory_bytes();
        break;
      case AggKind::First:
      case AggKind::Last:
        if (static_cast<FieldValue::Kind>(w[2]) == FieldValue::Kind::String)
          bytes += sizeof(std::string) + get_p<std::string>(w + 3)->capacity();
        break;
      default:
        break;
    }
  }
  return bytes;
}

namespace {

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}
char* put_int(char* p, int64_t v) {
  return std::to_chars(p, p + 24, v).ptr;
}
// As append_json_double: non-finite values are null.
char* put_double(char* p, double v) {
  return std::isfinite(v) ? write_shortest_double(p, v) : put(p, "null");
}

}  // namespace

char* AccumulatorLayout::write_value(char* p, const Slot& s, const uint64_t* w) const {
  switch (s.kind) {
    case AggKind::Count:
      return put_int(p, get_i(w));
    case AggKind::Sum:
      return put_double(p, get_d(w));
    case AggKind::Avg:
      if (w[1] == 0) return put(p, "null");
      return put_double(p, get_d(w) / static_cast<double>(w[1]));
    case AggKind::Min:
    case AggKind::Max:
      return put_double(p, get_d(w));  // +-inf (empty) -> null
    case AggKind::Stddev:
      if (get_i(w) == 0) return put(p, "null");
      return put_double(p, std::sqrt(std::fmax(get_d(w + 2), 0.0) / static_cast<double>(get_i(w))));
    case AggKind::CountDistinct: {
      const DistinctSet* set = get_p<DistinctSet>(w);
      return put_int(p, set ? static_cast<int64_t>(set->size()) : 0);
    }
    case AggKind::First:
    case AggKind::Last:
      switch (static_cast<FieldValue::Kind>(w[2])) {
        case FieldValue::Kind::Int:
          return put_int(p, get_i(w + 3));
        case FieldValue::Kind::Double:
          return put_double(p, get_d(w + 3));
        case FieldValue::Kind::Bool:
          return put(p, w[3] ? "true" : "false");
        case FieldValue::Kind::String:
          return nullptr;
        default:
          return put(p, "null");
      }
    case AggKind::Quantile: {
      const QuantileSketch* q = get_p<QuantileSketch>(w);
      if (q && !q->empty()) return put_double(p, q->quantile(s.q));
      return put(p, "null");
    }
    default:
      return put(p, "null");
  }
}

void AccumulatorLayout::append_values(std::string& out, const uint64_t* acc) const {
  char buf[kValueChars];
  for (const Slot& s : slots_) {
    const uint64_t* w = acc + s.word;
    out += s.key;
    if (char* end = write_value(buf, s, w))
      out.append(buf, end);
    else
      append_json_string(out, *get_p<std::string>(w + 3));
  }
}

char* AccumulatorLayout::write_values(char* p, const uint64_t* acc) const {
  for (const Slot& s : slots_) {
    p = put(p, s.key);
    p = write_value(p, s, acc + s.word);
    if (!p) return nullptr;
  }
  return p;
}

}  // namespace millrace
