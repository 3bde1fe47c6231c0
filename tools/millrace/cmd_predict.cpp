// `millrace predict`: batch scoring of a CSV file with a model file or a
// registry model, optionally with a shadow (challenger) model beside it.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "command.h"
#include "millrace/decision/decision_engine.h"
#include "millrace/model/csv_table.h"
#include "millrace/model/model_handle.h"
#include "millrace/model/registry.h"
#include "millrace/model/score_quality.h"

namespace millrace::cli {
namespace {

namespace fs = std::filesystem;
using model::ModelSnapshot;

// A model file, a directory holding model.json/model.txt, or (with a registry)
// NAME or NAME@VERSION.
ModelSnapshot resolve_model(const std::string& ref, const std::string& registry_root) {
  Result<ModelSnapshot> m = Status::Error("unset");
  if (!registry_root.empty()) {
    const size_t at = ref.find('@');
    model::ModelRegistry reg(registry_root);
    m = reg.load(ref.substr(0, at), at == std::string::npos ? "" : ref.substr(at + 1));
  } else if (fs::is_directory(ref)) {
    const std::string file = fs::exists(fs::path(ref) / "model.txt")
                                 ? (fs::path(ref) / "model.txt").string()
                                 : (fs::path(ref) / "model.json").string();
    m = model::load_model_snapshot(file);
  } else {
    m = model::load_model_snapshot(ref);
  }
  if (!m.ok()) throw CommandError(m.status().message());
  return *m;
}

// Rows of the table in the model's feature order; names every missing column.
std::vector<float> model_rows(const model::CsvTable& t, const model::LoadedModel& m) {
  std::vector<std::string> missing;
  std::vector<std::vector<float>> cols;
  for (const auto& f : m.features) {
    const int c = t.column(f);
    if (c < 0) {
      missing.push_back("\"" + f + "\"");
      continue;
    }
    auto v = t.numeric_column(c);
    if (!v.ok()) throw CommandError(v.status().message());
    cols.push_back(std::move(v.value()));
  }
  if (!missing.empty())
    throw CommandError(fmt::format("{} has no column {} that model {} needs; add {} to the input",
                                   t.path, fmt::join(missing, ", "), m.name,
                                   missing.size() > 1 ? "them" : "it"));
  const size_t n = t.rows.size(), f = cols.size();
  std::vector<float> x(n * f);
  for (size_t c = 0; c < f; ++c)
    for (size_t r = 0; r < n; ++r) x[r * f + c] = cols[c][r];
  return x;
}

std::vector<double> score_all(const model::CsvTable& t, const model::LoadedModel& m) {
  const std::vector<float> x = model_rows(t, m);
  std::vector<double> out(t.rows.size() * m.model->num_outputs());
  m.model->predict_batch(x.data(), t.rows.size(), m.features.size(), out.data());
  return out;
}

// Decisions per row, fields read from the row's columns by name.
std::vector<decision::Decision> decide_all(const model::CsvTable& t,
                                           const decision::DecisionEngine& engine,
                                           const std::vector<double>& scores) {
  std::vector<int> cols;
  for (const auto& f : engine.fields()) cols.push_back(t.column(f));
  std::vector<decision::Decision> out;
  std::vector<decision::FieldValue> values(cols.size());
  std::vector<double> numbers(cols.size());
  for (size_t r = 0; r < t.rows.size(); ++r) {
    for (size_t i = 0; i < cols.size(); ++i) {
      if (cols[i] < 0 || t.rows[r][cols[i]].empty()) {
        values[i] = std::monostate{};
        continue;
      }
      const std::string& cell = t.rows[r][cols[i]];
      char* end = nullptr;
      numbers[i] = std::strtod(cell.c_str(), &end);
      if (end == cell.c_str() + cell.size()) {
        values[i] = numbers[i];
      } else {
        values[i] = std::string_view(cell);
      }
    }
    out.push_back(engine.decide(scores[r], values));
  }
  return out;
}

void write_output(const std::string& path, const model::CsvTable& t, const model::LoadedModel& m,
                  const std::vector<double>& scores,
                  const std::vector<decision::Decision>* decisions = nullptr) {
  FILE* f = path == "-" ? stdout : std::fopen(path.c_str(), "w");
  if (!f) throw CommandError(fmt::format("{}: cannot open for writing", path));
  const int id = t.column("id");
  const size_t k = m.model->num_outputs();
  std::string line;
  if (id >= 0) line += "id,";
  if (k == 1) {
    line += "prediction";
  } else {
    for (size_t j = 0; j < k; ++j) line += fmt::format("{}prediction_{}", j ? "," : "", j);
  }
  if (decisions) line += ",action,review,reason,model,model_version";
  line += "\n";
  std::fputs(line.c_str(), f);
  for (size_t r = 0; r < t.rows.size(); ++r) {
    line.clear();
    if (id >= 0) line += model::csv_escape(t.rows[r][id]) + ",";
    for (size_t j = 0; j < k; ++j) line += fmt::format("{}{}", j ? "," : "", scores[r * k + j]);
    if (decisions) {
      const decision::Decision& d = (*decisions)[r];
      line += fmt::format(",{},{},{},{},{}", decision::action_name(d.action), d.review,
                          model::csv_escape(d.reason), model::csv_escape(m.name),
                          model::csv_escape(m.version));
    }
    line += "\n";
    std::fputs(line.c_str(), f);
  }
  const bool failed = std::ferror(f) != 0;
  if (f != stdout) std::fclose(f);
  if (failed) throw CommandError(fmt::format("{}: write failed", path));
}

void register_predict(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("predict",
                         "Score the rows of a CSV file with a model (XGBoost JSON, LightGBM text, "
                         "logistic regression JSON, or a registry model)");
  auto model_ref = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("-");
  auto registry = std::make_shared<std::string>();
  auto shadow = std::make_shared<std::string>();
  auto shadow_output = std::make_shared<std::string>();
  auto label = std::make_shared<std::string>();
  auto decisions = std::make_shared<std::string>();
  cmd->add_option("--model", *model_ref,
                  "Model file, a directory with model.json/model.txt, or with --registry a "
                  "registry name NAME[@VERSION]")
      ->required();
  cmd->add_option("--input", *input,
                  "CSV with a header; columns are matched to the model's features by name, an "
                  "empty cell is a missing value")
      ->required();
  cmd->add_option("--output", *output,
                  "Output CSV: the input's id column (if any) and prediction ('-': stdout)");
  cmd->add_option("--registry", *registry, "Model registry root (then --model names a model)");
  cmd->add_option("--shadow", *shadow, "A challenger model scoring the same rows");
  cmd->add_option("--shadow-output", *shadow_output,
                  "Where the challenger's scores go (default: OUTPUT with .shadow.csv)");
  cmd->add_option("--label", *label,
                  "A 0/1 label column: print the quality (AUC, average precision) of the model, "
                  "and of the shadow beside it");
  cmd->add_option("--decisions", *decisions,
                  "A YAML file with a decisions: section (e.g. the pipeline spec): add action, "
                  "review, reason, model and model_version columns; rule fields are read from "
                  "the input's columns");
  cmd->footer(
      "Example:\n"
      "  millrace predict --model models/fraud/3/model.json --input rows.csv --output out.csv\n"
      "  millrace predict --model model.json --input rows.csv --decisions spec.yaml --output -\n"
      "  millrace predict --registry models --model fraud --shadow fraud@4 --input rows.csv \\\n"
      "      --output champion.csv --label is_fraud\n");
  cmd->callback([=] {
    auto table = model::read_csv(*input);
    if (!table.ok()) throw CommandError(table.status().message());
    const ModelSnapshot champion = resolve_model(*model_ref, *registry);
    const std::vector<double> scores = score_all(*table, *champion);
    std::vector<decision::Decision> decided;
    if (!decisions->empty()) {
      if (champion->model->num_outputs() != 1)
        throw CommandError("--decisions needs a model with one output (a score)");
      YAML::Node doc;
      try {
        doc = YAML::LoadFile(*decisions);
      } catch (const YAML::Exception& e) {
        throw CommandError(fmt::format("{}: {}", *decisions, e.what()));
      }
      auto engine = decision::DecisionEngine::build(doc["decisions"]);
      if (!engine.ok()) throw CommandError(*decisions + ": " + engine.status().message());
      decided = decide_all(*table, *engine, scores);
    }
    write_output(*output, *table, *champion, scores, decisions->empty() ? nullptr : &decided);
    ModelSnapshot challenger;
    std::vector<double> shadow_scores;
    if (!shadow->empty()) {
      challenger = resolve_model(*shadow, *registry);
      shadow_scores = score_all(*table, *challenger);
      std::string out = *shadow_output;
      if (out.empty()) {
        if (*output == "-") throw CommandError("--shadow with --output -: give --shadow-output");
        out = (fs::path(*output).parent_path() / fs::path(*output).stem()).string() + ".shadow.csv";
      }
      write_output(out, *table, *challenger, shadow_scores);
    }
    if (!label->empty()) {
      const int c = table->column(*label);
      if (c < 0)
        throw CommandError(fmt::format("{} has no column \"{}\" (--label)", *input, *label));
      auto labels = table->numeric_column(c);
      if (!labels.ok()) throw CommandError(labels.status().message());
      auto report = [&](const char* role, const model::LoadedModel& m,
                        const std::vector<double>& s) {
        if (m.model->num_outputs() != 1) return;
        model::ScoreQuality q(s.size());
        for (size_t r = 0; r < s.size(); ++r)
          if (!std::isnan((*labels)[r])) q.add(s[r], (*labels)[r] > 0.5f);
        std::fprintf(stderr, "%-10s %s%s%s: %s\n", role, m.name.c_str(),
                     m.version.empty() ? "" : " version ", m.version.c_str(), q.summary().c_str());
      };
      report("champion", *champion, scores);
      if (challenger) report("challenger", *challenger, shadow_scores);
    }
  });
}

CommandRegistrar reg("predict", register_predict);

}  // namespace
}  // namespace millrace::cli
