// XGBoost JSON loader: broken and unsupported documents are rejected with the
// file, the path inside it and what was expected; format variants of XGBoost
// 2.x (bracketed base_score, boolean default_left) are read.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "millrace/model/xgboost_json.h"
#include "xgb_test_util.h"

namespace millrace::model {
namespace {

std::string small_model_json() {
  testing::Dataset d = testing::make_dataset(300, 4, 8, 0.1, 2);
  testing::TrainSpec spec;
  spec.rounds = 3;
  spec.depth = 3;
  XgbBooster b = testing::train_booster(d, spec);
  return *b.save_json();
}

TEST(XgboostLoader, BrokenDocumentsNameFilePathAndExpectation) {
  const std::string good = small_model_json();
  ASSERT_TRUE(parse_xgboost_json(good, "m.json").ok());
  nlohmann::json base = nlohmann::json::parse(good);
  struct Case {
    std::string what;
    std::function<void(nlohmann::json&)> edit;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"no learner", [](auto& j) { j.erase("learner"); }, "m.json: learner: missing"},
      {"no trees", [](auto& j) { j["learner"]["gradient_booster"]["model"].erase("trees"); },
       "learner.gradient_booster.model.trees: missing"},
      {"short array",
       [](auto& j) {
         j["learner"]["gradient_booster"]["model"]["trees"][1]["left_children"].erase(0);
       },
       "learner.gradient_booster.model.trees[1].left_children: expected an array of"},
      {"child out of range",
       [](auto& j) {
         j["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 999;
       },
       "trees[0].left_children[0]: expected child indices in [0,"},
      {"feature out of range",
       [](auto& j) {
         j["learner"]["gradient_booster"]["model"]["trees"][2]["split_indices"][0] = 40;
       },
       "trees[2].split_indices[0]: expected a feature index in [0, 4)"},
      {"string threshold",
       [](auto& j) {
         j["learner"]["gradient_booster"]["model"]["trees"][0]["split_conditions"][0] = "x";
       },
       "trees[0].split_conditions[0]: expected a number"},
      {"objective", [](auto& j) { j["learner"]["objective"]["name"] = "rank:pairwise"; },
       "learner.objective.name: unsupported objective \"rank:pairwise\""},
      {"booster", [](auto& j) { j["learner"]["gradient_booster"]["name"] = "gblinear"; },
       "learner.gradient_booster.name: expected \"gbtree\""},
      {"base score", [](auto& j) { j["learner"]["learner_model_param"]["base_score"] = "abc"; },
       "learner.learner_model_param.base_score: expected a number"},
      {"tree info", [](auto& j) { j["learner"]["gradient_booster"]["model"]["tree_info"][0] = 3; },
       "tree_info[0]: expected a class in [0, 1)"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    nlohmann::json j = base;
    c.edit(j);
    auto e = parse_xgboost_json(j.dump(), "m.json");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.status().message().find(c.message_part), std::string::npos) << e.status().message();
  }
  auto truncated = parse_xgboost_json(good.substr(0, good.size() / 2), "m.json");
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("m.json"), std::string::npos);
  EXPECT_FALSE(load_xgboost_json("/nonexistent/model.json").ok());
}

TEST(XgboostLoader, CycleAndSharedChildrenAreRejected) {
  nlohmann::json j = nlohmann::json::parse(small_model_json());
  auto& tree = j["learner"]["gradient_booster"]["model"]["trees"][0];
  tree["right_children"][0] = tree["left_children"][0];  // both children the same node
  auto e = parse_xgboost_json(j.dump(), "m.json");
  ASSERT_TRUE(e.ok()) << e.status().message();
  auto m = GbdtModel::compile(std::move(e.value()));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("reached twice"), std::string::npos) << m.status().message();
}

TEST(XgboostLoader, NewerFormatVariantsGiveTheSameModel) {
  const std::string good = small_model_json();
  nlohmann::json j = nlohmann::json::parse(good);
  j["learner"]["learner_model_param"]["base_score"] = "[5E-1]";
  for (auto& tree : j["learner"]["gradient_booster"]["model"]["trees"]) {
    nlohmann::json flags = nlohmann::json::array();
    for (auto& v : tree["default_left"]) flags.push_back(v.get<int>() != 0);
    tree["default_left"] = flags;
  }
  auto a = parse_xgboost_json(good, "a");
  auto b = parse_xgboost_json(j.dump(), "b");
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().message();
  auto ma = GbdtModel::compile(std::move(a.value()));
  auto mb = GbdtModel::compile(std::move(b.value()));
  testing::Dataset d = testing::make_dataset(200, 4, 9, 0.2, 2);
  for (size_t r = 0; r < 200; ++r) EXPECT_EQ((*ma)->score(&d.x[r * 4]), (*mb)->score(&d.x[r * 4]));
}

}  // namespace
}  // namespace millrace::model
