// A checkpoint folder's weights, as Hugging Face saves them: one `model.safetensors`, or shards
// named by `model.safetensors.index.json`'s weight_map. Every file is opened, and its header
// checked, up front.
#pragma once

#include "models/safetensors.h"

namespace prefopt::models {

class Weights {
 public:
  // Throws ConfigError naming the folder and file when neither layout is there or a file is bad.
  explicit Weights(const std::filesystem::path& folder);

  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.contains(name); }
  const TensorEntry& entry(const std::string& name) const;
  const SafetensorsFile& file_of(const std::string& name) const;
  at::Tensor load(const std::string& name) const { return file_of(name).load(name); }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::filesystem::path folder_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

}  // namespace prefopt::models
