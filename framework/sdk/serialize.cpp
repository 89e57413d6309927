#include "prefopt/serialize.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "prefopt/error.h"

namespace prefopt {

void write_file(const std::string& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw StorageError(fmt::format("cannot write {}: {}", file, std::strerror(errno)));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();  // flushes; an error only the close reports (a quota) counts too
  if (out) return;
  const int cause = errno;
  std::error_code ignored;
  std::filesystem::remove(file, ignored);  // ours: opened and truncated above
  throw StorageError(fmt::format("cannot write {}: {}", file, std::strerror(cause)));
}

void save_archive(torch::serialize::OutputArchive& archive, const std::string& file) {
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file(file, bytes.str());
}

}  // namespace prefopt
