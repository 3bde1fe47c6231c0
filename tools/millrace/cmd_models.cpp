// `millrace models list|describe|promote`: the model registry (ROOT/NAME/VERSION).
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "millrace/model/registry.h"

namespace millrace::cli {
namespace {

std::string meta_field(const nlohmann::json& meta, const char* a, const char* b) {
  if (!meta.is_object() || !meta.contains(a)) return "-";
  const auto& v = b ? (meta[a].contains(b) ? meta[a][b] : nlohmann::json()) : meta[a];
  if (v.is_null()) return "-";
  if (v.is_number_float()) return fmt::format("{:.4f}", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

void register_models(CLI::App& app) {
  auto* models = app.add_subcommand("models", "The model registry: list, describe, promote");
  models->require_subcommand(1);
  auto root = std::make_shared<std::string>("models");
  models->add_option("--registry", *root, "Registry root directory")->capture_default_str();
  models->footer("Example:\n  millrace models --registry models list\n");

  auto* list = models->add_subcommand("list", "List models, their versions and which is promoted");
  list->footer("Example:\n  millrace models --registry models list\n");
  list->callback([=] {
    model::ModelRegistry reg(*root);
    auto names = reg.names();
    if (!names.ok()) throw CommandError(names.status().message());
    std::printf("%-20s %-10s %-9s %-21s %-8s %s\n", "NAME", "VERSION", "PROMOTED", "CREATED", "AUC",
                "AP");
    for (const auto& name : *names) {
      auto versions = reg.versions(name);
      if (!versions.ok()) continue;
      auto promoted = reg.promoted_version(name);
      for (const auto& v : *versions) {
        auto info = reg.describe(name, v);
        const nlohmann::json meta = info.ok() ? info->meta : nlohmann::json();
        std::printf("%-20s %-10s %-9s %-21s %-8s %s\n", name.c_str(), v.c_str(),
                    promoted.ok() && *promoted == v ? "*" : "",
                    meta_field(meta, "created_at", nullptr).c_str(),
                    meta_field(meta, "validation", "auc").c_str(),
                    meta_field(meta, "validation", "average_precision").c_str());
      }
    }
  });

  auto* describe = models->add_subcommand("describe", "Show one model version and its metadata");
  auto name = std::make_shared<std::string>();
  auto version = std::make_shared<std::string>();
  describe->add_option("name", *name, "Model name")->required();
  describe->add_option("version", *version, "Version (default: the promoted one)");
  describe->footer("Example:\n  millrace models --registry models describe fraud 3\n");
  describe->callback([=] {
    model::ModelRegistry reg(*root);
    auto info = reg.describe(*name, *version);
    if (!info.ok()) throw CommandError(info.status().message());
    auto loaded = reg.load(*name, info->version);
    if (!loaded.ok()) throw CommandError(loaded.status().message());
    std::printf("name: %s\nversion: %s%s\nfile: %s\nmodel: %s\nfeatures (%zu): %s\n",
                info->name.c_str(), info->version.c_str(), info->promoted ? " (promoted)" : "",
                info->model_file.c_str(), (*loaded)->model->summary().c_str(),
                (*loaded)->features.size(),
                fmt::format("{}", fmt::join((*loaded)->features, ", ")).c_str());
    if (info->meta.is_object()) std::printf("meta: %s\n", info->meta.dump(2).c_str());
  });

  auto* promote = models->add_subcommand(
      "promote", "Make a version the one served (running pipelines pick it up)");
  auto pname = std::make_shared<std::string>();
  auto pversion = std::make_shared<std::string>();
  promote->add_option("name", *pname, "Model name")->required();
  promote->add_option("version", *pversion, "Version to serve")->required();
  promote->footer("Example:\n  millrace models --registry models promote fraud 4\n");
  promote->callback([=] {
    model::ModelRegistry reg(*root);
    // Load it first: a version that does not load is never promoted.
    auto loaded = reg.load(*pname, *pversion);
    if (!loaded.ok()) throw CommandError(loaded.status().message() + "; not promoted");
    Status s = reg.promote(*pname, *pversion);
    if (!s.ok()) throw CommandError(s.message());
    std::printf("promoted %s version %s\n", pname->c_str(), pversion->c_str());
  });
}

CommandRegistrar reg("models", register_models);

}  // namespace
}  // namespace millrace::cli
