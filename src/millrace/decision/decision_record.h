// The decision record a pipeline outputs per scored event:
//   {"id", "score", "action", "reason", "review", "step_up", "rule", "segment",
//    "model", "model_version", ...extra fields}
// "step_up" only for challenges; "rule"/"segment" only when one applied.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "millrace/decision/decision_engine.h"

namespace millrace::decision {

nlohmann::json decision_record(const std::string& id, double score, const Decision& d,
                               const std::string& model, const std::string& model_version,
                               const nlohmann::json& extra = nlohmann::json::object());

}  // namespace millrace::decision
