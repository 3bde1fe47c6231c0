#include "millrace/stream/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "millrace/core/bytes.h"
#include "millrace/core/crc32c.h"
#include "millrace/core/hash.h"
#include "millrace/log/layout.h"

namespace millrace {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kPartMagic[] = "MRSTATE1";
constexpr char kManifest[] = "manifest";
// Written into a checkpoint that a recovery passed over (damaged or
// incomplete then): that recovery settled the outputs for an older
// checkpoint (aborting what the newer one had prepared), so resuming from the
// newer one later, should it read back whole (a transient read error, a
// repaired file), would lose that epoch's records.
constexpr char kRejected[] = "rejected";

std::string part_name(int worker) {
  return fmt::format("worker-{}.state", worker);
}

Status write_file_durably(const std::string& path, std::initializer_list<std::string_view> pieces) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return log::ErrnoError("cannot create", path);
  for (std::string_view s : pieces) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::write(fd, s.data() + done, s.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status st = log::ErrnoError("cannot write", path);
        ::close(fd);
        return st;
      }
      done += static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) {
    Status st = log::ErrnoError("cannot fsync", path);
    ::close(fd);
    return st;
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

std::string spec_fingerprint(const std::string& spec_text) {
  return fmt::format("{:016x}", hash_string(spec_text));
}

std::string encode_manifest(const CheckpointManifest& m) {
  json j;
  j["version"] = 1;
  j["id"] = m.id;
  j["created_ms"] = m.created_ms;
  j["spec"] = m.spec;
  j["workers"] = m.workers;
  j["state"] = m.state;
  const SourceCheckpoint& s = m.source;
  j["source"] = {{"next_offsets", s.reader.next_offsets},
                 {"cursor", s.reader.cursor},
                 {"run", s.reader.run},
                 {"finished", s.reader.finished},
                 {"partition_max", s.partition_max},
                 {"watermark", s.watermark},
                 {"last_broadcast", s.last_broadcast},
                 {"since_broadcast", s.since_broadcast},
                 {"tables_read_to_end", s.tables_read_to_end}};
  j["parts"] = json::array();
  for (const auto& p : m.parts)
    j["parts"].push_back({{"file", p.file}, {"bytes", p.bytes}, {"crc", p.crc}});
  j["outputs"] = json::array();
  for (const auto& o : m.outputs)
    j["outputs"].push_back({{"uri", o.uri},
                            {"checkpoint", o.checkpoint},
                            {"txn", o.txn},
                            {"end_offsets", o.end_offsets},
                            {"has_file", o.has_file},
                            {"skip", o.skip},
                            {"records", o.records}});
  std::string text = j.dump(1);
  text += fmt::format("\ncrc32c {:08x}\n", crc32c(text.data(), text.size()));
  return text;
}

Result<CheckpointManifest> decode_manifest(const std::string& text, const std::string& path) {
  size_t at = text.rfind("\ncrc32c ");
  if (at == std::string::npos) return Status::Error(path + ": no crc32c line (incomplete?)");
  uint32_t want = 0;
  auto r = std::from_chars(text.data() + at + 8, text.data() + text.size(), want, 16);
  if (r.ec != std::errc() || crc32c(text.data(), at) != want)
    return Status::Error(path + ": checksum mismatch");
  try {
    json j = json::parse(text.substr(0, at));
    if (j.at("version").get<int>() != 1) return Status::Error(path + ": unknown version");
    CheckpointManifest m;
    m.id = j.at("id").get<uint64_t>();
    m.created_ms = j.at("created_ms").get<int64_t>();
    m.spec = j.at("spec").get<std::string>();
    m.workers = j.at("workers").get<int>();
    m.state = j.at("state").get<std::string>();
    const json& s = j.at("source");
    m.source.reader.next_offsets = s.at("next_offsets").get<std::vector<uint64_t>>();
    m.source.reader.cursor = s.at("cursor").get<uint32_t>();
    m.source.reader.run = s.at("run").get<uint32_t>();
    m.source.reader.finished = s.value("finished", std::vector<uint8_t>());
    m.source.partition_max = s.at("partition_max").get<std::vector<TimeMs>>();
    m.source.watermark = s.at("watermark").get<TimeMs>();
    m.source.last_broadcast = s.at("last_broadcast").get<TimeMs>();
    m.source.since_broadcast = s.at("since_broadcast").get<uint64_t>();
    m.source.tables_read_to_end = s.value("tables_read_to_end", false);
    for (const json& p : j.at("parts"))
      m.parts.push_back({p.at("file").get<std::string>(), p.at("bytes").get<uint64_t>(),
                         p.at("crc").get<uint32_t>()});
    for (const json& o : j.at("outputs")) {
      OutputCommit c;
      c.uri = o.at("uri").get<std::string>();
      c.checkpoint = o.at("checkpoint").get<uint64_t>();
      c.txn = o.at("txn").get<uint64_t>();
      c.end_offsets = o.at("end_offsets").get<std::vector<uint64_t>>();
      c.has_file = o.at("has_file").get<bool>();
      c.skip = o.value("skip", std::vector<uint64_t>());
      c.records = o.at("records").get<uint64_t>();
      m.outputs.push_back(std::move(c));
    }
    return m;
  } catch (const std::exception& e) {
    return Status::Error(path + ": malformed manifest: " + e.what());
  }
}

Result<std::unique_ptr<CheckpointStore>> CheckpointStore::Open(const std::string& dir, int keep) {
  if (keep < 1) return Status::Error("checkpoint retention must be at least 1");
  if (auto s = log::MakeDirs(dir); !s.ok()) return s;
  return std::unique_ptr<CheckpointStore>(new CheckpointStore(dir, keep));
}

std::string CheckpointStore::chk_dir(uint64_t id) const {
  return fmt::format("{}/chk-{:010d}", dir_, id);
}

std::vector<uint64_t> CheckpointStore::list_ids() const {
  std::vector<uint64_t> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() != 14 || name.compare(0, 4, "chk-") != 0) continue;
    if (name.find_first_not_of("0123456789", 4) != std::string::npos) continue;
    ids.push_back(std::stoull(name.substr(4)));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

uint64_t CheckpointStore::max_id() const {
  auto ids = list_ids();
  return ids.empty() ? 0 : ids.back();
}

Result<RestoredCheckpoint> CheckpointStore::load(uint64_t id) const {
  const std::string dir = chk_dir(id);
  const std::string mpath = dir + "/" + kManifest;
  std::error_code ec;
  if (fs::exists(dir + "/" + kRejected, ec))
    return Status::Error(dir + ": passed over by an earlier recovery (see its file '" + kRejected +
                         "')");
  if (!fs::exists(mpath, ec)) return Status::Error(dir + ": no manifest (incomplete checkpoint)");
  auto text = log::ReadWholeFile(mpath);
  if (!text.ok()) return text.status();
  auto m = decode_manifest(text.value(), mpath);
  if (!m.ok()) return m.status();
  if (m->id != id)
    return Status::Error(mpath + ": manifest of checkpoint " + std::to_string(m->id));
  RestoredCheckpoint r;
  for (size_t w = 0; w < m->parts.size(); ++w) {
    const auto& part = m->parts[w];
    const std::string path = dir + "/" + part.file;
    auto data = log::ReadWholeFile(path);
    if (!data.ok()) return data.status();
    const std::string& d = data.value();
    if (d.size() != part.bytes || d.size() < 32)
      return Status::Error(
          fmt::format("{}: {} bytes, the manifest says {}", path, d.size(), part.bytes));
    uint32_t crc;
    std::memcpy(&crc, d.data() + d.size() - 4, 4);
    if (crc != part.crc || crc32c(d.data(), d.size() - 4) != crc)
      return Status::Error(path + ": checksum mismatch (damaged)");
    ByteReader in(std::string_view(d).substr(0, d.size() - 4));
    char magic[8];
    in.raw(magic, 8);
    const uint64_t pid = in.u64();
    const uint32_t worker = in.u32();
    std::string_view body = in.str64();
    if (in.failed() || std::memcmp(magic, kPartMagic, 8) != 0 || pid != id || worker != w)
      return Status::Error(path + ": not this checkpoint's part " + std::to_string(w));
    r.parts.emplace_back(body);
  }
  if (m->state == "rocksdb")
    for (size_t w = 0; w < m->parts.size(); ++w)
      if (!fs::exists(fmt::format("{}/rocksdb-{}/CURRENT", dir, w), ec))
        return Status::Error(fmt::format("{}/rocksdb-{}: missing or incomplete", dir, w));
  r.manifest = std::move(m.value());
  return r;
}

Result<std::optional<RestoredCheckpoint>> CheckpointStore::load_latest(
    std::vector<std::string>* warnings) {
  auto ids = list_ids();
  size_t i = ids.size();
  std::optional<RestoredCheckpoint> found;
  while (i-- > 0) {
    auto r = load(ids[i]);
    if (r.ok()) {
      found = std::move(r.value());
      break;
    }
    warnings->push_back(fmt::format("checkpoint {} skipped: {}", ids[i], r.status().message()));
  }
  // Every checkpoint newer than the one resumed is rejected for good, durably,
  // before the caller settles the outputs for the one resumed.
  const uint64_t resumed = found ? found->manifest.id : 0;
  std::error_code ec;
  for (uint64_t id : ids) {
    const std::string dir = chk_dir(id);
    if (id <= resumed || fs::exists(dir + "/" + kRejected, ec)) continue;
    const std::string why =
        found ? fmt::format("recovery resumed checkpoint {} instead of this one\n", resumed)
              : std::string("recovery found no usable checkpoint and started afresh\n");
    if (auto s = log::WriteFileAtomically(dir, kRejected, why); !s.ok()) return s;
  }
  return found;
}

Result<CheckpointManifest::Part> CheckpointStore::write_part(uint64_t id, int worker,
                                                             const std::string& state) {
  const std::string dir = chk_dir(id);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return log::ErrnoError("cannot create", dir);
  std::string head;
  ByteWriter w(&head);
  w.raw(kPartMagic, 8);
  w.u64(id);
  w.u32(static_cast<uint32_t>(worker));
  w.u64(state.size());
  uint32_t crc = crc32c(head.data(), head.size());
  crc = crc32c(state.data(), state.size(), crc);
  std::string tail(4, '\0');
  std::memcpy(tail.data(), &crc, 4);
  const std::string path = dir + "/" + part_name(worker);
  if (auto s = write_file_durably(path, {head, state, tail}); !s.ok()) return s;
  return CheckpointManifest::Part{part_name(worker), head.size() + state.size() + 4, crc};
}

Status CheckpointStore::write_manifest(const CheckpointManifest& m) {
  const std::string dir = chk_dir(m.id);
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return log::ErrnoError("cannot create", dir);
  if (auto s = log::SyncDir(dir); !s.ok()) return s;  // the parts' names
  if (auto s = log::WriteFileAtomically(dir, kManifest, encode_manifest(m)); !s.ok()) return s;
  return log::SyncDir(dir_);
}

Status CheckpointStore::prune(uint64_t newest) {
  auto ids = list_ids();
  int complete = 0;
  std::error_code ec;
  for (size_t i = ids.size(); i-- > 0;) {
    const uint64_t id = ids[i];
    if (id > newest) continue;
    const bool usable = fs::exists(chk_dir(id) + "/" + kManifest, ec) &&
                        !fs::exists(chk_dir(id) + "/" + kRejected, ec);
    if (usable && complete < keep_) {
      ++complete;
      continue;
    }
    if (id == newest) continue;
    fs::remove_all(chk_dir(id), ec);
    if (ec) return Status::Error(chk_dir(id) + ": cannot remove: " + ec.message());
  }
  return Status::Ok();
}

CheckpointPartWriter::CheckpointPartWriter(CheckpointStore* store, int workers)
    : store_(store), workers_(workers), thread_([this] { run(); }) {}

CheckpointPartWriter::~CheckpointPartWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CheckpointPartWriter::submit(uint64_t id, int worker, std::string state) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(Job{id, worker, std::move(state)});
  }
  cv_.notify_all();
}

void CheckpointPartWriter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    auto part = store_->write_part(job.id, job.worker, job.state);
    job.state = std::string();
    lock.lock();
    Done& d = done_[job.id];
    d.parts.resize(workers_);
    if (part.ok()) {
      d.parts[job.worker] = part.value();
    } else if (d.error.ok()) {
      d.error = part.status();
    }
    ++d.count;
    cv_.notify_all();
  }
}

Result<std::vector<CheckpointManifest::Part>> CheckpointPartWriter::wait(uint64_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_[id].count == workers_; });
  Done d = std::move(done_[id]);
  done_.erase(id);
  if (!d.error.ok()) return d.error;
  std::vector<CheckpointManifest::Part> parts;
  for (auto& p : d.parts) parts.push_back(*p);
  return parts;
}

}  // namespace millrace
