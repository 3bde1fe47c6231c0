// The SIGKILL crash test: `millrace run` over a log topic (200,000 events, or
// 50,000 in a sanitizer build,
// per-event features of every aggregate kind, tumbling, hopping and session
// windows, late events on side outputs, 2 workers, checkpoints every 100 ms)
// is killed with SIGKILL at random moments and restarted each time. The
// committed output (read as `millrace log consume --committed` reads it) must
// then equal a failure-free run's as a multiset and, per key, in the same
// order; and nothing committed may ever be withdrawn by a later recovery.
// The seed is printed; MILLRACE_CRASH_SEED=N repeats a run.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "millrace/core/hash.h"
#include "millrace/log/reader.h"
#include "millrace/log/topic.h"
#include "tests/support/sanitizer.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace millrace::testing {
namespace {

namespace fs = std::filesystem;

// 50,000 under the sanitizers (a run is several times slower there); the kill
// times scale with the failure-free run's time either way.
constexpr int kEvents = kSanitized ? 50'000 : 200'000;

const std::string kSpec = std::string(MILLRACE_SOURCE_DIR) + "/tests/data/crash_spec.yaml";

int shell(const std::string& cmd) {
  return std::system(cmd.c_str());
}

// Starts `millrace args...` with stdout and stderr appended to log_path.
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<std::string> all = {MILLRACE_BINARY};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, MILLRACE_BINARY, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits for pid; its exit code, or 128 + signal.
int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// Every committed record of a topic, partition by partition (read-committed).
std::vector<std::string> read_committed(const std::string& topic) {
  std::vector<std::string> out;
  if (!fs::exists(topic + "/topic.meta")) return out;
  auto info = log::DescribeTopic(topic);
  EXPECT_TRUE(info.ok()) << info.status().message();
  if (!info.ok()) return out;
  for (uint32_t p = 0; p < info->partitions.size(); ++p) {
    auto r = log::PartitionReader::Open(topic, p, 0, log::Isolation::kReadCommitted);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return out;
    std::string_view rec;
    uint64_t off;
    for (;;) {
      auto got = r.value()->Next(&rec, &off);
      EXPECT_TRUE(got.ok()) << got.status().message();
      if (!got.ok() || !got.value()) break;
      out.emplace_back(rec);
    }
  }
  return out;
}

// The keys a record belongs to: a window result to its window and key; an
// enriched or late event to its card and its merchant. (simdjson: the outputs
// have some 350,000 records, read twice per test.)
std::vector<std::string> keys_of(const std::string& line) {
  static simdjson::ondemand::parser parser;
  std::vector<std::string> keys;
  simdjson::padded_string padded(line);
  simdjson::ondemand::document doc;
  simdjson::ondemand::object obj, event;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(obj) != simdjson::SUCCESS) {
    ADD_FAILURE() << "not a JSON object: " << line;
    return keys;
  }
  if (obj.find_field_unordered("event").get_object().get(event) == simdjson::SUCCESS)
    obj = event;  // a late record wraps the event
  // The string field `name`, or "" if there is none.
  auto field = [&](const char* name) {
    simdjson::ondemand::value v;
    if (obj.find_field_unordered(name).get(v) != simdjson::SUCCESS) return std::string();
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS || s.empty())
      ADD_FAILURE() << name << " is not a non-empty string: " << line;
    return std::string(s);
  };
  std::string window = field("window");
  std::string prefix = window.empty() ? "event/" : window + "/";
  std::string card = field("card_id");
  if (!card.empty()) keys.push_back(prefix + "card=" + card);
  std::string merchant = field("merchant_id");
  if (!merchant.empty()) keys.push_back(prefix + "merchant=" + merchant);
  return keys;
}

void expect_exactly_once(const std::vector<std::string>& want, const std::vector<std::string>& got,
                         const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what << ": record count";
  // The same multiset: every record as many times in both (hashed, not
  // sorted: the records share long prefixes).
  absl::flat_hash_map<std::string_view, int64_t> count;
  count.reserve(want.size());
  for (const auto& l : want) ++count[l];
  for (const auto& l : got) --count[l];
  for (const auto& [record, n] : count)
    ASSERT_EQ(n, 0) << what << ": not the same multiset of records: " << record << " is committed "
                    << (n > 0 ? "fewer" : "more") << " times than in the failure-free run";
  absl::flat_hash_map<std::string, std::vector<const std::string*>> ka, kb;
  for (const auto& l : want)
    for (auto& k : keys_of(l)) ka[k].push_back(&l);
  for (const auto& l : got)
    for (auto& k : keys_of(l)) kb[k].push_back(&l);
  ASSERT_EQ(ka.size(), kb.size()) << what;
  for (const auto& [k, va] : ka) {
    const auto& vb = kb[k];
    ASSERT_EQ(va.size(), vb.size()) << what << ": key " << k;
    for (size_t i = 0; i < va.size(); ++i)
      ASSERT_EQ(*va[i], *vb[i]) << what << ": key " << k << ", record " << i << " out of order";
  }
}

// The input topic and the failure-free run, which every crash test compares
// against. ctest runs each test in a process of its own, and building them
// (generating and producing the topic, one whole run: 10-15 s on a loaded
// 2-core machine) would be done by each, so they are built once and kept
// beside the millrace binary, in test-cache/crash-<key>, where <key> hashes
// everything they depend on: the millrace binary's bytes, the spec's, the
// event count and the generator's arguments. The first test process that needs
// them builds them under a lock (the others wait for it) into a temporary
// directory renamed into place when complete; a rebuilt binary or a changed
// spec gets a new key, and older keys are removed. The runs only read the topic
// (no consumer group), so any number of crash tests can share it. The kill
// times scale with the failure-free run's time as measured when it was built.
struct Reference {
  std::string input;  // the input topic, as a log: URI
  double ms = 0;      // the failure-free run's wall time when it was built
  std::vector<std::string> out, late;
};

uint64_t hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(in.good() || in.eof()) << "cannot read " << path;
  return hash_string(bytes);
}

// Generates the topic and runs the pipeline once without failure, in `d`.
void build_reference(const std::string& d) {
  // kEvents card transactions, 2% up to 3 s out of order, in 4 partitions by card.
  ASSERT_EQ(shell(fmt::format("{0} generate transactions --events {1} --cards 3000 --merchants 300 "
                              "--gap-ms 5 --seed 11 > {2}/tx.jsonl && {0} log create {2}/data/in "
                              "--partitions 4 > /dev/null 2>&1 && {0} log produce {2}/data/in "
                              "--key card_id < {2}/tx.jsonl > /dev/null 2>&1",
                              MILLRACE_BINARY, kEvents, d)),
            0);
  fs::remove(d + "/tx.jsonl");
  auto started = std::chrono::steady_clock::now();
  pid_t pid =
      spawn({"run", "--spec", kSpec, "--input", "log:" + d + "/data/in", "--output",
             d + "/ref.jsonl", "--late-output", d + "/ref_late.jsonl", "--workers", "2", "-q"},
            d + "/ref.log");
  ASSERT_EQ(wait_for(pid), 0) << "the failure-free run failed:\n"
                              << [&] {
                                   std::string log;
                                   for (const auto& l : read_lines(d + "/ref.log")) log += l + "\n";
                                   return log;
                                 }();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  std::ofstream(d + "/ref_ms") << ms << "\n";
}

// The shared reference (built if missing); on failure, a test failure and an
// empty `input`.
Reference load_reference() {
  Reference ref;
  const fs::path cache = fs::path(MILLRACE_BINARY).parent_path() / "test-cache";
  const std::string params =
      fmt::format("events={} cards=3000 merchants=300 gap=5 seed=11 p=4", kEvents);
  const std::string key = fmt::format(
      "crash-{:016x}", hash_string(params, hash_file(MILLRACE_BINARY) ^ hash_file(kSpec)));
  const fs::path dir = cache / key;
  std::error_code ec;
  fs::create_directories(cache, ec);
  int lock = ::open((cache / "crash.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  EXPECT_GE(lock, 0) << "cannot open " << (cache / "crash.lock");
  if (lock < 0) return ref;
  while (::flock(lock, LOCK_EX) < 0 && errno == EINTR) {
  }
  if (!fs::exists(dir)) {
    for (const auto& e : fs::directory_iterator(cache, ec))
      if (e.path().filename().string().rfind("crash-", 0) == 0) fs::remove_all(e.path(), ec);
    const fs::path tmp = cache / fmt::format("build-{}", ::getpid());
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp);
    auto started = std::chrono::steady_clock::now();
    build_reference(tmp.string());
    if (!::testing::Test::HasFatalFailure()) {
      fs::rename(tmp, dir);
      std::printf("[ crash    ] input and failure-free run built in %.1f s: %s\n",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
                  dir.c_str());
    } else {
      fs::remove_all(tmp, ec);
    }
  } else {
    std::printf("[ crash    ] input and failure-free run reused: %s\n", dir.c_str());
  }
  ::close(lock);  // releases the lock
  if (!fs::exists(dir)) return ref;
  std::ifstream(dir / "ref_ms") >> ref.ms;
  ref.out = read_lines(dir / "ref.jsonl");
  ref.late = read_lines(dir / "ref_late.jsonl");
  EXPECT_GT(ref.ms, 0);
  EXPECT_GT(ref.out.size(), static_cast<size_t>(kEvents));  // events plus window results
  ref.input = "log:" + (dir / "data/in").string();
  return ref;
}

class CrashTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ref_ = new Reference(load_reference());
  }
  static void TearDownTestSuite() {
    delete ref_;
    delete dir_;
  }

  void SetUp() override { ASSERT_FALSE(ref_->input.empty()) << "no input and failure-free run"; }

  // Runs the pipeline, killing it `kills` times at random moments; after a
  // kill, `corrupt` flips a byte in the newest complete checkpoint. Then
  // lets a last run finish and compares the committed output.
  void crash_and_compare(const std::string& name, int kills, bool corrupt,
                         const std::vector<std::string>& extra_args = {}) {
    uint64_t seed = 20261126;
    if (const char* s = std::getenv("MILLRACE_CRASH_SEED")) seed = std::stoull(s);
    std::printf("[ crash    ] %s: seed %llu (MILLRACE_CRASH_SEED=%llu repeats it)\n", name.c_str(),
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
    std::mt19937_64 rng(seed);
    const std::string d = dir_->path() + "/" + name;
    fs::create_directories(d);
    std::vector<std::string> args = {"run",
                                     "--spec",
                                     kSpec,
                                     "--input",
                                     ref_->input,
                                     "--output",
                                     "log:" + d + "/out",
                                     "--late-output",
                                     "log:" + d + "/late",
                                     "--workers",
                                     "2",
                                     "--checkpoint-dir",
                                     d + "/ckpt",
                                     "--checkpoint-interval",
                                     "100ms",
                                     "--checkpoint-keep",
                                     "3"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<std::string> committed_before;
    std::set<fs::path> damaged;
    int killed = 0, finished_early = 0, corrupted = 0;
    // With `corrupt`, a run killed before it completed a checkpoint leaves
    // nothing to damage; such runs lengthen the next delay, and up to twice
    // as many more runs are killed until a checkpoint has been damaged.
    int longer_ms = 0;
    for (int i = 0; i < kills || (corrupt && corrupted == 0 && i < kills * 3); ++i) {
      pid_t pid = spawn(args, d + "/run.log");
      ASSERT_GT(pid, 0);
      // Kill after 3-15% of a failure-free run's time (at least 60 ms), so
      // that runs are killed part-way whatever the machine's speed.
      double frac = std::uniform_real_distribution<double>(0.03, 0.15)(rng);
      auto delay =
          std::chrono::milliseconds(std::max(60, static_cast<int>(frac * ref_->ms)) + longer_ms);
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
      int code = wait_for(pid);
      if (code == 0) {
        ++finished_early;
      } else {
        ASSERT_EQ(code, 128 + SIGKILL)
            << "run " << i << " failed with code " << code << "; its log:\n"
            << [&] {
                 std::string log;
                 for (const auto& l : read_lines(d + "/run.log")) log += l + "\n";
                 return log;
               }();
        ++killed;
      }
      // Nothing committed is ever withdrawn: what was committed before is a
      // prefix of what is committed now (one output partition).
      auto now = read_committed(d + "/out");
      ASSERT_GE(now.size(), committed_before.size());
      ASSERT_TRUE(std::equal(committed_before.begin(), committed_before.end(), now.begin()))
          << "a committed record was withdrawn after run " << i;
      committed_before = std::move(now);
      if (corrupt && code != 0) {
        int n = corrupt_newest(d + "/ckpt", &damaged);
        corrupted += n;
        if (n == 0) longer_ms += 100;
      }
    }
    pid_t pid = spawn(args, d + "/run.log");
    ASSERT_EQ(wait_for(pid), 0) << "see " << d << "/run.log";
    std::printf(
        "[ crash    ] %s: %d kills, %d runs ended before their kill, %d checkpoints "
        "corrupted\n",
        name.c_str(), killed, finished_early, corrupted);
    EXPECT_GE(killed, kills * 8 / 10);
    auto out = read_committed(d + "/out");
    ASSERT_TRUE(std::equal(committed_before.begin(), committed_before.end(), out.begin()));
    expect_exactly_once(ref_->out, out, name + " output");
    expect_exactly_once(ref_->late, read_committed(d + "/late"), name + " late output");
    if (corrupt) {
      auto log = read_lines(d + "/run.log");
      // A run reports the damage when its recovery reads the checkpoint; a
      // run killed after that recovery marked the checkpoint rejected but
      // before it printed its warnings leaves the report to the next run,
      // which then says the checkpoint was passed over by an earlier recovery.
      bool skipped = std::any_of(log.begin(), log.end(), [](const std::string& l) {
        return l.find("checksum mismatch") != std::string::npos ||
               l.find("passed over by an earlier recovery") != std::string::npos;
      });
      EXPECT_GE(corrupted, 1) << "no run lived long enough to complete a checkpoint";
      EXPECT_TRUE(skipped) << "no run reported the damaged checkpoint";
      if (!skipped)
        for (const auto& l : log) std::printf("%s\n", l.c_str());
    }
  }

  // Flips a byte in a part of the newest checkpoint that has a manifest; 1 if
  // it did. A checkpoint is damaged once: a run killed before it completed a
  // checkpoint of its own leaves the same one newest, and flipping the byte
  // again would repair it.
  static int corrupt_newest(const std::string& ckpt, std::set<fs::path>* damaged) {
    // A run killed before it made its checkpoint directory leaves none.
    std::vector<fs::path> dirs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(ckpt, ec))
      if (fs::exists(e.path() / "manifest")) dirs.push_back(e.path());
    if (dirs.empty()) return 0;
    std::sort(dirs.begin(), dirs.end());
    if (!damaged->insert(dirs.back()).second) return 0;
    fs::path part = dirs.back() / "worker-1.state";
    std::fstream f(part, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    auto size = static_cast<std::streamoff>(f.tellg());
    if (size < 40) return 0;
    f.seekg(size / 2);
    char c;
    f.get(c);
    f.seekp(size / 2);
    f.put(static_cast<char>(c ^ 0x5a));
    return 1;
  }

  static TempDir* dir_;
  static Reference* ref_;
};

TempDir* CrashTest::dir_ = nullptr;
Reference* CrashTest::ref_ = nullptr;

TEST_F(CrashTest, SigkillAndRestartGiveExactlyOnceOutput) {
  crash_and_compare("memory", 12, false);
}

// RocksDB backend, with a cache of 500 keys per feature key and worker (of
// 3,000 cards and 300 merchants): most state moves to RocksDB and back.
TEST_F(CrashTest, RocksDbStateSigkillAndRestartGiveExactlyOnceOutput) {
  crash_and_compare("rocksdb", 10, false, {"--state", "rocksdb", "--state-cache-keys", "500"});
}

TEST_F(CrashTest, DamagedNewestCheckpointFallsBackWithoutDuplicates) {
  crash_and_compare("corrupt", 6, true);
}

}  // namespace
}  // namespace millrace::testing
