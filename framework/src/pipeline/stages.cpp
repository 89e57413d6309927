#include "pipeline/stages.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "config/validate.h"
#include "pipeline/policy_source.h"
#include "pipeline/sections.h"
#include "pipeline/stage_cache.h"
#include "prefopt/error.h"

namespace prefopt {
namespace fs = std::filesystem;

// Bump when a stage's stored format or computation changes in a way the library hashes miss.
// 3: keys from the stages' declared inputs, with the plugins' libraries and libprefopt.
// 4: and the host code, which left libprefopt for the executables.
// 5: the preferences stage's report counts its training examples (train_examples); data files.
constexpr const char* kStageVersion = "5";

const StageInputs kSftStage{"sft", {"policy", "sft"}, {PluginKind::task}, nullptr};
const StageInputs kPreferencesStage{
    "preferences", {"preferences", "prompts", "dataset", "eval.temperature"}, {PluginKind::annotator}, &kSftStage};
const StageInputs kRewardModelsStage{"reward_models", {"reward_models"}, {PluginKind::reward_model}, &kPreferencesStage};

namespace {

std::string file_hash(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  if (!in) throw std::runtime_error(fmt::format("cannot read {} to key the stage cache", file.string()));
  return stable_hash(content.str());
}

// The code every stage runs besides its plugins' libraries: libprefopt (policy, sampling,
// losses) and the host code linked into this executable (SFT, the stage drivers). Hashed once
// per process.
const std::string& framework_hash() {
  static const std::string hash = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&version_string), &info) == 0 || info.dli_fname == nullptr)
      throw std::runtime_error("cannot find libprefopt's file to key the stage cache");
    return stable_hash(file_hash(info.dli_fname) + file_hash("/proc/self/exe"));
  }();
  return hash;
}

const PluginInfo& plugin_of(const config::Node& config, const Registry& registry, PluginKind kind) {
  return registry.find(kind, plugin_name(plugin_section(config, kind)));
}

std::map<std::string, ParamValue> as_map(const Params& params, const std::vector<ParamSpec>& schema) {
  std::map<std::string, ParamValue> out;
  for (const ParamSpec& spec : schema) out.emplace(spec.name(), params.at(spec.name()));
  return out;
}

}  // namespace

StageSettings::StageSettings(const StageInputs& stage, const config::Node& config, const Registry& registry)
    : stage_(stage.name) {
  for (const std::string& setting : stage.settings) {
    const auto dot = setting.find('.');
    const std::string section = setting.substr(0, dot);
    const auto& sections = pipeline_sections();
    const auto schema = std::find_if(sections.begin(), sections.end(), [&](const auto& s) { return s.first == section; });
    if (schema == sections.end()) throw std::logic_error(fmt::format("stage {} reads unknown section [{}]", stage_, section));
    auto values = as_map(pipeline_section(config, section), schema->second);
    if (dot != std::string::npos) {
      const std::string key = setting.substr(dot + 1);
      if (!values.count(key)) throw std::logic_error(fmt::format("stage {} reads unknown setting {}", stage_, setting));
      values = {{key, values.at(key)}};
    }
    values_[section].merge(values);
  }
  for (PluginKind kind : stage.plugins) {
    const PluginInfo& info = plugin_of(config, registry, kind);
    auto checked = check_params(info, config::section_params(plugin_section(config, kind)));
    if (auto* problems = std::get_if<std::vector<ParamProblem>>(&checked))
      throw ConfigError(fmt::format("[{}] {}: {}", to_string(kind), problems->front().key, problems->front().message));
    values_[to_string(kind)] = as_map(std::get<Params>(checked), info.params);
    values_[to_string(kind)].emplace("plugin", info.name);
  }
}

const ParamValue& StageSettings::at(const std::string& section, const std::string& key) const {
  const auto found = values_.find(section);
  if (found == values_.end() || !found->second.count(key))
    throw std::logic_error(fmt::format("stage {} reads {}.{}, which it does not declare (pipeline/stages.cpp)", stage_,
                                       section, key));
  return found->second.at(key);
}

std::string StageSettings::describe() const {
  std::string out;
  for (const auto& [section, values] : values_)
    for (const auto& [key, value] : values) out += fmt::format("{}.{} = {}\n", section, key, format_value(value));
  return out;
}

StageKey stage_key(const StageInputs& stage, const config::Node& config, const Registry& registry, std::int64_t seed,
                   const Runtime& runtime, const std::string& upstream_key) {
  std::string material = fmt::format("stage {}, format {}\n", stage.name, kStageVersion);
  material += StageSettings(stage, config, registry).describe();
  if (std::ranges::find(stage.settings, "policy") != stage.settings.end()) material += policy_checkpoint_fingerprint(config);
  for (const DataFileSetting& file : data_files_in_use(config))
    if (std::ranges::find(stage.settings, file.section) != stage.settings.end())
      material += fmt::format("{}.{} content {}\n", file.section, file.key, file_hash(file.path));
  for (PluginKind kind : stage.plugins) {
    const PluginInfo& info = plugin_of(config, registry, kind);
    material += fmt::format("{} plugin {} {}, library {} ({})\n", to_string(kind), info.name, info.version,
                            file_hash(info.library), fs::path(info.library).filename().string());
  }
  material += fmt::format("libprefopt and host code {}\n", framework_hash());
  material += fmt::format("seed {}\n", seed);
  material += fmt::format("runtime {} {}{}\n", runtime.device_type(), runtime.dtype_name(), runtime.uses_tf32() ? " tf32" : "");
  if (stage.upstream != nullptr) material += fmt::format("upstream {} {}\n", stage.upstream->name, upstream_key);
  return {stable_hash(material), std::move(material)};
}

TrialStageKeys trial_stage_keys(const config::Node& config, const Registry& registry, std::int64_t seed,
                                const Runtime& runtime) {
  StageKey sft = stage_key(kSftStage, config, registry, seed, runtime, "");
  StageKey preferences = stage_key(kPreferencesStage, config, registry, seed, runtime, sft.key);
  StageKey reward_models = stage_key(kRewardModelsStage, config, registry, seed, runtime, preferences.key);
  return {std::move(sft), std::move(preferences), std::move(reward_models)};
}

}  // namespace prefopt
