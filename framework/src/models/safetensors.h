// The safetensors format (Hugging Face; safetensors_header.h). The reader maps the file and checks
// the header completely before any tensor is read: a truncated, overlapping or lying file is
// refused with the file's name and the tensor's.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/safetensors_header.h"

namespace prefopt::models {

class SafetensorsFile {
 public:
  // Maps `file` and checks its header; throws ConfigError naming the file (and tensor) otherwise.
  explicit SafetensorsFile(const std::filesystem::path& file);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::map<std::string, TensorEntry>& entries() const { return header_.entries; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  // A CPU tensor owning a copy of `name`'s bytes, in its stored dtype.
  at::Tensor load(const std::string& name) const;

 private:
  std::filesystem::path path_;
  const std::uint8_t* bytes_ = nullptr;  // the whole file, mapped read-only
  std::size_t size_ = 0;
  SafetensorsHeader header_;
};

// The libtorch dtype of a safetensors dtype name; throws ConfigError for one libtorch lacks.
c10::ScalarType scalar_type(const std::string& dtype);

// Writes `tensors` (any device, contiguous or not) as a safetensors file, atomically, names in
// sorted order and data 8-byte aligned as the reference writer does.
void write_safetensors(const std::filesystem::path& file, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace prefopt::models
