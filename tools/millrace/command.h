// Subcommand registry of the millrace CLI.
//
// Each tools/millrace/cmd_*.cpp file registers its subcommands with a static
// CommandRegistrar, so adding a command group never touches main.cpp:
//
//   static millrace::cli::CommandRegistrar reg("log", [](CLI::App& app) { ... });
//
// The callback receives the top-level app and adds its subcommand(s) to it.
// A subcommand's callback returns through CLI11; failures throw CommandError,
// which main() turns into "millrace: <message>" and exit code 2 (usage) or 1.
#pragma once

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "millrace/core/time.h"

namespace millrace::cli {

// An error a command reports to the user: printed without a stack of context.
class CommandError : public std::runtime_error {
 public:
  explicit CommandError(const std::string& msg, int exit_code = 1)
      : std::runtime_error(msg), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

using RegisterFn = std::function<void(CLI::App&)>;

struct RegisteredCommand {
  std::string name;  // for ordering in --help
  RegisterFn fn;
};

std::vector<RegisteredCommand>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, RegisterFn fn) {
    command_registry().push_back({std::move(name), std::move(fn)});
  }
};

// The epoch ms of a "YYYY-MM-DD" option's midnight (UTC); a usage error
// naming the option otherwise.
inline TimeMs parse_date_option(const std::string& text, const char* option) {
  auto t = text.size() == 10 ? parse_rfc3339_ms(text + "T00:00:00Z") : std::nullopt;
  if (!t)
    throw CommandError(fmt::format("{}: expected a date YYYY-MM-DD, got '{}'", option, text), 2);
  return *t;
}

// Sets the exit code main() returns once the CLI11 callbacks are done.
void set_exit_code(int code);
int exit_code();

}  // namespace millrace::cli
