// Window state in checkpoints: it carries a format version, and state of
// another version, of no version (the layout before versions), of another
// window type or cut short is refused with an error naming the window, never
// misread. A snapshot restored into a fresh operator gives the same results.
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "millrace/core/bytes.h"
#include "millrace/stream/checkpoint.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "millrace/window/keyed_windows.h"
#include "tests/support/temp_dir.h"

namespace millrace::testing {
namespace {

constexpr size_t kHeaderBytes = 8 + 1 + 4 + 4;  // tag|version, type, node layout

Schema bench_schema() {
  Schema s;
  s.add({"key", FieldType::String, false});
  s.add({"amount", FieldType::Double, false});
  s.add({"ts", FieldType::Int64, false});
  return s;
}

WindowSpec window(WindowType type) {
  WindowSpec w;
  w.name = type == WindowType::Session ? "sess" : type == WindowType::Hopping ? "hop" : "tumble";
  w.key_fields = {0};
  w.type = type;
  if (type == WindowType::Session) {
    w.gap = 300;
  } else {
    w.size = 1000;
    w.slide = type == WindowType::Hopping ? 250 : 1000;
  }
  w.allowed_lateness = 500;
  WindowAggSpec n, sum;
  n.name = "n";
  n.agg = AggKind::Count;
  sum.name = "total";
  sum.agg = AggKind::Sum;
  sum.field = 1;
  w.aggs = {n, sum};
  return w;
}

// Events [from, to) of a fixed stream (40 keys, slightly out of order), each
// with the watermark (max time - 200 ms) around it.
void feed(WindowOperator& op, int from, int to, WindowOutput* out) {
  Event e;
  for (int i = from; i < to; ++i) {
    e.reset(3);
    e.time = 10'000 + i * 7 - (i % 5) * 30;
    e.set_string(0, fmt::format("k{}", (i * 13) % 40));
    e.values[1].kind = FieldValue::Kind::Double;
    e.values[1].d = i % 17;
    e.values[2].kind = FieldValue::Kind::Int;
    e.values[2].i = e.time;
    const TimeMs before = 10'000 + (i - 1) * 7 - 200, after = 10'000 + i * 7 - 200;
    op.advance(before, out);
    op.on_event(e, "{}", before, out);
    op.advance(after, out);
  }
}

std::string snapshot_after(WindowType type, int events) {
  auto op = WindowOperator::Create(window(type), bench_schema());
  WindowOutput out;
  feed(*op, 0, events, &out);
  std::string saved;
  ByteWriter w(&saved);
  op->snapshot(w);
  return saved;
}

const WindowType kTypes[] = {WindowType::Tumbling, WindowType::Hopping, WindowType::Session};

TEST(WindowSnapshot, RestoredStateGivesTheSameResults) {
  for (WindowType type : kTypes) {
    auto a = WindowOperator::Create(window(type), bench_schema());
    WindowOutput out_a, out_b;
    feed(*a, 0, 600, &out_a);
    std::string saved;
    ByteWriter w(&saved);
    a->snapshot(w);
    auto b = WindowOperator::Create(window(type), bench_schema());
    ByteReader r(saved);
    Status st = b->restore(r);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_TRUE(r.at_end());
    EXPECT_EQ(b->keys(), a->keys());
    EXPECT_EQ(b->open_windows(), a->open_windows());
    EXPECT_GT(b->open_windows(), 0u);
    out_a.results.clear();
    feed(*a, 600, 1200, &out_a);
    feed(*b, 600, 1200, &out_b);
    a->advance(kMaxTime, &out_a);
    b->advance(kMaxTime, &out_b);
    EXPECT_FALSE(out_b.results.empty());
    EXPECT_EQ(out_b.results, out_a.results) << window(type).name;
  }
}

TEST(WindowSnapshot, AnotherFormatVersionIsRefusedNotMisread) {
  for (WindowType type : kTypes) {
    const std::string saved = snapshot_after(type, 600);
    uint64_t tag;
    std::memcpy(&tag, saved.data(), sizeof tag);
    ASSERT_EQ(tag, KeyedWindows::kSnapshotTag | KeyedWindows::kSnapshotVersion);
    for (uint32_t version : {1u, KeyedWindows::kSnapshotVersion + 1}) {
      std::string other = saved;
      const uint64_t t = KeyedWindows::kSnapshotTag | version;
      std::memcpy(other.data(), &t, sizeof t);
      auto op = WindowOperator::Create(window(type), bench_schema());
      ByteReader r(other);
      Status st = op->restore(r);
      ASSERT_FALSE(st.ok()) << window(type).name << " version " << version;
      const std::string& m = st.message();
      EXPECT_NE(m.find("window '" + window(type).name + "'"), std::string::npos) << m;
      EXPECT_NE(m.find(fmt::format("format {}", version)), std::string::npos) << m;
      EXPECT_NE(m.find(version == 1 ? "older" : "newer"), std::string::npos) << m;
      EXPECT_NE(m.find("--checkpoint-dir"), std::string::npos) << m;
      EXPECT_EQ(op->keys(), 0u);
      EXPECT_EQ(op->open_windows(), 0u);
    }
  }
}

TEST(WindowSnapshot, StateWithoutAVersionIsRefused) {
  // What operators wrote before versions: the same body, starting with the watermark.
  for (WindowType type : kTypes) {
    const std::string saved = snapshot_after(type, 600);
    const std::string old = saved.substr(kHeaderBytes);
    auto op = WindowOperator::Create(window(type), bench_schema());
    ByteReader r(old);
    Status st = op->restore(r);
    ASSERT_FALSE(st.ok()) << window(type).name;
    EXPECT_NE(st.message().find("without a format version"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("window '" + window(type).name + "'"), std::string::npos);
    EXPECT_EQ(op->keys(), 0u);
  }
  // Nor is the state of a window that had seen nothing (watermark kMinTime).
  auto empty = WindowOperator::Create(window(WindowType::Tumbling), bench_schema());
  std::string saved;
  ByteWriter w(&saved);
  empty->snapshot(w);
  const std::string old = saved.substr(kHeaderBytes);
  auto op = WindowOperator::Create(window(WindowType::Tumbling), bench_schema());
  ByteReader r(old);
  EXPECT_FALSE(op->restore(r).ok());
}

TEST(WindowSnapshot, AnotherWindowTypeOrLayoutIsRefused) {
  const std::string tumbling = snapshot_after(WindowType::Tumbling, 600);
  auto hopping = WindowOperator::Create(window(WindowType::Hopping), bench_schema());
  ByteReader r(tumbling);
  Status st = hopping->restore(r);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("state of a tumbling window"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("window 'hop'"), std::string::npos) << st.message();
  // Same type, other aggregates (another node layout).
  WindowSpec fewer = window(WindowType::Tumbling);
  fewer.aggs.pop_back();
  auto op = WindowOperator::Create(fewer, bench_schema());
  ByteReader r2(tumbling);
  st = op->restore(r2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("words per window"), std::string::npos) << st.message();
}

TEST(WindowSnapshot, StateCutShortIsRefused) {
  for (WindowType type : kTypes) {
    const std::string saved = snapshot_after(type, 600);
    for (size_t keep :
         {size_t{4}, kHeaderBytes - 1, kHeaderBytes + 10, saved.size() / 2, saved.size() - 1}) {
      auto op = WindowOperator::Create(window(type), bench_schema());
      ByteReader r(std::string_view(saved).substr(0, keep));
      Status st = op->restore(r);
      EXPECT_FALSE(st.ok()) << window(type).name << " cut at " << keep;
      EXPECT_NE(st.message().find("window '" + window(type).name + "'"), std::string::npos)
          << st.message();
    }
  }
}

// Through the runtime: a checkpoint whose hopping state says format 1 stops
// the resumed run with an error naming the window, the checkpoint and what to do.
TEST(WindowSnapshot, ResumingACheckpointOfAnotherFormatFailsClearly) {
  TempDir dir;
  auto spec = parse_spec(
      "source:\n  time: ts\n  max_out_of_orderness: 0s\n"
      "  schema: {key: string, amount: double, ts: int64}\n"
      "windows:\n"
      "  - {name: tumble, key: [key], type: tumbling, size: 1s, aggs: [{name: n, agg: count}]}\n"
      "  - {name: hop, key: [key], type: hopping, size: 1s, slide: 250ms,"
      " aggs: [{name: n, agg: count}, {name: total, agg: sum, field: amount}]}\n",
      "spec");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  {
    std::ofstream f(dir.file("in.jsonl"));
    for (int i = 0; i < 2000; ++i)
      f << fmt::format(R"({{"key": "k{}", "amount": {}, "ts": {}}})", (i * 7) % 50, i % 10,
                       1'000'000 + i)
        << "\n";
  }
  RunOptions opts;
  opts.input = dir.file("in.jsonl");
  opts.output = dir.file("out.jsonl");
  opts.workers = 1;
  opts.checkpoint_dir = dir.file("ckpt");
  opts.checkpoint_interval_ms = 1000;
  auto first = run_pipeline(spec.value(), opts);
  ASSERT_TRUE(first.ok()) << first.status().message();

  // Rewrite the newest checkpoint with the hopping window's version changed
  // (its part and the manifest's checksum of it, so that the files verify).
  auto store = CheckpointStore::Open(opts.checkpoint_dir, 2);
  ASSERT_TRUE(store.ok()) << store.status().message();
  std::vector<std::string> warnings;
  auto latest = store.value()->load_latest(&warnings);
  ASSERT_TRUE(latest.ok()) << latest.status().message();
  ASSERT_TRUE(latest.value().has_value());
  RestoredCheckpoint ckpt = std::move(*latest.value());
  ASSERT_EQ(ckpt.parts.size(), 1u);
  std::string part = ckpt.parts[0];
  const uint64_t tag = KeyedWindows::kSnapshotTag | KeyedWindows::kSnapshotVersion;
  const std::string tag_bytes(reinterpret_cast<const char*>(&tag), sizeof tag);
  const size_t tumble_at = part.find(tag_bytes);
  ASSERT_NE(tumble_at, std::string::npos);
  const size_t hop_at = part.find(tag_bytes, tumble_at + 1);
  ASSERT_NE(hop_at, std::string::npos);
  const uint64_t old = KeyedWindows::kSnapshotTag | 1;
  std::memcpy(part.data() + hop_at, &old, sizeof old);
  auto written = store.value()->write_part(ckpt.manifest.id, 0, part);
  ASSERT_TRUE(written.ok()) << written.status().message();
  ckpt.manifest.parts[0] = written.value();
  ASSERT_TRUE(store.value()->write_manifest(ckpt.manifest).ok());

  auto resumed = run_pipeline(spec.value(), opts);
  ASSERT_FALSE(resumed.ok());
  const std::string& m = resumed.status().message();
  EXPECT_NE(m.find("window 'hop'"), std::string::npos) << m;
  EXPECT_NE(m.find("format 1"), std::string::npos) << m;
  EXPECT_NE(m.find(fmt::format("checkpoint {}", ckpt.manifest.id)), std::string::npos) << m;
  EXPECT_NE(m.find("--checkpoint-dir"), std::string::npos) << m;
}

}  // namespace
}  // namespace millrace::testing
