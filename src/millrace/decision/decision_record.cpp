#include "millrace/decision/decision_record.h"

#include <cmath>

namespace millrace::decision {

nlohmann::json decision_record(const std::string& id, double score, const Decision& d,
                               const std::string& model, const std::string& model_version,
                               const nlohmann::json& extra) {
  nlohmann::json r;
  r["id"] = id;
  r["score"] = std::isnan(score) ? nlohmann::json() : nlohmann::json(score);
  r["action"] = action_name(d.action);
  r["reason"] = d.reason;
  r["review"] = d.review;
  if (!d.step_up.empty()) r["step_up"] = d.step_up;
  if (!d.rule.empty()) r["rule"] = d.rule;
  if (!d.segment.empty()) r["segment"] = d.segment;
  r["model"] = model;
  r["model_version"] = model_version;
  if (extra.is_object())
    for (const auto& [k, v] : extra.items())
      if (!r.contains(k)) r[k] = v;
  return r;
}

}  // namespace millrace::decision
