// Errors that end an operation. Each carries the process exit status the CLI reports for it.
//
// Exit statuses (documented in the README and `prefopt --help`):
//   0 success, 1 a run failed, 2 usage or configuration error, 3 plugin error,
//   74 a file could not be written (a full disk, a read-only folder; since 3.2),
//   75 stopped by a signal after saving a checkpoint (run it again to continue).
#pragma once

#include <stdexcept>
#include <string>

#include "prefopt/export.h"

namespace prefopt {

enum class ExitCode : int { success = 0, run_failed = 1, usage = 2, plugin = 3, storage = 74, stopped = 75 };

class PREFOPT_API Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ~Error() override;
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

// Bad command line or configuration: the user can fix it by changing what they wrote.
class PREFOPT_API ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(ExitCode::usage, message) {}
  ~ConfigError() override;
};

// A plugin could not be found, loaded, created, or failed while running. The message names the
// plugin (and its library file where one is involved).
class PREFOPT_API PluginError : public Error {
 public:
  explicit PluginError(const std::string& message) : Error(ExitCode::plugin, message) {}
  ~PluginError() override;
};

// A file could not be written: a full disk, a read-only or unwritable folder. The message names
// the file and the system's reason. Nothing half-written is kept, so once there is room the same
// command (or --continue) picks up where it stopped. Plugins let it pass. Since 3.2.
class PREFOPT_API StorageError : public Error {
 public:
  explicit StorageError(const std::string& message) : Error(ExitCode::storage, message) {}
  ~StorageError() override;
};

// A trial stopped on request (SIGTERM, SIGUSR1: preemption, a time limit, a launcher shutting
// down) after saving a checkpoint it continues from. Plugins let it pass.
class PREFOPT_API Stopped : public Error {
 public:
  explicit Stopped(const std::string& message) : Error(ExitCode::stopped, message) {}
  ~Stopped() override;
};

}  // namespace prefopt
