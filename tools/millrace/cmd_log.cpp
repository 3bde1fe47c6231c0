// `millrace log ...`: create, produce to, consume from and describe topics of
// the embedded log (src/millrace/log, docs/log.md).
#include <signal.h>
#include <unistd.h>

#include <simdjson.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "millrace/core/hash.h"
#include "millrace/log/group_offsets.h"
#include "millrace/log/reader.h"
#include "millrace/log/topic.h"

namespace millrace::cli {
namespace {

using log::Topic;
using log::TopicOptions;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

volatile sig_atomic_t g_stop = 0;
void OnStopSignal(int) {
  g_stop = 1;
}

void CheckGroup(const std::string& group) {
  if (!group.empty() && !log::IsValidGroupName(group)) {
    throw CommandError(
        "invalid group name '" + group + "'; use 1-100 letters, digits, '.', '_' or '-'", 2);
  }
}

std::unique_ptr<Topic> OpenForWriting(const std::string& path) {
  auto topic = Topic::Open(path);
  if (!topic.ok()) {
    throw CommandError(topic.status().message() +
                       "; create the topic first with: millrace log create " + path +
                       " --partitions N");
  }
  for (const auto& w : (*topic)->warnings())
    std::fprintf(stderr, "millrace: repaired: %s\n", w.c_str());
  return std::move(topic.value());
}

// ---- create ----

void AddCreate(CLI::App* log) {
  struct Args {
    std::string path;
    uint32_t partitions = 1;
    uint64_t segment_bytes = 64 << 20;
    uint64_t retention_bytes = 0;
    int64_t retention_ms = 0;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = log->add_subcommand("create", "Create a topic: a directory of N partitions");
  cmd->add_option("topic", args->path, "Topic directory, DIR/TOPIC (DIR is created if missing)")
      ->required();
  cmd->add_option("--partitions,-p", args->partitions, "Number of partitions")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--segment-bytes", args->segment_bytes,
                  "Close a segment file once it would grow past this many bytes")
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 40));
  cmd->add_option("--retention-bytes", args->retention_bytes,
                  "Per partition, delete the oldest segments beyond this size (0 = keep all)");
  cmd->add_option("--retention-ms", args->retention_ms,
                  "Delete segments whose newest record is older than this (0 = keep all)")
      ->check(CLI::NonNegativeNumber);
  cmd->footer(
      "Example:\n  millrace log create data/tx --partitions 4\n"
      "  millrace log create data/clicks --partitions 8 --retention-ms 86400000\n");
  cmd->callback([args] {
    TopicOptions opts;
    opts.partitions = args->partitions;
    opts.segment_bytes = args->segment_bytes;
    opts.retention_bytes = args->retention_bytes;
    opts.retention_ms = args->retention_ms;
    auto topic = Topic::Create(args->path, opts);
    if (!topic.ok()) throw CommandError(topic.status().message());
    std::fprintf(stderr, "millrace: created %s with %u partition%s\n", args->path.c_str(),
                 opts.partitions, opts.partitions == 1 ? "" : "s");
  });
}

// ---- produce ----

// Partition of a JSONL line: by the hash of the key field's value (a string's
// characters, or the JSON text of any other value), round robin when there
// is no key option or the line lacks the field. Returns false with *why for a
// line that is not a JSON object.
class Partitioner {
 public:
  Partitioner(std::string key, uint32_t partitions) : key_(std::move(key)), n_(partitions) {}

  bool Route(std::string_view line, uint32_t* partition, std::string* why) {
    simdjson::dom::element doc;
    auto err = parser_.parse(line.data(), line.size(), /*realloc_if_needed=*/true).get(doc);
    if (err) {
      *why = std::string("not JSON: ") + simdjson::error_message(err);
      return false;
    }
    if (!doc.is_object()) {
      *why = "not a JSON object";
      return false;
    }
    simdjson::dom::element field;
    if (!key_.empty() && !doc.at_key(key_).get(field) && !field.is_null()) {
      std::string_view s;
      if (field.get_string().get(s)) {
        text_ = simdjson::minify(field);
        s = text_;
      }
      *partition = partition_of(hash_string(s), n_);
      return true;
    }
    *partition = next_++ % n_;
    return true;
  }

 private:
  std::string key_;
  uint32_t n_;
  uint64_t next_ = 0;
  simdjson::dom::parser parser_;
  std::string text_;
};

void AddProduce(CLI::App* log) {
  struct Args {
    std::string path;
    std::string key;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = log->add_subcommand(
      "produce", "Append JSONL from stdin, one record per line, partitioned by a key field");
  cmd->add_option("topic", args->path, "Topic directory, DIR/TOPIC")->required();
  cmd->add_option("--key,-k", args->key,
                  "Top-level field whose value picks the partition (hash); round robin if "
                  "omitted or missing in a line");
  cmd->footer(
      "Lines that are not JSON objects are skipped and reported; the exit code is then 1.\n\n"
      "Example:\n  millrace log produce data/tx --key card_id < transactions.jsonl\n"
      "  echo '{\"card_id\":\"c1\",\"amount\":12.5}' | millrace log produce data/tx --key "
      "card_id\n");
  cmd->callback([args] {
    std::unique_ptr<Topic> topic = OpenForWriting(args->path);
    const uint32_t n = topic->partitions();
    Partitioner partitioner(args->key, n);
    std::vector<std::vector<std::string_view>> batches(n);
    std::string buf;
    std::string carry;  // an incomplete last line, kept for the next read
    uint64_t line_no = 0;
    uint64_t produced = 0;
    uint64_t skipped = 0;
    std::vector<char> chunk(1 << 20);
    bool eof = false;
    while (!eof) {
      ssize_t got = ::read(STDIN_FILENO, chunk.data(), chunk.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw CommandError(std::string("cannot read stdin: ") + std::strerror(errno));
      eof = got == 0;
      buf.swap(carry);
      carry.clear();
      buf.append(chunk.data(), static_cast<size_t>(got));
      size_t start = 0;
      while (start < buf.size()) {
        size_t nl = buf.find('\n', start);
        if (nl == std::string::npos && !eof) {
          carry.assign(buf, start, std::string::npos);
          break;
        }
        size_t end = nl == std::string::npos ? buf.size() : nl;
        std::string_view line(buf.data() + start, end - start);
        start = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
        uint32_t p = 0;
        std::string why;
        if (!partitioner.Route(line, &p, &why)) {
          if (++skipped <= 10) {
            std::fprintf(stderr, "millrace: stdin line %llu skipped: %s\n",
                         static_cast<unsigned long long>(line_no), why.c_str());
          }
          continue;
        }
        batches[p].push_back(line);
      }
      const int64_t now = NowMs();
      for (uint32_t p = 0; p < n; ++p) {
        if (batches[p].empty()) continue;
        auto off = topic->Append(p, batches[p], now);
        if (!off.ok()) throw CommandError(off.status().message());
        produced += batches[p].size();
        batches[p].clear();
      }
    }
    if (Status s = topic->Sync(); !s.ok()) throw CommandError(s.message());
    if (Status s = topic->ApplyRetention(NowMs()); !s.ok()) throw CommandError(s.message());
    std::fprintf(stderr, "millrace: produced %llu records to %s\n",
                 static_cast<unsigned long long>(produced), args->path.c_str());
    if (skipped > 0) {
      std::fprintf(stderr, "millrace: skipped %llu invalid lines\n",
                   static_cast<unsigned long long>(skipped));
      set_exit_code(1);
    }
  });
}

// ---- consume ----

void AddConsume(CLI::App* log) {
  struct Args {
    std::string path;
    std::string group;
    bool from_beginning = false;
    bool follow = false;
    bool committed = false;
    uint64_t max_records = 0;
    std::vector<uint32_t> partitions;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = log->add_subcommand("consume", "Print a topic's records as JSONL on stdout");
  cmd->add_option("topic", args->path, "Topic directory, DIR/TOPIC")->required();
  cmd->add_option("--group,-g", args->group,
                  "Consumer group: resume from its committed offsets and commit what was printed");
  cmd->add_flag("--from-beginning", args->from_beginning,
                "Where the group has no committed offset (or without --group), start at the "
                "oldest record instead of the end");
  cmd->add_flag("--follow,-f", args->follow,
                "Keep waiting for new records (stop with Ctrl-C); without it, exit at the end");
  cmd->add_flag("--committed", args->committed,
                "Print records of transactions only once committed, never aborted ones");
  cmd->add_option("--max-records,-n", args->max_records, "Exit after printing this many records");
  cmd->add_option("--partition", args->partitions, "Only these partitions (repeatable)");
  cmd->footer(
      "Records of one partition come out in offset order; partitions are interleaved.\n"
      "With --group, offsets are committed after the records are written to stdout, so a\n"
      "consumer that is killed prints some records again on restart (at least once).\n\n"
      "Example:\n  millrace log consume data/tx --from-beginning\n"
      "  millrace log consume data/tx --group scorer --from-beginning --follow\n"
      "  millrace log consume data/scores --committed --from-beginning\n");
  cmd->callback([args] {
    CheckGroup(args->group);
    auto options = log::ReadTopicMeta(args->path);
    if (!options.ok()) throw CommandError(options.status().message());
    std::vector<uint32_t> parts = args->partitions;
    std::sort(parts.begin(), parts.end());
    parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
    if (parts.empty()) {
      for (uint32_t p = 0; p < options->partitions; ++p) parts.push_back(p);
    }
    std::map<uint32_t, uint64_t> committed;
    if (!args->group.empty()) {
      auto c = log::ReadGroupOffsets(args->path, args->group);
      if (!c.ok()) throw CommandError(c.status().message());
      committed = *c;
    }
    std::vector<std::unique_ptr<log::PartitionReader>> readers;
    for (uint32_t p : parts) {
      if (p >= options->partitions) {
        throw CommandError("partition " + std::to_string(p) + " out of range; " + args->path +
                               " has " + std::to_string(options->partitions),
                           2);
      }
      uint64_t from = 0;
      if (auto it = committed.find(p); it != committed.end()) {
        from = it->second;
      } else if (!args->from_beginning) {
        auto pi = log::DescribePartition(args->path, p);
        if (!pi.ok()) throw CommandError(pi.status().message());
        from = pi->end_offset;
      }
      auto reader = log::PartitionReader::Open(
          args->path, p, from,
          args->committed ? log::Isolation::kReadCommitted : log::Isolation::kReadUncommitted);
      if (!reader.ok()) throw CommandError(reader.status().message());
      readers.push_back(std::move(reader.value()));
    }

    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    auto commit = [&] {
      if (std::fflush(stdout) != 0) throw CommandError("cannot write to stdout");
      if (args->group.empty()) return;
      std::map<uint32_t, uint64_t> next;
      for (size_t i = 0; i < parts.size(); ++i) next[parts[i]] = readers[i]->position();
      if (Status s = log::CommitGroupOffsets(args->path, args->group, next); !s.ok()) {
        throw CommandError(s.message());
      }
    };

    static char out_buf[1 << 20];
    std::setvbuf(stdout, out_buf, _IOFBF, sizeof(out_buf));
    uint64_t printed = 0;
    auto last_commit = std::chrono::steady_clock::now();
    auto idle_sleep = std::chrono::milliseconds(1);
    bool done = false;
    while (!done && !g_stop) {
      bool any = false;
      for (auto& reader : readers) {
        for (int k = 0; k < 4096; ++k) {
          std::string_view rec;
          uint64_t off = 0;
          auto more = reader->Next(&rec, &off);
          if (!more.ok()) {
            commit();
            throw CommandError(more.status().message());
          }
          if (!*more) break;
          any = true;
          std::fwrite(rec.data(), 1, rec.size(), stdout);
          std::fputc('\n', stdout);
          if (args->max_records && ++printed >= args->max_records) {
            done = true;
            break;
          }
        }
        if (done) break;
      }
      if (any) {
        idle_sleep = std::chrono::milliseconds(1);
        continue;
      }
      if (!args->follow) break;
      auto now = std::chrono::steady_clock::now();
      if (now - last_commit > std::chrono::seconds(1)) {
        commit();
        last_commit = now;
      } else {
        std::fflush(stdout);
      }
      std::this_thread::sleep_for(idle_sleep);
      idle_sleep = std::min(idle_sleep * 2, std::chrono::milliseconds(50));
    }
    commit();
  });
}

// ---- describe ----

void AddDescribe(CLI::App* log) {
  struct Args {
    std::string path;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = log->add_subcommand(
      "describe", "Show a topic's partitions (offsets, bytes) and its consumer groups' lag");
  cmd->add_option("topic", args->path, "Topic directory, DIR/TOPIC")->required();
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  cmd->footer(
      "Lag is the number of records a group has not consumed yet; a partition where the\n"
      "group has no committed offset counts all its records.\n\n"
      "Example:\n  millrace log describe data/tx\n");
  cmd->callback([args] {
    auto info = log::DescribeTopic(args->path);
    if (!info.ok()) throw CommandError(info.status().message());
    const auto& o = info->options;
    auto lag_of = [&](const std::map<uint32_t, uint64_t>& offsets, uint32_t p) -> uint64_t {
      const auto& pi = info->partitions[p];
      auto it = offsets.find(p);
      uint64_t from = it == offsets.end() ? pi.start_offset : std::max(it->second, pi.start_offset);
      return pi.end_offset > from ? pi.end_offset - from : 0;
    };
    if (args->json) {
      nlohmann::json j;
      j["topic"] = args->path;
      j["partitions"] = o.partitions;
      j["segment_bytes"] = o.segment_bytes;
      j["retention_bytes"] = o.retention_bytes;
      j["retention_ms"] = o.retention_ms;
      j["partition"] = nlohmann::json::array();
      for (uint32_t p = 0; p < o.partitions; ++p) {
        const auto& pi = info->partitions[p];
        nlohmann::json jp = {{"partition", p},
                             {"start_offset", pi.start_offset},
                             {"end_offset", pi.end_offset},
                             {"bytes", pi.bytes},
                             {"segments", pi.segments}};
        if (!pi.problem.empty()) jp["problem"] = pi.problem;
        j["partition"].push_back(jp);
      }
      j["groups"] = nlohmann::json::object();
      for (const auto& [g, offsets] : info->groups) {
        nlohmann::json jg = {{"lag", 0}, {"offsets", nlohmann::json::object()}};
        uint64_t lag = 0;
        for (uint32_t p = 0; p < o.partitions; ++p) lag += lag_of(offsets, p);
        jg["lag"] = lag;
        for (const auto& [p, off] : offsets) jg["offsets"][std::to_string(p)] = off;
        j["groups"][g] = jg;
      }
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    auto keep = [](uint64_t v) { return v == 0 ? std::string("keep all") : std::to_string(v); };
    std::printf(
        "topic %s: %u partitions, segment_bytes %llu, retention_bytes %s, retention_ms %s\n",
        args->path.c_str(), o.partitions, static_cast<unsigned long long>(o.segment_bytes),
        keep(o.retention_bytes).c_str(), keep(static_cast<uint64_t>(o.retention_ms)).c_str());
    std::printf("%9s %12s %12s %12s %14s %8s\n", "partition", "start", "end", "records", "bytes",
                "segments");
    uint64_t records = 0;
    uint64_t bytes = 0;
    for (uint32_t p = 0; p < o.partitions; ++p) {
      const auto& pi = info->partitions[p];
      std::printf("%9u %12llu %12llu %12llu %14llu %8zu\n", p,
                  static_cast<unsigned long long>(pi.start_offset),
                  static_cast<unsigned long long>(pi.end_offset),
                  static_cast<unsigned long long>(pi.end_offset - pi.start_offset),
                  static_cast<unsigned long long>(pi.bytes), pi.segments);
      if (!pi.problem.empty()) std::printf("          problem: %s\n", pi.problem.c_str());
      records += pi.end_offset - pi.start_offset;
      bytes += pi.bytes;
    }
    std::printf("%9s %12s %12s %12llu %14llu\n", "total", "", "",
                static_cast<unsigned long long>(records), static_cast<unsigned long long>(bytes));
    if (info->groups.empty()) std::printf("no consumer groups\n");
    for (const auto& [g, offsets] : info->groups) {
      uint64_t lag = 0;
      for (uint32_t p = 0; p < o.partitions; ++p) lag += lag_of(offsets, p);
      std::printf("group %s: lag %llu\n", g.c_str(), static_cast<unsigned long long>(lag));
      for (uint32_t p = 0; p < o.partitions; ++p) {
        auto it = offsets.find(p);
        std::string committed = it == offsets.end() ? "-" : std::to_string(it->second);
        std::printf("  partition %u: committed %s, lag %llu\n", p, committed.c_str(),
                    static_cast<unsigned long long>(lag_of(offsets, p)));
      }
    }
  });
}

CommandRegistrar reg("log", [](CLI::App& app) {
  auto* log = app.add_subcommand(
      "log", "Embedded partitioned log: create topics, produce and consume JSONL, describe");
  log->require_subcommand(1);
  log->footer(
      "Example:\n  millrace log create data/tx --partitions 4\n"
      "  millrace log produce data/tx --key card_id < tx.jsonl\n"
      "  millrace log consume data/tx --group audit --from-beginning\n"
      "  millrace log describe data/tx\n");
  AddCreate(log);
  AddProduce(log);
  AddConsume(log);
  AddDescribe(log);
});

}  // namespace
}  // namespace millrace::cli
