// Error types shared by the host and plugins. Each carries the process exit code
// the CLI reports: 1 when the work failed, 2 for usage or configuration mistakes.
#pragma once

#include <stdexcept>
#include <string>

namespace mexport {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, int exit_code)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exitCode() const { return exit_code_; }

 private:
  int exit_code_;
};

// The export (loading, tagging, lowering, validation, writing) failed.
class ExportError : public Error {
 public:
  explicit ExportError(const std::string& message) : Error(message, 1) {}
};

// The user's command line or config is wrong.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message, 2) {}
};

// A strategy cannot tag this model; the selector moves on to the next strategy.
class StrategyError : public Error {
 public:
  explicit StrategyError(const std::string& reason) : Error(reason, 1) {}
};

}  // namespace mexport
