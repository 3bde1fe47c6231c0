// The millrace CLI: one binary, subcommands registered by the cmd_*.cpp files.
#include <algorithm>
#include <cstdio>

#include "command.h"

namespace millrace::cli {

std::vector<RegisteredCommand>& command_registry() {
  static std::vector<RegisteredCommand> registry;
  return registry;
}

namespace {
int g_exit_code = 0;
}

void set_exit_code(int code) {
  g_exit_code = code;
}
int exit_code() {
  return g_exit_code;
}

}  // namespace millrace::cli

int main(int argc, char** argv) {
  using namespace millrace::cli;
  CLI::App app{
      "millrace: a real-time machine-learning engine in one binary: an event log, per-entity\n"
      "features over event-time windows, windowed results, inline model scoring and decisions.\n\n"
      "Example:\n"
      "  millrace generate transactions --events 1000 > tx.jsonl\n"
      "  millrace run --spec apps/quickstart/spec.yaml --input tx.jsonl --output -\n"};
  app.name("millrace");
  app.require_subcommand(1);
  app.set_version_flag("--version", "millrace 0.1.0");
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const RegisteredCommand& a, const RegisteredCommand& b) { return a.name < b.name; });
  for (auto& cmd : registry) cmd.fn(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const CommandError& e) {
    std::fprintf(stderr, "millrace: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "millrace: %s\n", e.what());
    return 1;
  }
  return exit_code();
}
