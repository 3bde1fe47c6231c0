#include "millrace/log/transaction_state.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <sstream>

#include "millrace/core/crc32c.h"
#include "millrace/log/layout.h"

namespace millrace::log {

namespace {
constexpr char kFile[] = "txn.state";
std::string StatePath(const std::string& topic_path) {
  return topic_path + "/" + kFile;
}
}  // namespace

Status WriteTransactionState(const std::string& topic_path, const TransactionState& state) {
  std::string body = "millrace-txn 1\nid " + std::to_string(state.id) + "\nstate " +
                     (state.committing ? "commit"
                      : state.prepared ? "prepared"
                                       : "open") +
                     "\npartitions";
  for (uint32_t p : state.partitions) body += " " + std::to_string(p);
  body += "\n";
  char crc[32];
  std::snprintf(crc, sizeof(crc), "crc %08x\n", crc32c(body.data(), body.size()));
  return WriteFileAtomically(topic_path, kFile, body + crc);
}

Result<std::optional<TransactionState>> ReadTransactionState(const std::string& topic_path) {
  const std::string path = StatePath(topic_path);
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) {
    return std::optional<TransactionState>();
  }
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  auto bad = [&](const std::string& why) -> Status {
    return Status::Error("damaged transaction state " + path + ": " + why +
                         "; if no transaction can be open, delete the file");
  };
  size_t crc_at = text->rfind("crc ");
  if (crc_at == std::string::npos) return bad("no crc line");
  uint32_t want = 0;
  auto r = std::from_chars(text->data() + crc_at + 4, text->data() + text->size(), want, 16);
  if (r.ec != std::errc() || crc32c(text->data(), crc_at) != want) return bad("crc mismatch");
  std::istringstream in(text->substr(0, crc_at));
  std::string line;
  TransactionState state;
  bool version = false;
  bool id = false;
  bool kind = false;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "millrace-txn") {
      version = line == "millrace-txn 1";
    } else if (key == "id") {
      id = static_cast<bool>(words >> state.id);
    } else if (key == "state") {
      std::string v;
      words >> v;
      kind = v == "open" || v == "commit" || v == "prepared";
      state.committing = v == "commit";
      state.prepared = v == "prepared";
    } else if (key == "partitions") {
      uint32_t p;
      while (words >> p) state.partitions.push_back(p);
    }
  }
  if (!version || !id || !kind) return bad("missing version, id or state");
  return std::optional<TransactionState>(state);
}

Status RemoveTransactionState(const std::string& topic_path) {
  const std::string path = StatePath(topic_path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("cannot remove", path);
  return SyncDir(topic_path);
}

}  // namespace millrace::log
