#include "millrace/store/redis_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "millrace/core/json_writer.h"

namespace millrace {
namespace {

using SliceAggregate = SlidingFeatureGroup::SliceAggregate;

// Slice index of event time t: slice i covers (i*S, (i+1)*S].
int64_t slice_of(TimeMs t, TimeMs s) {
  int64_t x = t - 1;
  return x >= 0 ? x / s : -((-x + s - 1) / s);
}

void append_number(std::string& out, double d) {
  append_json_double(out, d);
}

void append_value(std::string& out, const FeatureValue& v) {
  switch (v.kind) {
    case FeatureValue::Kind::Null:
      break;
    case FeatureValue::Kind::String:
      out += 's';
      out += v.s;
      break;
    default:
      out += 'n';
      append_number(out, v.as_double());
  }
}

bool parse_double(std::string_view s, double* d) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *d);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}
bool parse_int(std::string_view s, int64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_value(std::string_view s, FieldType type, FeatureValue* v) {
  if (s.empty()) {
    v->set_null();
    return true;
  }
  if (s[0] == 's') {
    v->set_string(s.substr(1));
    return true;
  }
  double d;
  if (s[0] != 'n' || !parse_double(s.substr(1), &d)) return false;
  switch (type) {
    case FieldType::Int64:
    case FieldType::Timestamp:
      v->set_int(static_cast<int64_t>(d));
      break;
    case FieldType::Bool:
      v->set_bool(d != 0);
      break;
    default:
      v->set_double(d);
  }
  return true;
}

}  // namespace

std::string encode_slice(const SliceAggregate& a) {
  std::string out = std::to_string(a.n);
  out += '|';
  append_number(out, a.sum);
  out += '|';
  append_number(out, a.sumsq);
  out += '|';
  append_number(out, a.min);
  out += '|';
  append_number(out, a.max);
  out += '|';
  out += std::to_string(a.first_t);
  out += '|';
  out += std::to_string(a.last_t);
  out += '|';
  for (size_t i = 0; i < a.distinct.size(); ++i) {
    if (i) out += ',';
    out += fmt::format("{:x}", a.distinct[i]);
  }
  out += '|';
  std::string first;
  append_value(first, a.first);
  out += std::to_string(first.size());
  out += ':';
  out += first;
  append_value(out, a.last);
  return out;
}

bool decode_slice(std::string_view text, FieldType type, SliceAggregate* a) {
  *a = SliceAggregate();
  std::string_view parts[8];
  for (int i = 0; i < 8; ++i) {
    size_t bar = text.find('|');
    if (bar == std::string_view::npos) return false;
    parts[i] = text.substr(0, bar);
    text.remove_prefix(bar + 1);
  }
  if (!parse_int(parts[0], &a->n) || !parse_double(parts[1], &a->sum) ||
      !parse_double(parts[2], &a->sumsq) || !parse_double(parts[3], &a->min) ||
      !parse_double(parts[4], &a->max) || !parse_int(parts[5], &a->first_t) ||
      !parse_int(parts[6], &a->last_t))
    return false;
  std::string_view d = parts[7];
  while (!d.empty()) {
    size_t comma = d.find(',');
    std::string_view h = d.substr(0, comma);
    uint64_t v;
    auto r = std::from_chars(h.data(), h.data() + h.size(), v, 16);
    if (r.ec != std::errc()) return false;
    a->distinct.push_back(v);
    if (comma == std::string_view::npos) break;
    d.remove_prefix(comma + 1);
  }
  size_t colon = text.find(':');
  int64_t len;
  if (colon == std::string_view::npos || !parse_int(text.substr(0, colon), &len) || len < 0 ||
      colon + 1 + static_cast<size_t>(len) > text.size())
    return false;
  return parse_value(text.substr(colon + 1, len), type, &a->first) &&
         parse_value(text.substr(colon + 1 + len), type, &a->last);
}

// ---- RedisConnection ---------------------------------------------------------

Result<std::unique_ptr<RedisConnection>> RedisConnection::Open(const std::string& uri) {
  std::string_view rest = uri;
  if (rest.rfind("redis://", 0) != 0)
    return Status::Error(fmt::format("store '{}': expected redis://HOST:PORT", uri));
  rest.remove_prefix(8);
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  std::string host(rest);
  int port = 6379;
  if (size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = std::string(rest.substr(0, colon));
    auto r = std::from_chars(rest.data() + colon + 1, rest.data() + rest.size(), port);
    if (r.ec != std::errc()) return Status::Error(fmt::format("store '{}': bad port", uri));
  }
  timeval tv{2, 0};
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, tv);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Status::Error(
        fmt::format("store {}: cannot connect: {} (is redis-server running?)", uri, err));
  }
  std::unique_ptr<RedisConnection> conn(new RedisConnection());
  conn->ctx_ = c;
  conn->uri_ = uri;
  return conn;
}

RedisConnection::~RedisConnection() {
  if (ctx_) redisFree(ctx_);
}

void RedisConnection::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data());
  ++queued_;
}

Status RedisConnection::drain() {
  Status first;
  for (; queued_ > 0; --queued_) {
    void* r = nullptr;
    if (redisGetReply(ctx_, &r) != REDIS_OK) {
      queued_ = 0;
      return Status::Error(fmt::format("store {}: {}", uri_, ctx_->errstr));
    }
    auto* reply = static_cast<redisReply*>(r);
    if (reply->type == REDIS_REPLY_ERROR && first.ok())
      first = Status::Error(fmt::format("store {}: {}", uri_, reply->str));
    freeReplyObject(reply);
  }
  return first;
}

Status RedisConnection::command(const std::vector<std::string>& args,
                                std::vector<std::string>* out) {
  if (auto s = drain(); !s.ok()) return s;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (reply == nullptr) return Status::Error(fmt::format("store {}: {}", uri_, ctx_->errstr));
  Status st;
  if (reply->type == REDIS_REPLY_ERROR) {
    st = Status::Error(fmt::format("store {}: {}", uri_, reply->str));
  } else if (out) {
    out->clear();
    if (reply->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < reply->elements; ++i)
        out->emplace_back(reply->element[i]->str ? reply->element[i]->str : "",
                          reply->element[i]->len);
    }
  }
  freeReplyObject(reply);
  return st;
}

// ---- Layout ------------------------------------------------------------------

RedisLayout::RedisLayout(const PipelineSpec& spec, const FeaturePlan& plan)
    : prefix_(spec.store.prefix), plan_(plan) {
  for (const auto& f : spec.features) {
    TimeMs s = f.slice
                   ? f.slice
                   : (spec.store.slice ? spec.store.slice : std::max<TimeMs>(1000, f.window / 60));
    slice_.push_back(std::max<TimeMs>(1, s));
  }
  for (const auto& set : plan.feature_sets) {
    TimeMs ttl = 0;
    for (int f : set.features) {
      const FeatureSpec& fs = spec.features[f];
      ttl = std::max(ttl, fs.window + slice_[f] + spec.sources[fs.source].allowed_lateness);
    }
    ttl_.push_back(ttl);
  }
}

Status RedisLayout::Check(const PipelineSpec& spec) {
  for (const auto& f : spec.features)
    if (f.agg == AggKind::Quantile)
      return Status::Error(fmt::format(
          "{}:{}: feature '{}': quantile is not kept in the Redis store; use the embedded store "
          "or another aggregate",
          spec.file, f.line, f.name));
  return Status::Ok();
}

std::string RedisLayout::hash_key(int feature_set, std::string_view key) const {
  std::string k = prefix_;
  k += ':';
  k += plan_.feature_sets[feature_set].name;
  k += ':';
  for (char c : key) k += c == kKeySeparator ? '|' : c;
  return k;
}

// ---- Writer ------------------------------------------------------------------

Result<std::unique_ptr<RedisStoreWriter>> RedisStoreWriter::Open(const PipelineSpec& spec,
                                                                 const FeaturePlan& plan) {
  if (auto s = RedisLayout::Check(spec); !s.ok()) return s;
  auto c = RedisConnection::Open(spec.store.uri);
  if (!c.ok()) return c.status();
  std::unique_ptr<RedisStoreWriter> w(new RedisStoreWriter(spec, plan));
  w->conn_ = std::move(c.value());
  return w;
}

Status RedisStoreWriter::on_event(int g, std::string_view key, TimeMs t,
                                  const SlidingFeatureGroup& group) {
  const FeatureGroupPlan& gp = plan_.groups[g];
  args_.assign({"HSET", layout_.hash_key(gp.feature_set, key)});
  std::vector<std::string> del{"HDEL", args_[1]};
  for (size_t i = 0; i < gp.features.size(); ++i) {
    const int f = gp.feature_outputs[i];
    if (f >= static_cast<int>(spec_.features.size())) continue;  // a derived feature's helper
    const TimeMs s = layout_.slice(f);
    const int64_t slice = slice_of(t, s);
    group.slice_aggregate(key, i, slice * s, (slice + 1) * s, &agg_);
    args_.push_back(fmt::format("{}@{}", spec_.features[f].name, slice));
    args_.push_back(encode_slice(agg_));
    // The slice that just left the window (and its lateness) for good.
    const int64_t keep =
        (gp.features[i].window + spec_.sources[gp.source].allowed_lateness) / s + 2;
    del.push_back(fmt::format("{}@{}", spec_.features[f].name, slice - keep));
  }
  conn_->append(args_);
  conn_->append(del);
  conn_->append({"PEXPIRE", args_[1], std::to_string(layout_.key_ttl(gp.feature_set))});
  if (conn_->queued() >= 3 * 256) return conn_->drain();
  return Status::Ok();
}

Status RedisStoreWriter::flush() {
  return conn_->drain();
}

// ---- Reads -------------------------------------------------------------------

Result<std::unique_ptr<RedisStore>> RedisStore::Open(const PipelineSpec& spec,
                                                     const FeaturePlan& plan) {
  if (auto s = RedisLayout::Check(spec); !s.ok()) return s;
  auto c = RedisConnection::Open(spec.store.uri);
  if (!c.ok()) return c.status();
  std::unique_ptr<RedisStore> st(new RedisStore(spec, plan));
  st->conn_ = std::move(c.value());
  return st;
}

Status RedisStore::read(int feature_set, std::string_view key, TimeMs at,
                        FeatureVector* out) const {
  if (feature_set < 0 || feature_set >= static_cast<int>(plan_.feature_sets.size()))
    return Status::Error(fmt::format("no feature set #{}", feature_set));
  const FeatureSetPlan& set = plan_.feature_sets[feature_set];
  std::vector<std::string> fields;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto s = conn_->command({"HGETALL", layout_.hash_key(feature_set, key)}, &fields); !s.ok())
      return s;
  }
  const size_t n = set.features.size();
  std::vector<SliceAggregate> total(n);
  std::vector<bool> any(n, false);
  SliceAggregate a;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    std::string_view name = fields[i];
    size_t atpos = name.rfind('@');
    int64_t slice;
    if (atpos == std::string_view::npos || !parse_int(name.substr(atpos + 1), &slice)) continue;
    name = name.substr(0, atpos);
    for (size_t j = 0; j < n; ++j) {
      const int f = set.features[j];
      const FeatureSpec& fs = spec_.features[f];
      if (fs.name != name) continue;
      const TimeMs s = layout_.slice(f);
      if (slice <= slice_of(at - fs.window, s) || slice > slice_of(at, s)) break;
      FieldType type =
          fs.field >= 0 ? spec_.sources[fs.source].schema[fs.field].type : FieldType::Int64;
      if (!decode_slice(fields[i + 1], type, &a))
        return Status::Error(fmt::format("store: {} field {}: not a slice value",
                                         layout_.hash_key(feature_set, key), fields[i]));
      if (a.n == 0) break;
      SliceAggregate& t = total[j];
      if (!any[j]) {
        t = a;
        any[j] = true;
        break;
      }
      t.sum += a.sum;
      t.sumsq += a.sumsq;
      t.min = std::min(t.min, a.min);
      t.max = std::max(t.max, a.max);
      if (a.first_t < t.first_t) {
        t.first_t = a.first_t;
        t.first = a.first;
      }
      if (a.last_t > t.last_t) {
        t.last_t = a.last_t;
        t.last = a.last;
      }
      t.n += a.n;
      t.distinct.insert(t.distinct.end(), a.distinct.begin(), a.distinct.end());
      break;
    }
  }
  out->names.resize(n);
  out->values.resize(n);
  out->freshness.resize(n);
  for (size_t j = 0; j < n; ++j) {
    const FeatureSpec& fs = spec_.features[set.features[j]];
    out->names[j] = fs.name;
    FeatureValue& v = out->values[j];
    const SliceAggregate& t = total[j];
    const bool has = any[j] && t.n > 0;
    TimeMs fresh = has ? t.last_t : kMinTime;
    switch (fs.agg) {
      case AggKind::Count:
        v.set_int(has ? t.n : 0);
        break;
      case AggKind::Sum:
        v.set_double(has ? t.sum : 0.0);
        break;
      case AggKind::Avg:
        has ? v.set_double(t.sum / t.n) : v.set_null();
        break;
      case AggKind::Stddev: {
        if (!has) {
          v.set_null();
          break;
        }
        double m = t.sum / t.n, var = t.sumsq / t.n - m * m;
        v.set_double(t.n > 1 && var > 0 ? std::sqrt(var) : 0.0);
        break;
      }
      case AggKind::Min:
        has ? v.set_double(t.min) : v.set_null();
        break;
      case AggKind::Max:
        has ? v.set_double(t.max) : v.set_null();
        break;
      case AggKind::CountDistinct: {
        std::vector<uint64_t> d = t.distinct;
        std::sort(d.begin(), d.end());
        v.set_int(std::unique(d.begin(), d.end()) - d.begin());
        break;
      }
      case AggKind::First:
        has ? void(v = t.first) : v.set_null();
        break;
      case AggKind::Last:
      case AggKind::Prev:
        has ? void(v = t.last) : v.set_null();
        break;
      case AggKind::TimeSinceLast:
        has ? v.set_int(at - t.last_t) : v.set_null();
        break;
      case AggKind::Quantile:
      case AggKind::IsNew:  // of an event's value: none when read as of a time
        v.set_null();
        break;
    }
    if (fs.ttl > 0 && fresh != kMinTime && fresh <= at - fs.ttl) v.set_null();
    out->freshness[j] = fresh;
  }
  return Status::Ok();
}

}  // namespace millrace
