// The model commands end to end: train, predict (with shadow and decisions),
// models list/describe/promote, help texts and user errors.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "millrace/model/csv_table.h"
#include "millrace/model/registry.h"
#include "tests/support/temp_dir.h"

namespace millrace::model {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code;
  std::string out;  // stdout and stderr
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(MILLRACE_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class ModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::path(::millrace::testing::process_temp_dir()) / "millrace_model_cli").string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::mt19937 rng(12);
    std::normal_distribution<float> g(0, 1);
    std::ofstream out(dir_ + "/data.csv");
    out << "id,ts,amount,hour,merchant_category,is_fraud\n";
    for (int i = 0; i < 600; ++i) {
      const float amount = std::fabs(g(rng)) * 100, hour = static_cast<float>(rng() % 24);
      const int fraud = amount / 100 + (hour < 5 ? 1.0f : 0.0f) + 0.5f * g(rng) > 1.2f;
      out << fmt::format("t{},{},{},{},{},{}\n", i, 1000 * i, amount,
                         i % 9 == 0 ? std::string() : fmt::format("{}", hour),
                         i % 2 ? "7995" : "5411", fraud);
    }
  }
  std::string dir_;
};

TEST_F(ModelCli, EveryCommandHasHelpWithAnExample) {
  for (const char* cmd :
       {"predict", "train", "models", "models list", "models describe", "models promote"}) {
    CliRun r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.out.find("Example:"), std::string::npos) << cmd << "\n" << r.out;
  }
}

TEST_F(ModelCli, TrainPredictPromoteAndShadow) {
  const std::string reg = dir_ + "/models";
  const std::string common = fmt::format(
      "train --data {}/data.csv --label is_fraud --registry {} --name fraud --threads 1 "
      "--features amount,hour",
      dir_, reg);
  CliRun t1 = run(common + " --trees 20 --depth 3 --promote");
  ASSERT_EQ(t1.code, 0) << t1.out;
  EXPECT_NE(t1.out.find("480 training, 120 validation"), std::string::npos) << t1.out;
  CliRun t2 = run(common + " --trees 30 --depth 2");
  ASSERT_EQ(t2.code, 0) << t2.out;

  CliRun list = run(fmt::format("models --registry {} list", reg));
  ASSERT_EQ(list.code, 0) << list.out;
  EXPECT_NE(list.out.find("fraud"), std::string::npos);
  CliRun describe = run(fmt::format("models --registry {} describe fraud", reg));
  ASSERT_EQ(describe.code, 0) << describe.out;
  EXPECT_NE(describe.out.find("version: 1 (promoted)"), std::string::npos) << describe.out;
  EXPECT_NE(describe.out.find("features (2): amount, hour"), std::string::npos) << describe.out;

  // Predict with the promoted version and version 2 as shadow, with decisions.
  {
    std::ofstream spec(dir_ + "/spec.yaml");
    spec << "decisions:\n  rules:\n    - name: big\n      when: {field: amount, op: \">\", value: "
            "250}\n      action: decline\n";
  }
  const std::string out = dir_ + "/out.csv";
  CliRun p = run(fmt::format(
      "predict --registry {} --model fraud --shadow fraud@2 --input {}/data.csv --output {} "
      "--label is_fraud --decisions {}/spec.yaml",
      reg, dir_, out, dir_));
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_NE(p.out.find("champion   fraud version 1: n=600 auc="), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("challenger fraud version 2: n=600 auc="), std::string::npos) << p.out;
  auto champion = read_csv(out);
  auto shadow = read_csv(dir_ + "/out.shadow.csv");
  ASSERT_TRUE(champion.ok() && shadow.ok());
  EXPECT_EQ(champion->header, (std::vector<std::string>{"id", "prediction", "action", "review",
                                                        "reason", "model", "model_version"}));
  EXPECT_EQ(shadow->header, (std::vector<std::string>{"id", "prediction"}));
  ASSERT_EQ(champion->rows.size(), 600u);
  ASSERT_EQ(shadow->rows.size(), 600u);
  // The CLI's scores are the library's.
  ModelRegistry registry(reg);
  auto v1 = registry.load("fraud", "1");
  auto data = read_csv(dir_ + "/data.csv");
  ASSERT_TRUE(v1.ok() && data.ok());
  size_t differing = 0;
  for (size_t r = 0; r < 600; ++r) {
    const auto& row = data->rows[r];
    const float x[2] = {std::stof(row[2]), row[3].empty() ? NAN : std::stof(row[3])};
    EXPECT_EQ(champion->rows[r][0], row[0]);
    EXPECT_EQ(std::stod(champion->rows[r][1]), (*v1)->model->score(x)) << "row " << r;
    EXPECT_EQ(champion->rows[r][6], "1");
    if (std::stof(row[2]) > 250) {
      EXPECT_EQ(champion->rows[r][2], "decline") << "row " << r;
    }
    differing += champion->rows[r][1] != shadow->rows[r][1];
  }
  EXPECT_GT(differing, 0u);

  CliRun promote = run(fmt::format("models --registry {} promote fraud 2", reg));
  ASSERT_EQ(promote.code, 0) << promote.out;
  EXPECT_EQ(*registry.promoted_version("fraud"), "2");
  CliRun bad_promote = run(fmt::format("models --registry {} promote fraud 9", reg));
  EXPECT_NE(bad_promote.code, 0);
  EXPECT_NE(bad_promote.out.find("no version \"9\""), std::string::npos) << bad_promote.out;
}

TEST_F(ModelCli, PredictNamesMissingColumns) {
  CliRun t =
      run(fmt::format("train --data {}/data.csv --label is_fraud --out {}/m --trees 5 "
                      "--threads 1 --features amount,hour",
                      dir_, dir_));
  ASSERT_EQ(t.code, 0) << t.out;
  {
    std::ofstream rows(dir_ + "/rows.csv");
    rows << "id,amount\n1,30\n";
  }
  CliRun p = run(fmt::format("predict --model {}/m --input {}/rows.csv --output -", dir_, dir_));
  EXPECT_NE(p.code, 0);
  EXPECT_NE(p.out.find("has no column \"hour\" that model"), std::string::npos) << p.out;
  CliRun missing =
      run(fmt::format("train --data {}/data.csv --label nosuch --out {}/m2", dir_, dir_));
  EXPECT_NE(missing.code, 0);
  EXPECT_NE(missing.out.find("no column \"nosuch\" (--label)"), std::string::npos) << missing.out;
}

}  // namespace
}  // namespace millrace::model
