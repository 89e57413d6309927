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

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit

struct DtypeInfo {
  const char* name;
  std::size_t bytes;
  std::optional<c10::ScalarType> type;  // none: a dtype libtorch cannot hold
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> table = {
      {"F64", 8, c10::kDouble},  {"F32", 4, c10::kFloat},  {"F16", 2, c10::kHalf},   {"BF16", 2, c10::kBFloat16},
      {"I64", 8, c10::kLong},    {"I32", 4, c10::kInt},    {"I16", 2, c10::kShort},  {"I8", 1, c10::kChar},
      {"U8", 1, c10::kByte},     {"BOOL", 1, c10::kBool},  {"U16", 2, std::nullopt}, {"U32", 4, std::nullopt},
      {"U64", 8, std::nullopt},  {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt}};
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

// `value` as a non-negative integer, or nullopt.
std::optional<std::uint64_t> unsigned_value(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) return value.get<std::uint64_t>();
  return std::nullopt;
}

}  // namespace

c10::ScalarType scalar_type(const std::string& dtype) {
  const DtypeInfo* info = find_dtype(dtype);
  if (info == nullptr || !info->type) throw ConfigError(fmt::format("dtype {} cannot be loaded into libtorch", dtype));
  return *info->type;
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
    if (size_ < 8) throw fail(fmt::format("{} bytes: too short for a safetensors file (8-byte header length)", size_));
    std::uint64_t header_bytes = 0;
    std::memcpy(&header_bytes, bytes_, 8);
    if (header_bytes > kMaxHeaderBytes || header_bytes > size_ - 8)
      throw fail(fmt::format("the header claims {} bytes but the file has {} after the length (truncated, or not "
                             "safetensors)",
                             header_bytes, size_ - 8));
    data_start_ = 8 + header_bytes;
    const std::uint64_t data_bytes = size_ - data_start_;
    const auto header = nlohmann::json::parse(bytes_ + 8, bytes_ + data_start_, nullptr, /*allow_exceptions=*/false);
    if (!header.is_object()) throw fail("the header is not a JSON object");
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        if (!value.is_object()) throw fail("__metadata__ is not an object of strings");
        for (const auto& [key, text] : value.items()) {
          if (!text.is_string()) throw fail(fmt::format("__metadata__.{} is not a string", key));
          metadata_[key] = text.get<std::string>();
        }
        continue;
      }
      auto bad = [&](const std::string& what) { return fail(fmt::format("tensor '{}': {}", name, what)); };
      if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
        throw bad("needs dtype, shape and data_offsets");
      TensorEntry entry;
      if (!value["dtype"].is_string()) throw bad("dtype is not a string");
      entry.dtype = value["dtype"].get<std::string>();
      const DtypeInfo* dtype = find_dtype(entry.dtype);
      if (dtype == nullptr) throw bad(fmt::format("unknown dtype '{}'", entry.dtype));
      if (!value["shape"].is_array()) throw bad("shape is not a list");
      std::uint64_t elements = 1;
      for (const auto& extent : value["shape"]) {
        const auto n = unsigned_value(extent);
        if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          throw bad(fmt::format("shape {} has an extent that is not a non-negative integer", value["shape"].dump()));
        entry.shape.push_back(static_cast<std::int64_t>(*n));
        if (*n != 0 && elements > data_bytes / *n) elements = data_bytes + 1;  // saturate: certainly too large
        else elements *= *n;
      }
      const auto& offsets = value["data_offsets"];
      const auto begin = offsets.is_array() && offsets.size() == 2 ? unsigned_value(offsets[0]) : std::nullopt;
      const auto end = offsets.is_array() && offsets.size() == 2 ? unsigned_value(offsets[1]) : std::nullopt;
      if (!begin || !end || *begin > *end) throw bad("data_offsets is not [begin, end] with begin <= end");
      if (*end > data_bytes)
        throw bad(fmt::format("its bytes [{}, {}) run past the data's {} bytes (truncated file?)", *begin, *end,
                              data_bytes));
      if (elements > data_bytes || elements * dtype->bytes != *end - *begin)
        throw bad(fmt::format("shape {} of {} needs {} bytes but data_offsets span {}", value["shape"].dump(),
                              entry.dtype, elements * dtype->bytes, *end - *begin));
      entry.begin = *begin;
      entry.end = *end;
      entries_.emplace(name, std::move(entry));
    }
    std::vector<std::pair<std::uint64_t, const std::string*>> ranges;
    for (const auto& [name, entry] : entries_)
      if (entry.end > entry.begin) ranges.emplace_back(entry.begin, &name);
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
      if (entries_.at(*ranges[i - 1].second).end > ranges[i].first)
        throw fail(fmt::format("tensors '{}' and '{}' overlap", *ranges[i - 1].second, *ranges[i].second));
  } catch (...) {
    if (bytes_ != nullptr) ::munmap(const_cast<std::uint8_t*>(bytes_), size_);
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (bytes_ != nullptr) ::munmap(const_cast<std::uint8_t*>(bytes_), size_);
}

at::Tensor SafetensorsFile::load(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw ConfigError(fmt::format("{}: no tensor '{}'", path_.string(), name));
  const TensorEntry& entry = it->second;
  c10::ScalarType type;
  try {
    type = scalar_type(entry.dtype);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: tensor '{}': {}", path_.string(), name, e.what()));
  }
  // A copy, not a view of the mapping: the data section need not be aligned for the dtype.
  at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(type));
  std::memcpy(tensor.data_ptr(), bytes_ + data_start_ + entry.begin, entry.end - entry.begin);
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
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", temporary.string()));
  }
  std::filesystem::rename(temporary, file);
}

}  // namespace prefopt::models
