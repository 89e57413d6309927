// Running another program and capturing what it prints (sbatch, squeue, scontrol).
#pragma once

#include <string>
#include <vector>

namespace prefopt {

struct ProgramOutput {
  int exit_status = 0;
  std::string out;
  std::string err;
};

// Runs `program` (looked up on PATH) with `args`, no shell, stdin closed. Throws ConfigError when
// the program is not on PATH (`hint` says what provides it).
ProgramOutput run_program(const std::string& program, const std::vector<std::string>& args,
                                      const std::string& hint);

// `text` quoted for a POSIX shell.
std::string shell_quote(const std::string& text);

}  // namespace prefopt
