// Errors as values: Status for operations that return nothing, Result<T> for
// those that return a value. Exceptions never cross a layer boundary; the CLI
// turns a failed Status into a message and an exit code.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace millrace {

// Success, or a human-readable message saying what was wrong and, where it
// helps, what to do. Messages name the file, line or field involved.
class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  explicit operator bool() const { return ok(); }
  const std::string& message() const {
    static const std::string kEmpty;
    return message_ ? *message_ : kEmpty;
  }

 private:
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

// A value of T, or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace millrace

// Declares `var` as the value of a Result-returning `expr`, or returns its
// Status from the enclosing function (which returns Status or a Result).
// `var` names the declared variable, so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define MR_TRY_ASSIGN(var, expr)                        \
  auto var##_result = (expr);                           \
  if (!var##_result.ok()) return var##_result.status(); \
  auto var = std::move(var##_result.value())
// NOLINTEND(bugprone-macro-parentheses)
