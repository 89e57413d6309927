// The safetensors header: an 8-byte little-endian length N, then N bytes of JSON naming each
// tensor's dtype, shape and [begin, end) byte range in the data that follows. Parsed and checked
// without libtorch, so the fuzz targets (fuzz/) compile it alone.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace prefopt::models {

struct TensorEntry {
  std::string dtype;                // as the file spells it: F32, BF16, I64, ...
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range in the data section
};

struct SafetensorsHeader {
  std::map<std::string, TensorEntry> entries;
  std::map<std::string, std::string> metadata;
  std::size_t data_start = 0;  // where the data section begins in the file
};

// The header of the `size` bytes of a safetensors file, checked completely: the length against the
// file, the JSON, each entry's dtype, shape and offsets (inside the data, spanning exactly the
// shape's bytes), no two entries overlapping. Throws ConfigError naming `file` (and the tensor).
SafetensorsHeader parse_safetensors_header(const std::uint8_t* bytes, std::size_t size, const std::string& file);

// The element size of a safetensors dtype; 0 for a name the format does not have.
std::size_t dtype_bytes(const std::string& dtype);

}  // namespace prefopt::models
