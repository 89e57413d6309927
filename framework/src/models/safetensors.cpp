#include "models/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>

#include "prefopt/error.h"

namespace prefopt::models {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

// The safetensors dtypes libtorch holds (the others open, and are refused on load).
struct DtypeInfo {
  const char* name;
  c10::ScalarType type;
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> table = {
      {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf}, {"BF16", c10::kBFloat16}, {"I64", c10::kLong},
      {"I32", c10::kInt},    {"I16", c10::kShort}, {"I8", c10::kChar},  {"U8", c10::kByte},       {"BOOL", c10::kBool}};
  return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
  for (const DtypeInfo& info : dtypes())
    if (name == info.name) return &info;
  return nullptr;
}

const char* dtype_name(c10::ScalarType type) {
  for (const DtypeInfo& info : dtypes())
    if (info.type == type) return info.name;
  throw std::invalid_argument(fmt::format("safetensors has no dtype for {}", c10::toString(type)));
}

}  // namespace

c10::ScalarType scalar_type(const std::string& dtype) {
  const DtypeInfo* info = find_dtype(dtype);
  if (info == nullptr) throw ConfigError(fmt::format("dtype {} cannot be loaded into libtorch", dtype));
  return info->type;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& file) : path_(file) {
  auto fail = [&](const std::string& what) { return ConfigError(fmt::format("{}: {}", file.string(), what)); };
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    throw fail("not a regular file");
  }
  size_ = static_cast<std::size_t>(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (mapped == MAP_FAILED) throw fail(fmt::format("cannot map it: {}", std::strerror(errno)));
    bytes_ = static_cast<const std::uint8_t*>(mapped);
  } else {
    ::close(fd);
  }
  try {
    header_ = parse_safetensors_header(bytes_, size_, file.string());
  } catch (...) {
    if (bytes_ != nullptr) ::munmap(const_cast<std::uint8_t*>(bytes_), size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (bytes_ != nullptr) ::munmap(const_cast<std::uint8_t*>(bytes_), size_);
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  const auto it = header_.entries.find(name);
  if (it == header_.entries.end()) throw ConfigError(fmt::format("{}: no tensor '{}'", path_.string(), name));
  const TensorEntry& entry = it->second;
  c10::ScalarType type;
  try {
    type = scalar_type(entry.dtype);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: tensor '{}': {}", path_.string(), name, e.what()));
  }
  // A copy, not a view of the mapping: the data section need not be aligned for the dtype.
  at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(type));
  std::memcpy(tensor.data_ptr(), bytes_ + header_.data_start + entry.begin, entry.end - entry.begin);
  return tensor;
}

void write_safetensors(const std::filesystem::path& file, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const at::Tensor bytes = tensor.detach().to(at::kCPU).contiguous();
    const std::uint64_t size = bytes.numel() * bytes.element_size();
    header[name] = {{"dtype", dtype_name(bytes.scalar_type())}, {"shape", bytes.sizes().vec()},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
    data.push_back(bytes);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  const std::uint64_t length = text.size();

  const std::filesystem::path temporary = file.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const at::Tensor& bytes : data)
      out.write(static_cast<const char*>(bytes.data_ptr()), static_cast<std::streamsize>(bytes.numel() * bytes.element_size()));
    out.flush();
    if (!out) {
      const int cause = errno;
      out.close();
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw StorageError(fmt::format("cannot write {}: {}", temporary.string(), std::strerror(cause)));
    }
  }
  std::filesystem::rename(temporary, file);
}

}  // namespace prefopt::models
