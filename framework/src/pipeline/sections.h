// The pipeline's own sections ([policy], [sft], [prompts], [preferences], [dataset],
// [reward_models], [train], [eval], [runtime], [tracking]) and the trial's seed: schemas checked like plugin parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "config/compose.h"
#include "config/node.h"
#include "prefopt/params.h"
#include "prefopt/plugin.h"

namespace prefopt {

class Registry;

const std::vector<std::pair<std::string, std::vector<ParamSpec>>>& pipeline_sections();

// The values of pipeline section `name`, checked against its schema, defaults filled in.
Params pipeline_section(const config::Node& config, const std::string& name);

// Every plugin of `registry` as a built-in option of its kind's config group (config::Composer):
// "algorithm/dpo" is `plugin = "dpo"` with dpo's parameters at their defaults.
config::BuiltinOptions plugin_options(const Registry& registry);

// The experiment's [kind] section; ConfigError when it is missing or names no plugin.
const config::Node& plugin_section(const config::Node& config, PluginKind kind);
// The plugin it names.
inline const std::string& plugin_name(const config::Node& section) { return std::get<std::string>(section.child("plugin")->value); }

// The settings that name data files: [sft] data, [prompts] path, [dataset] path.
const std::vector<std::pair<std::string, std::string>>& data_file_settings();

struct DataFileSetting {
  std::string section, key, path;
};
// The data files the trial reads: [sft] data and [prompts] path when set, [dataset] path when
// [preferences] source = "dataset".
std::vector<DataFileSetting> data_files_in_use(const config::Node& config);

// Makes the file settings that are relative (the data files, [policy] checkpoint) absolute,
// relative to `experiment_folder` (a leading "~/" is the home folder), so a run's resolved.toml
// names the same files from anywhere.
void resolve_experiment_paths(config::Node& config, const std::filesystem::path& experiment_folder);

// The trial's seed: `seed`, 0 when absent; ConfigError when it is not an integer >= 0.
std::int64_t trial_seed(const config::Node& config);

}  // namespace prefopt
