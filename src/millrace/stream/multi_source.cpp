#include "millrace/stream/multi_source.h"

#include <simdjson.h>

#include <fmt/format.h>

namespace millrace {

Result<std::unique_ptr<SourceMerger>> SourceMerger::Open(const PipelineSpec& spec,
                                                         const std::vector<std::string>& uris,
                                                         const ReaderOptions& opts) {
  std::unique_ptr<SourceMerger> m(new SourceMerger());
  m->follow_ = opts.follow;
  m->inputs_.resize(spec.sources.size());
  for (size_t i = 0; i < spec.sources.size(); ++i) {
    const SourceSpec& src = spec.sources[i];
    std::string uri = i < uris.size() && !uris[i].empty() ? uris[i] : src.uri;
    if (uri.empty())
      return Status::Error(
          fmt::format("source '{}' has no input: give it a `uri:` in the spec or --input {}=URI",
                      src.name, src.name));
    auto r = open_reader(uri, opts);
    if (!r.ok())
      return Status::Error(fmt::format("source '{}': {}", src.name, r.status().message()));
    Input& in = m->inputs_[i];
    in.reader = std::move(r.value());
    in.parser = std::make_unique<EventParser>(src.schema, src.time_field);
    if (src.idle_timeout > 0) in.idle_timeout = src.idle_timeout;
  }
  return m;
}

Result<bool> SourceMerger::read_into(Input& in, int i, std::string* line, Event* event,
                                     MergedRecord* rec) {
  RecordRef ref;
  auto r = in.reader->next(&ref);
  if (!r.ok()) return r.status();
  if (!r.value()) return false;
  line->reserve(ref.data.size() + simdjson::SIMDJSON_PADDING);
  line->assign(ref.data.data(), ref.data.size());
  rec->source = i;
  rec->partition = ref.partition;
  rec->offset = ref.offset;
  rec->ok = in.parser->parse(line->data(), line->size(), line->capacity(), event, &rec->error);
  return true;
}

Result<bool> SourceMerger::next(std::string* line, Event* event, MergedRecord* rec, TimeMs now_ms) {
  if (inputs_.size() == 1) return read_into(inputs_[0], 0, line, event, rec);
  // Fill the heads; a record that does not parse goes out at once.
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Input& in = inputs_[i];
    if (in.has_head) continue;
    auto r = read_into(in, static_cast<int>(i), &in.line, &in.event, &in.rec);
    if (!r.ok()) return r.status();
    if (!r.value()) {
      if (!in.reader->finished() && in.empty_since == kMinTime) in.empty_since = now_ms;
      continue;
    }
    in.empty_since = kMinTime;
    in.has_head = true;
    if (!in.rec.ok) break;
  }
  int best = -1;
  for (size_t i = 0; i < inputs_.size(); ++i) {
    Input& in = inputs_[i];
    if (!in.has_head) {
      // Following: a source that ran dry holds the others back for a while.
      if (follow_ && !in.reader->finished() && now_ms - in.empty_since < in.idle_timeout)
        return false;
      continue;
    }
    if (!in.rec.ok) {
      best = static_cast<int>(i);
      break;
    }
    if (best < 0 || in.event.time < inputs_[best].event.time) best = static_cast<int>(i);
  }
  if (best < 0) return false;
  Input& in = inputs_[best];
  std::swap(*line, in.line);
  std::swap(*event, in.event);
  std::swap(*rec, in.rec);
  in.has_head = false;
  return true;
}

bool SourceMerger::may_block() const {
  for (const Input& in : inputs_)
    if (!in.has_head && in.reader->may_block()) return true;
  return false;
}

bool SourceMerger::finished() const {
  for (const Input& in : inputs_)
    if (in.has_head || !in.reader->finished()) return false;
  return true;
}

}  // namespace millrace
