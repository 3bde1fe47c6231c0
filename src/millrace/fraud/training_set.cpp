#include "millrace/fraud/training_set.h"

#include <atomic>
#include <fstream>

#include <fmt/format.h>

#include "millrace/core/json_writer.h"
#include "millrace/stream/pipeline.h"

namespace millrace::fraud {

RunOptions one_worker_run(const std::string& data_dir) {
  RunOptions run;
  run.source_inputs = {{"transactions", data_dir + "/transactions.jsonl"},
                       {"labels", data_dir + "/labels.jsonl"}};
  run.workers = 1;
  run.write_events = false;
  run.output = "";
  return run;
}

ModelInputs model_inputs(const PipelineSpec& spec) {
  ModelInputs m;
  for (size_t f = 0; f < spec.features.size(); ++f) {
    const std::string& name = spec.features[f].name;
    if (name.size() >= 3 && name.compare(name.size() - 3, 3, "_ts") == 0) continue;
    m.features.push_back(static_cast<int>(f));
    m.names.push_back(name);
  }
  return m;
}

Result<TrainingSet> write_training_set(const PipelineSpec& spec, const std::string& data_dir,
                                       TimeMs from, TimeMs to, int id_field,
                                       const ModelInputs& inputs, const LabelOf& label,
                                       const std::string& csv_path) {
  std::string buf = "ts";
  for (const auto& n : inputs.names) buf += "," + n;
  buf += ",is_fraud\n";
  std::ofstream out(csv_path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::Error(csv_path + ": cannot open for writing");
  TrainingSet set;
  std::atomic<bool> stop{false};
  Status missing = Status::Ok();
  RunOptions run = one_worker_run(data_dir);
  run.stop = &stop;
  run.on_vector = [&](const Event& e, const FeatureValue* v) {
    if (e.time >= to) {
      stop.store(true);
      return;
    }
    if (e.time < from) return;
    const std::string_view id = e.str(id_field);
    const int fraud = label(id);
    if (fraud < 0) {
      if (missing.ok()) missing = Status::Error(fmt::format("transaction {} has no label", id));
      return;
    }
    append_json_int(buf, e.time);
    for (int f : inputs.features) {
      buf += ',';
      if (!v[f].is_null()) append_json_double(buf, v[f].as_double());
    }
    buf += fraud ? ",1\n" : ",0\n";
    ++set.rows;
    set.frauds += fraud;
    if (buf.size() > (1 << 20)) {
      out << buf;
      buf.clear();
    }
  };
  MR_TRY_ASSIGN(stats, run_pipeline(spec, run));
  if (!missing.ok()) return missing;
  set.dead_letters = stats.dead_letters;
  out << buf;
  if (!out.flush()) return Status::Error(csv_path + ": write failed");
  return set;
}

}  // namespace millrace::fraud
