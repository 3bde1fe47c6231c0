// Checkpoints in process: epoch files, resuming a stopped run, what is
// refused. The SIGKILL test is crash_test.cpp.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "millrace/stream/checkpoint.h"
#include "millrace/stream/pipeline.h"
#include "millrace/stream/spec.h"
#include "tests/support/temp_dir.h"

namespace millrace::testing {
namespace {

namespace fs = std::filesystem;

const std::string kSpec = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/crash_spec.yaml";

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// The committed epoch files of output `path`, in checkpoint order, concatenated.
std::vector<std::string> read_epochs(const std::string& path, size_t* files = nullptr,
                                     size_t* pending = nullptr) {
  std::vector<std::string> names;
  const std::string base = fs::path(path).filename().string();
  size_t np = 0;
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) {
    std::string n = e.path().filename().string();
    if (n.rfind(base + ".", 0) != 0) continue;
    if (n.find("pending") != std::string::npos) {
      ++np;
      continue;
    }
    names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const auto& n : names)
    for (auto& l : read_lines(n)) out.push_back(std::move(l));
  if (files) *files = names.size();
  if (pending) *pending = np;
  return out;
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system(fmt::format("{} generate transactions --events 30000 --cards 500 "
                                      "--merchants 50 --gap-ms 5 --seed 5 > {}",
                                      MILLRACE_BINARY, dir_.file("tx.jsonl"))
                              .c_str()),
              0);
    auto spec = load_spec(kSpec);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    spec_ = std::move(spec.value());
    RunOptions opts;
    opts.input = dir_.file("tx.jsonl");
    opts.output = dir_.file("ref.jsonl");
    opts.workers = 2;
    ASSERT_TRUE(run_pipeline(spec_, opts).ok());
    ref_ = read_lines(dir_.file("ref.jsonl"));
    ASSERT_GT(ref_.size(), 30000u);
  }
  RunOptions checkpointed(int workers = 2) {
    RunOptions opts;
    opts.input = dir_.file("tx.jsonl");
    opts.output = dir_.file("out.jsonl");
    opts.workers = workers;
    opts.checkpoint_dir = dir_.file("ckpt");
    opts.checkpoint_interval_ms = 20;
    return opts;
  }
  TempDir dir_;
  PipelineSpec spec_;
  std::vector<std::string> ref_;
};

TEST_F(CheckpointTest, EpochFilesHoldExactlyTheOutput) {
  auto stats = run_pipeline(spec_, checkpointed());
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_GE(stats->checkpoints.count, 2u);  // the first one, the last one, and more by time
  size_t files = 0, pending = 0;
  EXPECT_EQ(read_epochs(dir_.file("out.jsonl"), &files, &pending), ref_);
  EXPECT_GE(files, 1u);
  EXPECT_EQ(pending, 0u);
  EXPECT_FALSE(fs::exists(dir_.file("out.jsonl")));  // only epoch files
  // Three complete checkpoints are kept.
  size_t kept = 0;
  for (const auto& e : fs::directory_iterator(dir_.file("ckpt")))
    kept += fs::exists(e.path() / "manifest");
  EXPECT_EQ(kept, std::min<size_t>(3, stats->checkpoints.count));
}

TEST_F(CheckpointTest, StoppedRunResumesWhereItLeftOff) {
  // Stop (as on SIGTERM) part-way, several times; windows stay open across
  // the stops and the output is the same as one uninterrupted run's. Each run
  // is stopped once 5,000 events have reached its output (not after a time:
  // on a loaded or sanitizer build a timed stop may come before the run made
  // progress, on a fast one after it ended), so every run makes progress and
  // at most 5,000 + max_in_flight events are read before the source sees it.
  constexpr uint64_t kPerRun = 5000;
  int stops = 0;
  bool ended = false;
  for (int round = 0; round < 20 && !ended; ++round) {
    std::atomic<bool> stop{false};
    uint64_t written = 0;  // the sink thread's count
    RunOptions opts = checkpointed();
    opts.max_in_flight = 1024;
    opts.stop = &stop;
    opts.on_vector = [&](const Event&, const FeatureValue*) {
      if (++written == kPerRun) stop.store(true);
    };
    auto stats = run_pipeline(spec_, opts);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    if (round > 0) {
      EXPECT_GT(stats->checkpoints.restored_from, 0u);
    }
    ended = !stop.load();  // the run reached the end of the input by itself
    stops += !ended;
  }
  ASSERT_TRUE(ended);
  EXPECT_GE(stops, 30000 / (kPerRun + 1024 + 64));
  EXPECT_EQ(read_epochs(dir_.file("out.jsonl")), ref_);
}

// A run stopped before it reads anything checkpoints the position it resumed
// at, not the start of the input (file and log inputs).
TEST_F(CheckpointTest, ResumingWithoutReadingKeepsThePosition) {
  ASSERT_EQ(std::system(fmt::format("{0} log create {1} --partitions 3 > /dev/null 2>&1 && {0} log "
                                    "produce {1} --key card_id < {2} > /dev/null 2>&1",
                                    MILLRACE_BINARY, dir_.file("data/in"), dir_.file("tx.jsonl"))
                            .c_str()),
            0);
  for (std::string input : {dir_.file("tx.jsonl"), "log:" + dir_.file("data/in")}) {
    const bool log = input.rfind("log:", 0) == 0;
    RunOptions ref = checkpointed();
    ref.input = input;
    ref.output = dir_.file(log ? "ref-log.jsonl" : "ref-file.jsonl");
    ref.checkpoint_dir.clear();
    ASSERT_TRUE(run_pipeline(spec_, ref).ok());
    std::atomic<bool> stop{false};
    RunOptions opts = checkpointed();
    opts.input = input;
    opts.output = dir_.file(log ? "log-out.jsonl" : "file-out.jsonl");
    opts.checkpoint_dir = dir_.file(log ? "ckpt-log" : "ckpt-file");
    opts.stop = &stop;
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      stop.store(true);
    });
    auto first = run_pipeline(spec_, opts);
    stopper.join();
    ASSERT_TRUE(first.ok()) << first.status().message();
    for (int i = 0; i < 2; ++i) {  // stopped at once: nothing read, a checkpoint taken
      auto idle = run_pipeline(spec_, opts);
      ASSERT_TRUE(idle.ok()) << idle.status().message();
      EXPECT_EQ(idle->records, 0u);
    }
    stop.store(false);
    auto rest = run_pipeline(spec_, opts);
    ASSERT_TRUE(rest.ok()) << rest.status().message();
    EXPECT_EQ(first->records + rest->records, 30000u) << input;
    EXPECT_EQ(read_epochs(opts.output), read_lines(ref.output)) << input;
  }
}

TEST_F(CheckpointTest, DamagedOrForeignCheckpointsAreRefusedOrSkipped) {
  ASSERT_TRUE(run_pipeline(spec_, checkpointed()).ok());
  // Another number of workers: a clear error, nothing written.
  auto other = run_pipeline(spec_, checkpointed(3));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("--workers 2"), std::string::npos)
      << other.status().message();
  // A damaged manifest: skipped with a warning, the one before is used.
  std::vector<uint64_t> ids;
  for (const auto& e : fs::directory_iterator(dir_.file("ckpt")))
    ids.push_back(std::stoull(e.path().filename().string().substr(4)));
  std::sort(ids.begin(), ids.end());
  ASSERT_GE(ids.size(), 2u);
  {
    std::fstream f(fmt::format("{}/chk-{:010d}/manifest", dir_.file("ckpt"), ids.back()),
                   std::ios::in | std::ios::out);
    f.seekp(5);
    f.put('#');
  }
  auto again = run_pipeline(spec_, checkpointed());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->checkpoints.restored_from, ids[ids.size() - 2]);
  ASSERT_FALSE(again->checkpoints.warnings.empty());
  EXPECT_NE(again->checkpoints.warnings[0].find("checksum mismatch"), std::string::npos)
      << again->checkpoints.warnings[0];
  EXPECT_EQ(read_epochs(dir_.file("out.jsonl")), ref_);  // nothing twice
}

// A checkpoint passed over by a recovery (damaged then) is never resumed
// later, even once it reads back whole: that recovery settled the outputs for
// the older checkpoint (aborting what the newer one had prepared), so resuming
// the newer one would lose the records of its epoch.
TEST(CheckpointStoreTest, CheckpointPassedOverByRecoveryIsNeverResumed) {
  TempDir dir;
  auto store = CheckpointStore::Open(dir.file("ckpt"), 2);
  ASSERT_TRUE(store.ok()) << store.status().message();
  CheckpointStore& cs = *store.value();
  auto write = [&](uint64_t id) {
    CheckpointManifest m;
    m.id = id;
    m.spec = "spec";
    m.workers = 1;
    auto part = cs.write_part(id, 0, std::string(64, static_cast<char>('a' + id)));
    ASSERT_TRUE(part.ok()) << part.status().message();
    m.parts.push_back(part.value());
    ASSERT_TRUE(cs.write_manifest(m).ok());
  };
  write(1);
  write(2);
  const std::string part = fmt::format("{}/worker-0.state", cs.chk_dir(2));
  auto flip = [&] {
    std::fstream f(part, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    char c;
    f.get(c);
    f.seekp(40);
    f.put(static_cast<char>(c ^ 0x5a));
  };
  flip();
  std::vector<std::string> warnings;
  auto first = cs.load_latest(&warnings);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(first.value().has_value());
  EXPECT_EQ(first.value()->manifest.id, 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("checksum mismatch"), std::string::npos) << warnings[0];

  flip();  // checkpoint 2 reads back whole again
  warnings.clear();
  auto second = cs.load_latest(&warnings);
  ASSERT_TRUE(second.ok()) << second.status().message();
  ASSERT_TRUE(second.value().has_value());
  EXPECT_EQ(second.value()->manifest.id, 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("passed over by an earlier recovery"), std::string::npos)
      << warnings[0];

  // Ids never repeat, and a rejected checkpoint does not count as one of the
  // `keep` complete ones: the next prune removes it.
  EXPECT_EQ(cs.max_id(), 2u);
  write(3);
  ASSERT_TRUE(cs.prune(3).ok());
  EXPECT_TRUE(fs::exists(cs.chk_dir(1)));
  EXPECT_FALSE(fs::exists(cs.chk_dir(2)));
  EXPECT_TRUE(fs::exists(cs.chk_dir(3)));
  warnings.clear();
  auto third = cs.load_latest(&warnings);
  ASSERT_TRUE(third.ok() && third.value().has_value());
  EXPECT_EQ(third.value()->manifest.id, 3u);
  EXPECT_TRUE(warnings.empty());
}

TEST(CheckpointManifest, RoundTripsAndDetectsDamage) {
  CheckpointManifest m;
  m.id = 42;
  m.created_ms = 1700000000000;
  m.spec = "abc";
  m.workers = 2;
  m.source.reader.next_offsets = {5, 7};
  m.source.reader.cursor = 1;
  m.source.partition_max = {kMinTime, 123};
  m.source.watermark = kMinTime;
  m.parts.push_back({"worker-0.state", 100, 0xdeadbeef});
  OutputCommit c;
  c.uri = "log:x/y";
  c.txn = 99;
  c.end_offsets = {3};
  m.outputs.push_back(c);
  std::string text = encode_manifest(m);
  auto back = decode_manifest(text, "m");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->id, 42u);
  EXPECT_EQ(back->source.partition_max[0], kMinTime);
  EXPECT_EQ(back->outputs[0].txn, 99u);
  EXPECT_EQ(back->parts[0].crc, 0xdeadbeefu);
  text[10] ^= 1;
  EXPECT_FALSE(decode_manifest(text, "m").ok());
  EXPECT_FALSE(decode_manifest(text.substr(0, text.size() / 2), "m").ok());
}

}  // namespace
}  // namespace millrace::testing
