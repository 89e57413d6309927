// `prefopt config`: compose an experiment with overrides and print the resolved configuration.
#include <fmt/format.h>

#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "config/compose.h"
#include "config/interpolate.h"
#include "config/validate.h"
#include "pipeline/policy_source.h"
#include "pipeline/sections.h"
#include "pipeline/trial.h"
#include "text.h"

namespace po = boost::program_options;

namespace prefopt::cli {
namespace {

std::vector<config::Override> parse_overrides(const std::vector<std::string>& texts) {
  std::vector<config::Override> overrides;
  std::vector<std::string> errors;
  for (const std::string& text : texts) {
    try {
      overrides.push_back(config::parse_override(text));
    } catch (const ConfigError& e) {
      errors.emplace_back(e.what());
    }
  }
  if (!errors.empty()) throw ConfigError(join(errors, "\n"));
  return overrides;
}

// `[plugins] paths` of the experiment, relative to its folder.
std::vector<std::string> config_plugin_paths(const config::Node& config, const std::filesystem::path& experiment) {
  const config::Node* plugins = config.child("plugins");
  const config::Node* paths = plugins && plugins->is_table() ? plugins->child("paths") : nullptr;
  if (paths == nullptr) return {};
  if (!paths->is_array()) throw ConfigError(fmt::format("{}: plugins.paths must be an array of folders", paths->origin));
  std::vector<std::string> out;
  const std::filesystem::path folder = std::filesystem::absolute(experiment).parent_path();
  for (const config::Node& entry : paths->array()) {
    if (!entry.is_string()) throw ConfigError(fmt::format("{}: plugins.paths entries must be strings", entry.origin));
    out.push_back((folder / std::get<std::string>(entry.value)).lexically_normal().string());
  }
  return out;
}

}  // namespace

config::Composer experiment_composer(const std::string& experiment, const po::variables_map& vars,
                                     Registries& registries) {
  std::vector<std::filesystem::path> config_dirs;
  if (vars.count("config-dir"))
    for (const std::string& dir : vars["config-dir"].as<std::vector<std::string>>()) config_dirs.emplace_back(dir);
  // The plugins the experiment file itself can see; a missing file is the Composer's to report.
  std::error_code error;
  const auto plugin_paths = std::filesystem::is_regular_file(experiment, error)
                                ? config_plugin_paths(config::load_toml_file(experiment), experiment)
                                : std::vector<std::string>{};
  auto registry = registries.find(plugin_paths);
  if (registry == registries.end()) registry = registries.emplace(plugin_paths, load_registry(vars, plugin_paths)).first;
  return config::Composer(experiment, config_dirs, plugin_options(registry->second));
}

ResolvedTrials compose_trials(const std::string& experiment, const std::vector<std::string>& override_texts,
                              bool multirun, const po::variables_map& vars) {
  Registries registries;
  config::Composer composer = experiment_composer(experiment, vars, registries);
  ResolvedTrials out{std::move(composer), std::move(registries), {}};
  const std::vector<config::Override> overrides = parse_overrides(override_texts);
  for (config::Trial& trial : out.composer.trials(overrides, multirun)) {
    config::Composition composition = out.composer.compose(trial.overrides);
    config::resolve_interpolations(composition.config);
    resolve_experiment_paths(composition.config, std::filesystem::absolute(experiment).parent_path());
    const auto plugin_paths = config_plugin_paths(composition.config, experiment);
    auto registry = out.registries.find(plugin_paths);
    if (registry == out.registries.end())
      registry = out.registries.emplace(plugin_paths, load_registry(vars, plugin_paths)).first;
    config::check_experiment(composition.config, registry->second, pipeline_sections());
    check_device_setting(composition.config);
    check_policy_setting(composition.config, registry->second);
    check_data_settings(composition.config, registry->second);
    out.trials.push_back({std::move(trial), std::move(composition), &registry->second});
  }
  return out;
}

void add_compose_options(po::options_description& options) {
  options.add_options()
      ("config-dir", po::value<std::vector<std::string>>()->composing(),
       "also search this folder for config groups (repeatable), after the experiment's folder");
  add_plugin_path_option(options);
}

namespace {

// One `prefopt config` invocation; what it would print on stdout is appended to `out`.
int config_into(const Args& args, std::string& out) {
  po::options_description options("Options");
  options.add_options()("experiment", po::value<std::string>(), "the experiment TOML file")(
      "overrides", po::value<std::vector<std::string>>(), "Hydra-style overrides: key=value, +key=value, ~key, group=option")(
      "info", po::bool_switch(), "show the config search path and the defaults tree instead of the config")(
      "multirun,m", po::bool_switch(), "expand sweeps (a,b / choice() / range() / glob() ...) into trials")(
      "batch", po::bool_switch(),
      "compose many: read one JSON array of these arguments per line on stdin, answer each with one JSON line "
      "{\"status\", \"out\", \"err\"} on stdout (for tools; libtorch's start-up is paid once)");
  add_compose_options(options);
  po::positional_options_description positional;
  positional.add("experiment", 1).add("overrides", -1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt config EXPERIMENT.toml [OVERRIDES...] [-m] [--info] [--config-dir DIR]\n"
                 "       prefopt config --batch\n\n"
                 "Composes the experiment with its defaults list and the overrides, resolves interpolations,\n"
                 "validates plugin sections against their schemas and prints the result as TOML. With -m,\n"
                 "prints one [[trial]] table per trial of the sweep, in sweep order.",
                 options, positional, vars))
    return 0;
  if (vars["batch"].as<bool>()) throw ConfigError("--batch is given alone, not inside a batch request");
  if (!vars.count("experiment")) throw ConfigError("prefopt config needs an experiment file");
  const std::string experiment = vars["experiment"].as<std::string>();
  auto overrides = vars.count("overrides") ? vars["overrides"].as<std::vector<std::string>>() : Args{};
  const bool multirun = vars["multirun"].as<bool>();
  if (multirun)  // the trials `prefopt run -m` would run: the experiment's own sweep after the command line's
    for (const auto& [key, values] : sweep::command_line_sweep(experiment, overrides).grid) overrides.push_back(key + "=" + values);
  const ResolvedTrials resolved = compose_trials(experiment, overrides, multirun, vars);
  auto print = std::back_inserter(out);

  if (vars["info"].as<bool>()) {
    fmt::format_to(print, "Config search path:\n");
    for (const config::SearchDir& dir : resolved.composer.search_path())
      fmt::format_to(print, "  {} ({})\n", dir.dir.string(), dir.origin);
    for (std::size_t i = 0; i < resolved.trials.size(); ++i) {
      const auto& trial = resolved.trials[i];
      fmt::format_to(print, "\nDefaults tree{}:\n",
                     multirun ? fmt::format(" of trial {} ({})", i, join(trial.trial.sweep_texts, " ")) : "");
      for (const std::string& line : trial.composition.defaults_tree) fmt::format_to(print, "  {}\n", line);
    }
    return 0;
  }
  if (!multirun) {
    out += config::to_toml_string(resolved.trials.front().composition.config);
    return 0;
  }
  config::Array trials;
  for (const auto& [trial, composition, registry] : resolved.trials) {
    config::Array texts;
    for (const config::Override& o : trial.overrides) texts.push_back({o.text, ""});
    trials.push_back({config::Table{{"overrides", {std::move(texts), ""}}, {"config", composition.config}}, ""});
  }
  out += config::to_toml_string({config::Table{{"trial", {std::move(trials), ""}}}, ""});
  return 0;
}

// `prefopt config --batch`: each request answered as its own process would have, exit status
// included (errors are reported, never end the batch).
int config_batch() {
  for (std::string line; std::getline(std::cin, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json answer;
    std::string out;
    try {
      const nlohmann::json request = nlohmann::json::parse(line);
      answer["status"] = config_into(request.get<Args>(), out);
    } catch (const Error& e) {
      answer = {{"status", static_cast<int>(e.code())}, {"err", fmt::format("prefopt: error: {}\n", e.what())}};
    } catch (const po::error& e) {
      answer = {{"status", static_cast<int>(ExitCode::usage)}, {"err", fmt::format("prefopt: error: {}\n", e.what())}};
    } catch (const nlohmann::json::exception& e) {
      answer = {{"status", static_cast<int>(ExitCode::usage)},
                {"err", fmt::format("prefopt: error: a batch request is a JSON array of strings: {}\n", e.what())}};
    } catch (const std::exception& e) {
      answer = {{"status", static_cast<int>(ExitCode::run_failed)}, {"err", fmt::format("prefopt: error: {}\n", e.what())}};
    }
    answer["out"] = answer["status"] == 0 ? out : "";
    if (!answer.contains("err")) answer["err"] = "";
    fmt::print("{}\n", answer.dump());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int config(const Args& args) {
  if (args.size() == 1 && args.front() == "--batch") return config_batch();
  std::string out;
  const int status = config_into(args, out);
  fmt::print("{}", out);
  return status;
}

}  // namespace prefopt::cli
