#include "pipeline/sections.h"

#include <fmt/format.h>

#include <cstdlib>

#include "config/validate.h"
#include "prefopt/error.h"
#include "registry.h"

namespace prefopt {

const std::vector<std::pair<std::string, std::vector<ParamSpec>>>& pipeline_sections() {
  // How [prompts] and [dataset] hold out rows: both by prompt (data/rows.h, held_out_flags).
  static const std::vector<ParamSpec> split_specs = {
      ParamSpec::string("split", "split", "column naming each row's split (optional)"),
      ParamSpec::string("held_out_split", "test", "the split value of held-out rows"),
      ParamSpec::real("held_out", 0.1, "without a split column: this fraction of the distinct prompts is held out")
          .min(0.0)
          .max(0.9)};
  static const std::vector<std::pair<std::string, std::vector<ParamSpec>>> sections = {
      {"policy",
       {ParamSpec::integer("width", 64, "transformer width").min(1),
        ParamSpec::integer("depth", 2, "transformer blocks").min(1),
        ParamSpec::integer("heads", 4, "attention heads; must divide width").min(1),
        ParamSpec::string("checkpoint", "",
                          "a Hugging Face checkpoint folder to start from instead of the built-in transformer "
                          "(relative to the experiment; width, depth and heads are then the checkpoint's)")}},
      {"sft",
       {ParamSpec::integer("corpus_size", 4096, "sequences sampled from the task's true language").min(1),
        ParamSpec::integer("steps", 300, "training steps").min(0),
        ParamSpec::integer("batch_size", 64, "sequences per step").min(1),
        ParamSpec::real("learning_rate", 3e-3, "AdamW learning rate").min(0.0),
        ParamSpec::string("data", "",
                          "a JSON Lines or CSV file of prompts and completions to learn instead of the task's corpus "
                          "(relative to the experiment)"),
        ParamSpec::string("format", "auto", "of data: auto (from the extension), jsonl or csv").one_of({"auto", "jsonl", "csv"}),
        ParamSpec::string("prompt", "prompt", "data's prompt column"),
        ParamSpec::string("completion", "completion", "data's completion column"),
        ParamSpec::integer("max_bad_rows", 0, "malformed rows of data skipped before the file is refused").min(0)}},
      {"prompts",
       {ParamSpec::string("path", "",
                          "a JSON Lines or CSV file of prompts for the algorithm, the evaluation (its held-out rows) and "
                          "simulated pairs, instead of the task's (relative to the experiment)"),
        ParamSpec::string("format", "auto", "auto (from the extension), jsonl or csv").one_of({"auto", "jsonl", "csv"}),
        ParamSpec::string("prompt", "prompt", "column of the prompt"),
        split_specs[0], split_specs[1], split_specs[2],
        ParamSpec::integer("max_bad_rows", 0, "malformed rows skipped before the file is refused").min(0)}},
      {"preferences",
       {ParamSpec::string("source", "simulated",
                          "simulated: the SFT policy's samples labelled by the annotator plugin; dataset: the pairs "
                          "and labels of [dataset]")
            .one_of({"simulated", "dataset"}),
        ParamSpec::integer("pairs", 2000, "labelled pairs for reward-model training (simulated)").min(1),
        ParamSpec::integer("held_out", 500, "further pairs to measure reward-model accuracy (simulated)").min(1)}},
      {"dataset",
       {ParamSpec::string("path", "", "the preference file, JSON Lines or CSV (relative to the experiment)"),
        ParamSpec::string("format", "auto", "auto (from the extension: .jsonl, .json, .csv), jsonl or csv")
            .one_of({"auto", "jsonl", "csv"}),
        ParamSpec::string("prompt", "prompt",
                          "column of the prompt; absent from a row: chosen and rejected are whole conversations"),
        ParamSpec::string("chosen", "chosen", "column of the preferred response"),
        ParamSpec::string("rejected", "rejected", "column of the other response"),
        ParamSpec::string("responses", "responses", "column of a list of responses, ranked or rated"),
        ParamSpec::string("ranks", "ranks", "column of the responses' ranks (1 = best)"),
        ParamSpec::string("ratings", "ratings", "column of the responses' ratings (higher is better)"),
        ParamSpec::string("annotator", "annotator", "column of who judged (optional)"),
        ParamSpec::string("tie", "tie", "column that is true where the two responses were judged equal (optional)"),
        split_specs[0], split_specs[1], split_specs[2],
        ParamSpec::string("votes", "each",
                          "each: every vote is a training example (several votes act as a soft label); majority: one "
                          "example per pair, its majority's verdict")
            .one_of({"each", "majority"}),
        ParamSpec::string("labels", "human",
                          "human: train on the file's labels; annotator: on the annotator plugin's labels of the same "
                          "pairs (both are compared either way)")
            .one_of({"human", "annotator"}),
        ParamSpec::boolean("dedup", true, "the same judgment (prompt, responses, verdict, annotator) counts once"),
        ParamSpec::integer("max_bad_rows", 0, "malformed rows skipped before the file is refused").min(0)}},
      {"reward_models",
       {ParamSpec::integer("members", 3, "reward models in the ensemble (different seeds)").min(1).max(64),
        ParamSpec::boolean("bootstrap", false, "train each member on a bootstrap resample of the pairs")}},
      {"train",
       {ParamSpec::integer("steps", 200, "updates at most: a batch of pairs, or one rollout, each").min(0),
        ParamSpec::integer("samples", 0, "responses sampled, or pairs read, at most; 0: no limit").min(0),
        ParamSpec::integer("eval_every", 50, "evaluate every this many steps, and after the last").min(1),
        ParamSpec::integer("checkpoint_every", 0, "save a checkpoint every this many steps; 0: at every evaluation")
            .min(0),
        ParamSpec::boolean("save_policy", true,
                           "write the trained policy's weights to the run folder's policy.safetensors (`prefopt "
                           "export` makes a Hugging Face folder of a checkpoint's)"),
        ParamSpec::boolean("save_reward_models", true,
                           "in a run from a checkpoint ([policy] checkpoint), write each reward model's weights to "
                           "the run folder's reward_model-K.safetensors, for `prefopt export`")}},
      {"eval",
       {ParamSpec::integer("prompts", 256, "held-out prompts per evaluation").min(1),
        ParamSpec::real("temperature", 1.0, "sampling temperature of every policy").min(1e-6)}},
      {"runtime",
       {ParamSpec::integer("threads", 0,
                           "OpenBLAS threads of the trial (libtorch's intra-op pool gets one); 0: the trial's share of "
                           "the cores")
            .min(0),
        ParamSpec::string("device", "auto", "where the models compute: auto (CUDA when there is one), cpu, cuda, cuda:N"),
        ParamSpec::string("dtype", "float32", "float32, or bfloat16: autocast with fp32 weights and optimizer state")
            .one_of({"float32", "bfloat16"}),
        ParamSpec::boolean("tf32", true, "on CUDA, fp32 matrix products in TF32 (10-bit mantissa inputs)")}},
      {"tracking",
       {ParamSpec::boolean("tensorboard", false, "write TensorBoard event files into the run folder's tensorboard/"),
        ParamSpec::string("mlflow_uri", "", "log the trial as a run on this MLflow tracking server (http://host:port)"),
        ParamSpec::string("experiment", "", "the MLflow experiment; \"\": the sweep's name, else the experiment's")}},
  };
  return sections;
}

Params pipeline_section(const config::Node& config, const std::string& name) {
  for (const auto& [section_name, specs] : pipeline_sections()) {
    if (section_name != name) continue;
    const config::Node* section = config.child(name);
    const ParamMap given = section != nullptr && section->is_table() ? config::section_params(*section) : ParamMap{};
    auto checked = check_values(specs, given, "[" + name + "]");
    if (auto* params = std::get_if<Params>(&checked)) return std::move(*params);
    const ParamProblem& problem = std::get<std::vector<ParamProblem>>(checked).front();
    throw ConfigError(fmt::format("[{}] {}: {}", name, problem.key, problem.message));
  }
  throw std::logic_error("no pipeline section " + name);
}

config::BuiltinOptions plugin_options(const Registry& registry) {
  config::BuiltinOptions out;
  for (const PluginInfo* info : registry.plugins()) {
    const std::string origin = fmt::format("{} '{}' default", to_string(info->kind), info->name);
    config::Node content;
    content.table().emplace_back("plugin", config::Node{info->name, origin});
    for (const ParamSpec& spec : info->params)
      content.table().emplace_back(spec.name(), config::param_node(spec.default_value(), origin));
    out[to_string(info->kind)].emplace(info->name, std::move(content));
  }
  return out;
}

const config::Node& plugin_section(const config::Node& config, PluginKind kind) {
  const config::Node* section = config.child(to_string(kind));
  const config::Node* name = section != nullptr && section->is_table() ? section->child("plugin") : nullptr;
  if (name == nullptr || !name->is_string())
    throw ConfigError(fmt::format("the experiment names no {} plugin: add [{}] plugin = \"...\"", to_string(kind),
                                  to_string(kind)));
  return *section;
}

const std::vector<std::pair<std::string, std::string>>& data_file_settings() {
  static const std::vector<std::pair<std::string, std::string>> settings = {
      {"sft", "data"}, {"prompts", "path"}, {"dataset", "path"}};
  return settings;
}

std::vector<DataFileSetting> data_files_in_use(const config::Node& config) {
  const bool from_dataset = pipeline_section(config, "preferences").get<std::string>("source") == "dataset";
  std::vector<DataFileSetting> out;
  for (const auto& [section, key] : data_file_settings()) {
    std::string path = pipeline_section(config, section).get<std::string>(key);
    if (!path.empty() && (section != "dataset" || from_dataset)) out.push_back({section, key, std::move(path)});
  }
  return out;
}

void resolve_experiment_paths(config::Node& config, const std::filesystem::path& experiment_folder) {
  auto settings = data_file_settings();
  settings.emplace_back("policy", "checkpoint");
  for (const auto& [section_name, key] : settings) {
    config::Node* section = config.child(section_name);
    config::Node* node = section != nullptr && section->is_table() ? section->child(key) : nullptr;
    auto* path = node != nullptr ? std::get_if<std::string>(&node->value) : nullptr;
    if (path == nullptr || path->empty()) continue;
    const char* home = std::getenv("HOME");
    if (path->starts_with("~/") && home != nullptr) *path = (std::filesystem::path(home) / path->substr(2)).string();
    if (std::filesystem::path(*path).is_relative()) *path = (experiment_folder / *path).lexically_normal().string();
  }
}

std::int64_t trial_seed(const config::Node& config) {
  const config::Node* seed = config.child("seed");
  if (seed == nullptr) return 0;
  const auto* value = std::get_if<std::int64_t>(&seed->value);
  if (value == nullptr || *value < 0)
    throw ConfigError(fmt::format("{}: seed must be an integer >= 0 (the trial's random seed)", seed->origin));
  return *value;
}

}  // namespace prefopt
