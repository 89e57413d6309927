#include "pipeline/preference_file.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <stdexcept>

#include "prefopt/serialize.h"

namespace prefopt {
namespace {

// b shares a's prompts: stored once.
constexpr const char* kTensors[] = {"prompts",    "a.responses", "a.lengths",  "b.responses", "b.lengths",
                                    "labels.votes", "labels.annotators", "labels.prefers_a", "labels.keep"};

}  // namespace

void save_preferences(const PreferenceData& data, const std::filesystem::path& file) {
  const at::Tensor tensors[] = {data.a.prompts,      data.a.responses,      data.a.lengths,
                                data.b.responses,    data.b.lengths,        data.labels.votes,
                                data.labels.annotators, data.labels.prefers_a, data.labels.keep};
  torch::serialize::OutputArchive archive;
  for (std::size_t i = 0; i < std::size(kTensors); ++i) archive.write(kTensors[i], tensors[i].cpu());
  c10::List<std::string> names;
  for (const std::string& name : data.labels.names) names.push_back(name);
  archive.write("labels.names", c10::IValue(names));
  save_archive(archive, file.string());
}

PreferenceData load_preferences(const std::filesystem::path& file) {
  torch::serialize::InputArchive archive;
  archive.load_from(file.string(), at::kCPU);
  std::map<std::string, at::Tensor> tensors;
  for (const char* name : kTensors) {
    at::Tensor tensor;
    if (!archive.try_read(name, tensor))
      throw std::runtime_error(fmt::format("{} has no '{}': not a preferences file of this prefopt", file.string(), name));
    tensors[name] = tensor;
  }
  c10::IValue names_value;
  if (!archive.try_read("labels.names", names_value) || !names_value.isList())
    throw std::runtime_error(fmt::format("{} has no 'labels.names': not a preferences file of this prefopt", file.string()));
  std::vector<std::string> names;
  for (const c10::IValue& name : names_value.toListRef()) names.push_back(name.toStringRef());
  return {{tensors["prompts"], tensors["a.responses"], tensors["a.lengths"]},
          {tensors["prompts"], tensors["b.responses"], tensors["b.lengths"]},
          {tensors["labels.votes"], tensors["labels.annotators"], tensors["labels.prefers_a"], tensors["labels.keep"],
           std::move(names)}};
}

}  // namespace prefopt
