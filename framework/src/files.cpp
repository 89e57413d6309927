#include "files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <deque>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "prefopt/serialize.h"
#include "text.h"

namespace prefopt {

std::string file_checksum(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  std::vector<char> buffer(1 << 20);
  std::uint64_t hash = kFnv1aOffset;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash = fnv1a(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())), hash);
  }
  return fmt::format("{:016x}", hash);
}

void write_atomically(const std::filesystem::path& file, const std::string& text) {
  const std::filesystem::path temporary = file.string() + ".tmp";
  write_file(temporary.string(), text);
  std::filesystem::rename(temporary, file);
}

std::string last_lines(const std::filesystem::path& file, std::size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> tail;
  for (std::string line; std::getline(in, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const std::string& line : tail) out += (out.empty() ? "" : "\n") + line;
  return out;
}

double unix_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

nlohmann::json read_json_or_null(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return nullptr;
  nlohmann::json value = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  return value.is_discarded() ? nlohmann::json(nullptr) : value;
}

nlohmann::json finite_or_null(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr); }

std::optional<FileLock> FileLock::acquire(const std::filesystem::path& file, const Options& options) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | (options.inherited ? 0 : O_CLOEXEC), options.mode);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot open the lock file {}: {}", file.string(), std::strerror(errno)));
  FileLock lock(fd);
  ::fchmod(fd, options.mode);  // a shared lock file (GPU slots) must stay writable by every user
  if (::flock(fd, LOCK_EX | (options.wait ? 0 : LOCK_NB)) == 0) return lock;
  if (!options.wait && errno == EWOULDBLOCK) return std::nullopt;
  throw std::runtime_error(fmt::format("cannot lock {}: {} (it must be on a filesystem with flock)", file.string(),
                                       std::strerror(errno)));
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace prefopt
