#include "models/safetensors_header.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "prefopt/error.h"

namespace prefopt::models {

namespace {

constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit

// `value` as a non-negative integer, or nullopt.
std::optional<std::uint64_t> unsigned_value(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) return value.get<std::uint64_t>();
  return std::nullopt;
}

}  // namespace

std::size_t dtype_bytes(const std::string& dtype) {
  static const std::map<std::string, std::size_t> kBytes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},      {"I16", 2},      {"I8", 1},
      {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  const auto it = kBytes.find(dtype);
  return it == kBytes.end() ? 0 : it->second;
}

SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t size, const std::string& file) {
  auto fail = [&](const std::string& what) { return ConfigError(fmt::format("{}: {}", file, what)); };
  SafetensorsHeader out;
  if (size < 8) throw fail(fmt::format("{} bytes: too short for a safetensors file (8-byte header length)", size));
  std::uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes, 8);
  if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8)
    throw fail(fmt::format("the header claims {} bytes but the file has {} after the length (truncated, or not "
                           "safetensors)",
                           header_bytes, size - 8));
  out.data_start = 8 + header_bytes;
  const std::uint64_t data_bytes = size - out.data_start;
  const auto header = nlohmann::json::parse(bytes + 8, bytes + out.data_start, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) throw fail("the header is not a JSON object");
  for (const auto& item : header.items()) {
    const std::string& name = item.key();  // not a structured binding: lambdas below capture it
    const nlohmann::json& value = item.value();
    if (name == "__metadata__") {
      if (!value.is_object()) throw fail("__metadata__ is not an object of strings");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) throw fail(fmt::format("__metadata__.{} is not a string", key));
        out.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) { return fail(fmt::format("tensor '{}': {}", name, what)); };
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") || !value.contains("data_offsets"))
      throw bad("needs dtype, shape and data_offsets");
    TensorEntry entry;
    if (!value["dtype"].is_string()) throw bad("dtype is not a string");
    entry.dtype = value["dtype"].get<std::string>();
    const std::size_t element = dtype_bytes(entry.dtype);
    if (element == 0) throw bad(fmt::format("unknown dtype '{}'", entry.dtype));
    if (!value["shape"].is_array()) throw bad("shape is not a list");
    std::uint64_t bytes = element;  // a checked product, so libtorch can size the tensor too
    for (const auto& extent : value["shape"]) {
      const auto n = unsigned_value(extent);
      if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw bad(fmt::format("shape {} has an extent that is not a non-negative integer", value["shape"].dump()));
      entry.shape.push_back(static_cast<std::int64_t>(*n));
      if (__builtin_mul_overflow(bytes, *n, &bytes))
        throw bad(fmt::format("shape {} of {} has more bytes than 64 bits count", value["shape"].dump(), entry.dtype));
    }
    const auto& offsets = value["data_offsets"];
    const auto begin = offsets.is_array() && offsets.size() == 2 ? unsigned_value(offsets[0]) : std::nullopt;
    const auto end = offsets.is_array() && offsets.size() == 2 ? unsigned_value(offsets[1]) : std::nullopt;
    if (!begin || !end || *begin > *end) throw bad("data_offsets is not [begin, end] with begin <= end");
    if (*end > data_bytes)
      throw bad(fmt::format("its bytes [{}, {}) run past the data's {} bytes (truncated file?)", *begin, *end,
                            data_bytes));
    if (bytes != *end - *begin)
      throw bad(fmt::format("shape {} of {} needs {} bytes but data_offsets span {}", value["shape"].dump(),
                            entry.dtype, bytes, *end - *begin));
    entry.begin = *begin;
    entry.end = *end;
    out.entries.emplace(name, std::move(entry));
  }
  std::vector<std::pair<std::uint64_t, const std::string*>> ranges;
  for (const auto& [name, entry] : out.entries)
    if (entry.end > entry.begin) ranges.emplace_back(entry.begin, &name);
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    if (out.entries.at(*ranges[i - 1].second).end > ranges[i].first)
      throw fail(fmt::format("tensors '{}' and '{}' overlap", *ranges[i - 1].second, *ranges[i].second));
  return out;
}

}  // namespace prefopt::models
