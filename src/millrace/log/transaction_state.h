// DIR/TOPIC/txn.state: the durable record of an open or committing
// transaction, read by recovery (format in format.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "millrace/core/status.h"

namespace millrace::log {

struct TransactionState {
  uint64_t id = 0;
  bool committing = false;           // false: open (or prepared)
  bool prepared = false;             // durable, awaiting its coordinator's decision
  std::vector<uint32_t> partitions;  // when prepared or committing: the partitions written to
};

// Replaces txn.state atomically.
Status WriteTransactionState(const std::string& topic_path, const TransactionState& state);
// The state, or nullopt when no transaction is open. A damaged file is an error.
Result<std::optional<TransactionState>> ReadTransactionState(const std::string& topic_path);
// Removes txn.state durably (unlink, then fsync of the topic directory).
Status RemoveTransactionState(const std::string& topic_path);

}  // namespace millrace::log
