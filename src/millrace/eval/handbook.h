// The fraud-detection handbook's benchmark (Le Borgne et al., chapters 3-4):
// its transaction table, its baseline features, its train/test protocol.
//
// The table: a CSV file with a header holding at least TRANSACTION_ID,
// TX_DATETIME ("YYYY-MM-DD HH:MM:SS", UTC), CUSTOMER_ID, TERMINAL_ID,
// TX_AMOUNT and TX_FRAUD (0 or 1); other columns are ignored. Errors name the
// file, the line and the column.
//
// The protocol (defaults): train on the 7 days from 2018-07-25, wait the 7
// days of the label delay, test on the 7 days after. A test day's
// transactions leave out the customers known to be compromised by then: the
// frauds of the training week and those of the delay period's days up to
// the day before the test day minus the delay. Card precision@100 then also
// leaves out the cards found in an earlier test day's top 100.
//
// The features (apps/fraud/handbook.yaml, computed by the streaming engine):
// amount; weekend and night (hour < 7) flags of the UTC time; per customer the
// count and the average amount of its transactions over 1, 7 and 30 days; per
// terminal the count of transactions and the share of frauds among them over
// 1, 7 and 30 days ending 7 days before the transaction, from label events
// that arrive 7 days after their transaction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/core/time.h"
#include "millrace/eval/fraud_quality.h"

namespace millrace::eval {

struct HandbookTransaction {
  std::string id;  // TRANSACTION_ID as written
  TimeMs ts = 0;
  std::string customer, terminal;
  double amount = 0;
  bool fraud = false;
};

// Reads the table; rows are kept in file order.
Result<std::vector<HandbookTransaction>> read_handbook_csv(const std::string& path);

struct HandbookProtocol {
  TimeMs train_start = 1'532'476'800'000;  // 2018-07-25T00:00:00Z
  int train_days = 7;
  int delay_days = 7;
  int test_days = 7;
};

struct HandbookSplit {
  std::vector<size_t> train, test;  // row indexes, in time order
};

// The protocol's training and test sets of `rows` (in any order).
HandbookSplit handbook_split(const std::vector<HandbookTransaction>& rows,
                             const HandbookProtocol& protocol);

struct HandbookOptions {
  std::string transactions;  // the CSV table
  std::string spec = "apps/fraud/handbook.yaml";
  std::string predictions;  // "": none; else TRANSACTION_ID,prediction per test row
  std::string work_dir;     // "": a temporary directory, removed at the end
  HandbookProtocol protocol;
  int trees = 500;
  int depth = 2;
  double eta = 0.05;
  int workers = 0;  // the engine's workers (0: the spec's, else one per hardware thread)
};

struct HandbookResult {
  Quality quality;  // on the test set, card precision@100
  size_t train_rows = 0, train_frauds = 0;
  size_t rows_read = 0, events_streamed = 0;
  double seconds_read = 0, seconds_features = 0, seconds_train = 0, seconds_total = 0;
  std::vector<std::string> features;
};

// Reads the table, computes the features through the spec with the
// streaming engine, trains gradient-boosted trees (libxgboost) on the
// training set, scores the test set and measures it. `progress` is told each
// stage's name as it starts.
Result<HandbookResult> run_handbook(const HandbookOptions& options,
                                    const std::function<void(const std::string&)>& progress = {});

// The one-line summary: {"auc":..,"ap":..,"cp100":..,"n_test":..,"n_test_fraud":..}.
std::string handbook_json(const HandbookResult& result);

}  // namespace millrace::eval
