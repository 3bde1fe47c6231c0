// Every window data-file case in tests/data/cases (the given conformance cases
// and the generated ones, see tests/reference/make_window_cases.py) run
// through WindowOperator directly.
#include <algorithm>
#include <filesystem>

#include <gtest/gtest.h>

#include "window_case_runner.h"

namespace millrace::testing {
namespace {

std::vector<std::string> window_cases() {
  std::vector<std::string> dirs;
  for (const auto& e :
       std::filesystem::directory_iterator(MILLRACE_SOURCE_DIR "/tests/data/cases")) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && name.rfind("windows-", 0) == 0) dirs.push_back(e.path().string());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

TEST(WindowCases, FindsTheGivenAndGeneratedCases) {
  auto dirs = window_cases();
  EXPECT_GE(dirs.size(), 3u);
}

class WindowCaseTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WindowCaseTest, MatchesExpected) {
  const std::string dir = GetParam();
  auto spec = load_spec(dir + "/spec.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto run = run_window_case(dir);
  ASSERT_TRUE(run.ok()) << run.status().message();
  auto expected = read_lines(dir + "/expected.jsonl");
  ASSERT_FALSE(expected.empty()) << dir;
  EXPECT_TRUE(same_window_results(spec.value(), expected, run->results)) << dir;
  if (std::filesystem::exists(dir + "/expected-late.jsonl")) {
    EXPECT_TRUE(same_late_records(read_lines(dir + "/expected-late.jsonl"), run->late)) << dir;
  }
}

INSTANTIATE_TEST_SUITE_P(WindowCases, WindowCaseTest, ::testing::ValuesIn(window_cases()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = std::filesystem::path(info.param).filename().string();
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace millrace::testing
