// `prefopt plugins list` and `prefopt plugins show`.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "text.h"

namespace po = boost::program_options;

namespace prefopt::cli {
namespace {

std::optional<PluginKind> parse_kind_option(const po::variables_map& vars) {
  if (!vars.count("kind")) return std::nullopt;
  const std::string text = vars["kind"].as<std::string>();
  if (auto kind = parse_plugin_kind(text)) return kind;
  std::vector<std::string> kinds;
  for (PluginKind kind : kAllPluginKinds) kinds.emplace_back(to_string(kind));
  throw ConfigError(fmt::format("--kind: unknown plugin kind '{}'{}; kinds are {}", text,
                                did_you_mean(text, kinds), join(kinds, ", ")));
}

std::string parse_format_option(const po::variables_map& vars, const std::vector<std::string>& formats) {
  const std::string format = vars["format"].as<std::string>();
  if (std::find(formats.begin(), formats.end(), format) == formats.end())
    throw ConfigError(fmt::format("--format: unknown format '{}'{}; formats are {}", format,
                                  did_you_mean(format, formats), join(formats, ", ")));
  return format;
}

// Problems loading libraries go to stderr, one message each; the exit status reports them.
int report_problems(const Registry& registry) {
  for (const LoadProblem& problem : registry.problems())
    fmt::print(stderr, "prefopt: error: {}\n", problem.message);
  return registry.problems().empty() ? 0 : static_cast<int>(ExitCode::plugin);
}

nlohmann::json param_value_json(const ParamValue& value) {
  return std::visit([](const auto& v) { return nlohmann::json(v); }, value);
}

nlohmann::json plugin_json(const PluginInfo& info, bool with_params) {
  nlohmann::json out = {{"name", info.name},       {"kind", to_string(info.kind)},
                        {"version", info.version}, {"description", info.description},
                        {"library", info.library}};
  if (!with_params) return out;
  out["params"] = nlohmann::json::array();
  for (const ParamSpec& spec : info.params) {
    nlohmann::json param = {{"name", spec.name()},
                            {"type", to_string(spec.type())},
                            {"default", param_value_json(spec.default_value())},
                            {"doc", spec.doc()}};
    if (spec.lower_bound()) param["min"] = *spec.lower_bound();
    if (spec.upper_bound()) param["max"] = *spec.upper_bound();
    if (!spec.choices().empty()) param["choices"] = spec.choices();
    out["params"].push_back(param);
  }
  return out;
}

void print_plugin_text(const PluginInfo& info) {
  fmt::print("{} '{}'\n", to_string(info.kind), info.name);
  fmt::print("  {:<13}{}\n", "Kind", to_string(info.kind));
  fmt::print("  {:<13}{}\n", "Version", info.version);
  fmt::print("  {:<13}{}\n", "Description", info.description);
  fmt::print("  {:<13}{}\n", "Library", info.library);
  fmt::print("\nParameters:\n");
  if (info.params.empty()) fmt::print("  none\n");
  for (const ParamSpec& spec : info.params) {
    fmt::print("  {}  {}  default {}", spec.name(), to_string(spec.type()),
               format_value(spec.default_value()));
    if (const std::string constraint = spec.constraint(); !constraint.empty())
      fmt::print("  {}", constraint);
    fmt::print("\n      {}\n", spec.doc());
  }
}

}  // namespace

void add_plugin_path_option(po::options_description& options) {
  options.add_options()("plugin-path", po::value<std::vector<std::string>>()->composing(),
                        "search these ':'-separated folders or library files for plugins first "
                        "(repeatable); then PREFOPT_PLUGIN_PATH, then the built-in plugins");
}

Registry load_registry(const po::variables_map& vars, const std::vector<std::string>& experiment_paths) {
  PluginSearchPath path;
  if (vars.count("plugin-path"))
    for (const std::string& entry : vars["plugin-path"].as<std::vector<std::string>>())
      path.add(entry, "--plugin-path");
  path.add_environment();
  for (const std::string& entry : experiment_paths) path.add(entry, "[plugins] paths");
  path.add_default();
  return Registry::load(path);
}

bool parse_args(const Args& args, const std::string& usage, po::options_description options,
                const po::positional_options_description& positional, po::variables_map& vars) {
  options.add_options()("help,h", "show this help");
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vars);
  if (vars.count("help")) {
    std::cout << usage << "\n\n" << options << "\n";
    return true;
  }
  po::notify(vars);
  return false;
}

int plugins_list(const Args& args) {
  po::options_description options("Options");
  options.add_options()("kind", po::value<std::string>(),
                        "only plugins of this kind: algorithm, reward_model, annotator, ensemble, task")
                       ("format", po::value<std::string>()->default_value("table"), "table or json");
  add_plugin_path_option(options);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt plugins list [--kind KIND] [--format table|json] [--plugin-path PATH]\n\n"
                 "Lists every plugin found on the plugin search path. Libraries that fail to load\n"
                 "are reported on stderr (exit status 3); the healthy plugins are still listed.",
                 options, {}, vars))
    return 0;
  const auto kind = parse_kind_option(vars);
  const std::string format = parse_format_option(vars, {"table", "json"});
  const Registry registry = load_registry(vars);
  const auto plugins = registry.plugins(kind);

  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const PluginInfo* info : plugins) out.push_back(plugin_json(*info, false));
    fmt::print("{}\n", out.dump(2));
    return report_problems(registry);
  }
  std::vector<std::array<std::string, 5>> rows = {{"KIND", "NAME", "VERSION", "DESCRIPTION", "LIBRARY"}};
  for (const PluginInfo* info : plugins)
    rows.push_back({to_string(info->kind), info->name, info->version, info->description,
                    std::filesystem::path(info->library).filename().string()});
  std::array<std::size_t, 5> widths{};
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  for (const auto& row : rows)
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", row[0], widths[0], row[1], widths[1], row[2],
               widths[2], row[3], widths[3], row[4]);
  if (plugins.empty()) fmt::print("(no plugins found)\n");
  return report_problems(registry);
}

int plugins_show(const Args& args) {
  po::options_description options("Options");
  options.add_options()("name", po::value<std::string>()->required(), "the plugin's name")
                       ("kind", po::value<std::string>(), "the plugin's kind, when several kinds share the name")
                       ("format", po::value<std::string>()->default_value("text"), "text or json");
  add_plugin_path_option(options);
  po::positional_options_description positional;
  positional.add("name", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt plugins show NAME [--kind KIND] [--format text|json] [--plugin-path PATH]\n\n"
                 "Shows a plugin's kind, version, description, library and every parameter:\n"
                 "type, default, range or choices, and documentation.",
                 options, positional, vars))
    return 0;
  const auto kind = parse_kind_option(vars);
  const std::string format = parse_format_option(vars, {"text", "json"});
  const std::string name = vars["name"].as<std::string>();
  const Registry registry = load_registry(vars);

  std::vector<const PluginInfo*> matches;
  if (kind) {
    matches.push_back(&registry.find(*kind, name));  // throws with did-you-mean and search path
  } else {
    matches = registry.find_all(name);
    if (matches.empty()) {
      std::vector<std::string> names;
      for (const PluginInfo* info : registry.plugins()) names.push_back(info->name);
      throw PluginError(fmt::format("unknown plugin '{}'{}\n  known plugins: {}\n{}", name,
                                    did_you_mean(name, names), names.empty() ? "none" : join(names, ", "),
                                    registry.searched_paths_note()));
    }
  }
  if (format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const PluginInfo* info : matches) out.push_back(plugin_json(*info, true));
    fmt::print("{}\n", out.dump(2));
  } else {
    for (std::size_t i = 0; i < matches.size(); ++i) {
      if (i > 0) fmt::print("\n");
      print_plugin_text(*matches[i]);
    }
  }
  return report_problems(registry);
}

}  // namespace prefopt::cli
