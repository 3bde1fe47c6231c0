#include "millrace/eval/handbook.h"

#include <gtest/gtest.h>

#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "millrace/model/csv_table.h"
#include "millrace/model/metrics.h"
#include "millrace/sim/fraud_simulator.h"
#include "tests/support/temp_dir.h"

namespace millrace::eval {
namespace {

constexpr TimeMs kDay = 86'400'000;

std::string write(const testing::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string error_of(const std::string& path) {
  auto r = read_handbook_csv(path);
  return r.ok() ? "" : r.status().message();
}

TEST(HandbookCsv, ReadsTheColumnsItNeedsAndIgnoresTheRest) {
  testing::TempDir dir;
  const std::string path = write(dir, "t.csv",
                                 "X,TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,"
                                 "TX_FRAUD,TX_FRAUD_SCENARIO\r\n"
                                 "a,0,2018-04-01 00:00:31,596,3156,57.16,0,0\r\n"
                                 "\"b,c\",1,2018-04-01 00:02:10,4961,3412,81.51,1,2\r\n");
  auto rows = read_handbook_csv(path);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].id, "1");
  EXPECT_EQ((*rows)[1].ts, 1'522'540'800'000 + 130'000);
  EXPECT_EQ((*rows)[1].customer, "4961");
  EXPECT_EQ((*rows)[1].terminal, "3412");
  EXPECT_DOUBLE_EQ((*rows)[1].amount, 81.51);
  EXPECT_TRUE((*rows)[1].fraud);
  EXPECT_FALSE((*rows)[0].fraud);
}

TEST(HandbookCsv, ErrorsNameTheFileTheLineAndTheColumn) {
  testing::TempDir dir;
  const std::string header =
      "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n";
  const std::string good = "0,2018-04-01 00:00:31,596,3156,57.16,0\n";
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"", "bad.csv:1: empty file"},
      {"TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n" + good,
       "bad.csv:1: no column TX_FRAUD"},
      {header + good + "1,2018-04-01 00:00:31,596,3156,57.16\n",
       "bad.csv:3: 5 cells; the header has 6"},
      {header + good + good + "2,2018-04-01T00:00,596,3156,1,0\n",
       "bad.csv:4: column TX_DATETIME: expected \"YYYY-MM-DD HH:MM:SS\", got \"2018-04-01T00:00\""},
      {header + "0,2018-13-01 00:00:31,596,3156,57.16,0\n", "bad.csv:2: column TX_DATETIME"},
      {header + "0,2018-04-01 00:00:31,596,3156,12abc,0\n",
       "bad.csv:2: column TX_AMOUNT: expected a number, got \"12abc\""},
      {header + "0,2018-04-01 00:00:31,596,3156,1.5,2\n",
       "bad.csv:2: column TX_FRAUD: expected 0 or 1, got \"2\""},
      {header + "0,2018-04-01 00:00:31,,3156,1.5,0\n", "bad.csv:2: column CUSTOMER_ID: empty"},
  };
  for (const auto& c : cases) {
    const std::string path = write(dir, "bad.csv", c.text);
    const std::string err = error_of(path);
    EXPECT_NE(err.find(c.expected), std::string::npos)
        << "got: " << err << "\nexpected: " << c.expected;
  }
  EXPECT_NE(error_of(dir.file("missing.csv")).find("missing.csv: cannot open"), std::string::npos);
}

// Train 2 days from day 10, 1 day of delay, test 2 days (days 13 and 14).
TEST(HandbookProtocol, SplitsByDaysAndLeavesOutKnownCompromisedCustomers) {
  const TimeMs d10 = 10 * kDay;
  auto tx = [](std::string customer, TimeMs ts, bool fraud) {
    HandbookTransaction t;
    t.id = customer + std::to_string(ts);
    t.customer = std::move(customer);
    t.terminal = "T";
    t.ts = ts;
    t.fraud = fraud;
    return t;
  };
  const std::vector<HandbookTransaction> rows = {
      tx("a", d10 + 5, true),              // 0: training, a known from the start
      tx("b", d10 + kDay + 5, false),      // 1: training
      tx("c", d10 - 1, true),              // 2: before training
      tx("d", d10 + 2 * kDay, true),       // 3: delay day 12: d known from test day 14
      tx("a", d10 + 3 * kDay, false),      // 4: test day 13, a known: out
      tx("d", d10 + 3 * kDay + 1, true),   // 5: test day 13, d not yet known: in
      tx("b", d10 + 3 * kDay + 2, false),  // 6: in
      tx("d", d10 + 4 * kDay, false),      // 7: test day 14, d known: out
      tx("c", d10 + 4 * kDay + 1, false),  // 8: in (c's fraud is before training)
      tx("b", d10 + 5 * kDay, false),      // 9: after the test
  };
  HandbookProtocol p;
  p.train_start = d10;
  p.train_days = 2;
  p.delay_days = 1;
  p.test_days = 2;
  const HandbookSplit s = handbook_split(rows, p);
  EXPECT_EQ(s.train, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(s.test, (std::vector<size_t>{5, 6, 8}));
}

double auc_of_predictions(const std::string& predictions, const std::string& table) {
  auto pred = model::read_csv(predictions);
  auto truth = model::read_csv(table);
  EXPECT_TRUE(pred.ok() && truth.ok());
  std::map<std::string, float> label;
  for (const auto& row : truth->rows) label[row[0]] = std::stof(row.back());
  std::vector<double> scores;
  std::vector<float> labels;
  for (const auto& row : pred->rows) {
    scores.push_back(std::stod(row[1]));
    labels.push_back(label.at(row[0]));
  }
  return model::roc_auc(scores, labels);
}

// A small simulated dataset in the handbook's format, end to end: features
// through the engine equal the handbook's definitions computed by brute
// force, and the model is far better than chance.
TEST(HandbookBenchmark, EndToEndOnASimulatedDataset) {
  testing::TempDir dir;
  sim::FraudSimOptions so;
  so.customers = 1000;
  so.terminals = 2000;
  so.start = 1'529'107'200'000;  // 2018-06-16: 39 days before the training start
  so.days = 61;                  // to the end of the test days
  so.seed = 3;
  ASSERT_TRUE(sim::write_fraud_dataset(so, dir.file("data"), sim::SimFormat::Handbook).ok());

  HandbookOptions o;
  o.transactions = dir.file("data/transactions.csv");
  o.spec = std::string(MILLRACE_SOURCE_DIR) + "/apps/fraud/handbook.yaml";
  o.predictions = dir.file("predictions.csv");
  o.work_dir = dir.file("work");
  o.trees = 60;
  o.workers = 2;
  auto r = run_handbook(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_GT(r->train_rows, 10'000u);
  EXPECT_GT(r->quality.n, 10'000u);
  EXPECT_GT(r->quality.n_fraud, 20u);
  // About 60 test frauds at a 0.5% rate: chance is AUC 0.5 and AP 0.005.
  EXPECT_GT(r->quality.auc, 0.65) << handbook_json(*r);
  EXPECT_GT(r->quality.ap, 20.0 * r->quality.n_fraud / r->quality.n) << handbook_json(*r);
  EXPECT_GT(r->quality.card_precision, 0.01);
  const std::string json = handbook_json(*r);
  EXPECT_EQ(json.rfind(R"({"auc":)", 0), 0u) << json;
  EXPECT_NE(json.find(R"("n_test":)" + std::to_string(r->quality.n)), std::string::npos);

  // The predictions file lets anyone recompute the metrics.
  EXPECT_NEAR(auc_of_predictions(o.predictions, dir.file("work/test.csv")), r->quality.auc, 1e-9);

  // Features of training rows against the handbook's definitions.
  auto rows = read_handbook_csv(o.transactions);
  ASSERT_TRUE(rows.ok());
  std::map<std::string, const HandbookTransaction*> by_id;
  std::map<std::string, std::vector<const HandbookTransaction*>> by_customer, by_terminal;
  for (const auto& tx : *rows) {
    by_id[tx.id] = &tx;
    by_customer[tx.customer].push_back(&tx);
    by_terminal[tx.terminal].push_back(&tx);
  }
  auto train = model::read_csv(dir.file("work/train.csv"));
  ASSERT_TRUE(train.ok());
  size_t checked = 0;
  for (size_t r = 0; r < train->rows.size(); r += 97) {
    const auto& row = train->rows[r];
    const HandbookTransaction& tx = *by_id.at(row[0]);
    auto cell = [&](const std::string& name) { return std::stod(row[train->column(name)]); };
    EXPECT_NEAR(cell("tx_amount"), tx.amount, 1e-4);
    const std::time_t secs = tx.ts / 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    EXPECT_EQ(cell("tx_during_weekend"), tm.tm_wday == 0 || tm.tm_wday == 6 ? 1 : 0);
    EXPECT_EQ(cell("tx_during_night"), tm.tm_hour <= 6 ? 1 : 0);
    for (int w : {1, 7, 30}) {
      double n = 0, sum = 0;
      for (const auto* o : by_customer[tx.customer])
        if (o->ts > tx.ts - w * kDay && o->ts <= tx.ts && o <= &tx) {
          n += 1;
          sum += o->amount;
        }
      EXPECT_EQ(cell(fmt::format("customer_id_nb_tx_{}day_window", w)), n);
      EXPECT_NEAR(cell(fmt::format("customer_id_avg_amount_{}day_window", w)), sum / n, 1e-3);
      double nt = 0, nf = 0;
      for (const auto* o : by_terminal[tx.terminal])
        if (o->ts > tx.ts - (7 + w) * kDay && o->ts <= tx.ts - 7 * kDay) {
          nt += 1;
          nf += o->fraud;
        }
      EXPECT_EQ(cell(fmt::format("terminal_id_nb_tx_{}day_window", w)), nt);
      EXPECT_NEAR(cell(fmt::format("terminal_id_risk_{}day_window", w)), nt > 0 ? nf / nt : 0,
                  1e-6);
    }
    ++checked;
  }
  EXPECT_GT(checked, 100u);
}

TEST(HandbookBenchmark, ABadSpecOrAnEmptyPeriodIsAnErrorNamingIt) {
  testing::TempDir dir;
  const std::string csv = write(dir, "t.csv",
                                "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,"
                                "TX_FRAUD\n0,2018-04-01 00:00:31,596,3156,57.16,0\n");
  HandbookOptions o;
  o.transactions = csv;
  o.spec = write(dir, "spec.yaml",
                 "source:\n  time: ts\n  schema: {ts: int64, customer_id: string}\nfeatures: []\n");
  auto r = run_handbook(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.yaml: the schema has no field 'kind'"),
            std::string::npos)
      << r.status().message();
  o.spec = std::string(MILLRACE_SOURCE_DIR) + "/apps/fraud/handbook.yaml";
  r = run_handbook(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no transaction in the training period"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace millrace::eval
