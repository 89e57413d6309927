// Saving to files so that a full disk or an unwritable folder is a StorageError naming the file
// and the reason, with nothing half-written left behind. libtorch 1.13's own file writer
// (torch::save(value, path)) aborts the process there instead: its destructor throws a second
// exception while the first unwinds. Since 3.2.
//
//   prefopt::save_to_file(net_, folder + "/reward_net.pt");   // torch::load reads it back
#pragma once

#include <torch/serialize.h>

#include <memory>
#include <string>

#include "prefopt/export.h"

namespace prefopt {

// `bytes` as the whole of `file` (created or replaced); StorageError when that fails.
PREFOPT_API void write_file(const std::string& file, const std::string& bytes);

// `archive`, serialized in memory, written to `file`.
PREFOPT_API void save_archive(torch::serialize::OutputArchive& archive, const std::string& file);

// torch::save(value, file) for a module or a tensor: the same format, torch::load reads it.
template <typename Value>
void save_to_file(const Value& value, const std::string& file) {
  using torch::operator<<;  // a tensor's; a module's is found through its type
  torch::serialize::OutputArchive archive(std::make_shared<torch::jit::CompilationUnit>());
  archive << value;
  save_archive(archive, file);
}

}  // namespace prefopt
