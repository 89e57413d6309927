#include "models/weights.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "prefopt/error.h"

namespace prefopt::models {

namespace fs = std::filesystem;

Weights::Weights(const fs::path& folder) : folder_(folder) {
  const fs::path single = folder / "model.safetensors", index = folder / "model.safetensors.index.json";
  if (fs::exists(index)) {
    std::ifstream in(index);
    const auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
      throw ConfigError(fmt::format("{}: not a JSON object with a weight_map", index.string()));
    std::map<std::string, const SafetensorsFile*> opened;
    for (const auto& [name, shard] : json["weight_map"].items()) {
      if (!shard.is_string()) throw ConfigError(fmt::format("{}: weight_map.{} is not a file name", index.string(), name));
      const std::string file = shard.get<std::string>();
      // A shard is a file in this folder: no path may lead out of it.
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
        throw ConfigError(fmt::format("{}: weight_map.{} names '{}', not a file in the folder", index.string(), name, file));
      if (!opened.contains(file)) {
        if (!fs::exists(folder / file))
          throw ConfigError(fmt::format("{}: weight '{}' is in shard '{}', which is not in {}", index.string(), name,
                                        file, folder.string()));
        files_.push_back(std::make_unique<SafetensorsFile>(folder / file));
        opened[file] = files_.back().get();
      }
      if (!opened[file]->entries().contains(name))
        throw ConfigError(fmt::format("{}: weight '{}' should be in {} but is not", index.string(), name,
                                      (folder / file).string()));
      where_[name] = opened[file];
    }
    return;
  }
  if (!fs::exists(single)) {
    const bool pickle = fs::exists(folder / "pytorch_model.bin") || fs::exists(folder / "pytorch_model.bin.index.json");
    throw ConfigError(fmt::format("{}: no model.safetensors or model.safetensors.index.json{}", folder.string(),
                                  pickle ? " (only safetensors are read, not pickled pytorch_model.bin: re-save the "
                                           "model with save_pretrained(..., safe_serialization=True))"
                                         : ""));
  }
  files_.push_back(std::make_unique<SafetensorsFile>(single));
  for (const auto& [name, entry] : files_.back()->entries()) where_[name] = files_.back().get();
}

std::vector<std::string> Weights::names() const {
  std::vector<std::string> names;
  for (const auto& [name, file] : where_) names.push_back(name);
  return names;
}

const SafetensorsFile& Weights::file_of(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) throw ConfigError(fmt::format("{}: the checkpoint has no weight '{}'", folder_.string(), name));
  return *it->second;
}

const TensorEntry& Weights::entry(const std::string& name) const { return file_of(name).entries().at(name); }

}  // namespace prefopt::models
