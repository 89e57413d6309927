#include "config/validate.h"

#include <fmt/format.h>

#include <algorithm>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::config {
namespace {

// A config value as a plugin parameter value, or why it cannot be one.
std::variant<ParamValue, std::string> to_param(const Node& node) {
  if (const auto* v = std::get_if<bool>(&node.value)) return ParamValue(*v);
  if (const auto* v = std::get_if<std::int64_t>(&node.value)) return ParamValue(*v);
  if (const auto* v = std::get_if<double>(&node.value)) return ParamValue(*v);
  if (const auto* v = std::get_if<std::string>(&node.value)) return ParamValue(*v);
  if (node.is_table()) return std::string("a table is not a plugin parameter");
  const Array& items = node.array();
  const auto all = [&](auto predicate) { return std::all_of(items.begin(), items.end(), predicate); };
  if (all([](const Node& n) { return std::holds_alternative<std::int64_t>(n.value); })) {
    std::vector<std::int64_t> out;
    for (const Node& n : items) out.push_back(std::get<std::int64_t>(n.value));
    return ParamValue(out);
  }
  if (all([](const Node& n) { return std::holds_alternative<std::int64_t>(n.value) || std::holds_alternative<double>(n.value); })) {
    std::vector<double> out;
    for (const Node& n : items)
      out.push_back(std::holds_alternative<double>(n.value) ? std::get<double>(n.value)
                                                            : static_cast<double>(std::get<std::int64_t>(n.value)));
    return ParamValue(out);
  }
  if (all([](const Node& n) { return n.is_string(); })) {
    std::vector<std::string> out;
    for (const Node& n : items) out.push_back(std::get<std::string>(n.value));
    return ParamValue(out);
  }
  return std::string("a list of mixed types is not a plugin parameter");
}

// Checks a section's keys (all but `plugin`) against `schema`, appending problems in the order
// the keys were written. `owner` names the schema in messages.
void check_section(const std::string& section_key, const Node& section, const std::vector<ParamSpec>& schema,
                   const std::string& owner, std::vector<ValidationProblem>& problems) {
  const std::size_t first = problems.size();
  ParamMap given;
  for (const auto& [key, value] : section.table()) {
    if (key == "plugin") continue;
    auto converted = to_param(value);
    if (auto* why = std::get_if<std::string>(&converted))
      problems.push_back({section_key + "." + key, value.origin, *why});
    else
      given.emplace(key, std::get<ParamValue>(std::move(converted)));
  }
  const auto checked = check_values(schema, given, owner);
  if (const auto* found = std::get_if<std::vector<ParamProblem>>(&checked))
    for (const ParamProblem& problem : *found)
      problems.push_back({section_key + "." + problem.key, section.child(problem.key)->origin, problem.message});
  auto position = [&](const ValidationProblem& p) {
    const auto& entries = section.table();
    const std::string key = p.key.substr(section_key.size() + 1);
    return std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; }) - entries.begin();
  };
  std::stable_sort(problems.begin() + static_cast<std::ptrdiff_t>(first), problems.end(),
                   [&](const auto& a, const auto& b) { return position(a) < position(b); });
}

// Keys of a table with a fixed set of sub-tables and lists (not parameters): [plugins], [prefopt].
void check_keys(const std::string& name, const Node& table, const std::vector<std::string>& keys,
                std::vector<ValidationProblem>& problems) {
  if (!table.is_table()) {
    problems.push_back({name, table.origin, "must be a table"});
    return;
  }
  for (const auto& [key, value] : table.table())
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      problems.push_back({name + "." + key, value.origin,
                          fmt::format("unknown key of [{}]{}; its keys are {}", name, did_you_mean(key, keys), join(keys, ", "))});
}

}  // namespace

std::vector<ValidationProblem> validate_sections(const Node& config, const SectionSchemas& sections) {
  std::vector<ValidationProblem> problems;
  for (const auto& [name, specs] : sections) {
    const Node* section = config.child(name);
    if (section == nullptr) continue;
    if (!section->is_table()) {
      problems.push_back({name, section->origin, "must be a table"});
      continue;
    }
    check_section(name, *section, specs, "[" + name + "]", problems);
  }
  return problems;
}

std::vector<ValidationProblem> validate_top_level(const Node& config, const SectionSchemas& sections) {
  // [meta] is the researcher's own: free-form notes and labels, kept in resolved.toml and the
  // tracking params, read by no stage (so it is in no stage key).
  std::vector<std::string> known = {"seed", "meta", "plugins", "prefopt"};
  for (PluginKind kind : kAllPluginKinds) known.emplace_back(to_string(kind));
  for (const auto& [name, specs] : sections) known.push_back(name);
  // Only a config that names a task or an algorithm (as every runnable experiment must) is an
  // experiment; `prefopt config` composes any TOML, like Hydra, and those keys are their own.
  if (config.child("task") == nullptr && config.child("algorithm") == nullptr) return {};
  std::vector<ValidationProblem> problems;
  for (const auto& [key, value] : config.table()) {
    if (key == "seed") {
      const auto* seed = std::get_if<std::int64_t>(&value.value);
      if (seed == nullptr || *seed < 0)
        problems.push_back({key, value.origin, "must be an integer >= 0 (the trial's random seed)"});
    } else if (key == "meta") {
      if (!value.is_table()) problems.push_back({key, value.origin, "must be a table of free-form notes, e.g. [meta] note = \"...\""});
    } else if (key == "plugins") {
      check_keys(key, value, {"paths"}, problems);
    } else if (key == "prefopt") {
      check_keys(key, value, {"searchpath", "sweep"}, problems);
    } else if (std::find(known.begin(), known.end(), key) == known.end()) {
      problems.push_back({key, value.origin,
                          fmt::format("unknown top-level {}{}; an experiment has {}", value.is_table() ? "table" : "key",
                                      did_you_mean(key, known), join(known, ", "))});
    }
  }
  return problems;
}

ParamMap section_params(const Node& section) {
  ParamMap out;
  for (const auto& [key, value] : section.table()) {
    if (key == "plugin") continue;
    auto converted = to_param(value);
    if (auto* param = std::get_if<ParamValue>(&converted)) out.emplace(key, std::move(*param));
  }
  return out;
}

Node param_node(const ParamValue& value, const std::string& origin) {
  return std::visit(
      [&](const auto& v) -> Node {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::int64_t> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::string>) {
          return Node{v, origin};
        } else {
          Array items;
          for (const auto& item : v) items.push_back(Node{item, origin});
          return Node{std::move(items), origin};
        }
      },
      value);
}

std::vector<ValidationProblem> validate_plugins(const Node& config, const Registry& registry) {
  std::vector<ValidationProblem> problems;
  for (PluginKind kind : kAllPluginKinds) {
    const std::string section_key = to_string(kind);
    const Node* section = config.child(section_key);
    if (section == nullptr) continue;
    std::vector<std::string> names;
    for (const PluginInfo* info : registry.plugins(kind)) names.push_back(info->name);
    const std::string known = names.empty() ? "none installed" : join(names, ", ");
    if (!section->is_table()) {
      problems.push_back({section_key, section->origin,
                          fmt::format("must be a table naming a {} plugin, e.g. [{}] plugin = \"...\"", section_key, section_key)});
      continue;
    }
    const Node* plugin = section->child("plugin");
    if (plugin == nullptr || !plugin->is_string()) {
      problems.push_back({section_key + ".plugin", plugin ? plugin->origin : section->origin,
                          fmt::format("name the {} plugin as a string (known: {})", section_key, known)});
      continue;
    }
    const std::string& name = std::get<std::string>(plugin->value);
    const auto infos = registry.plugins(kind);
    const auto info = std::find_if(infos.begin(), infos.end(), [&](const PluginInfo* i) { return i->name == name; });
    if (info == infos.end()) {
      problems.push_back({section_key + ".plugin", plugin->origin,
                          fmt::format("unknown {} '{}'{}; known {} plugins: {}", section_key, name,
                                      did_you_mean(name, names), section_key, known),
                          true});
      continue;
    }
    check_section(section_key, *section, (*info)->params, fmt::format("{} '{}'", section_key, name), problems);
  }
  return problems;
}

void check_experiment(const Node& config, const Registry& registry, const SectionSchemas& sections) {
  auto problems = validate_top_level(config, sections);
  for (ValidationProblem& problem : validate_plugins(config, registry)) problems.push_back(std::move(problem));
  for (ValidationProblem& problem : validate_sections(config, sections)) problems.push_back(std::move(problem));
  if (problems.empty()) return;
  std::string message = fmt::format("{} problem{} in the configuration:", problems.size(), problems.size() == 1 ? "" : "s");
  for (const ValidationProblem& problem : problems)
    message += fmt::format("\n  {}: {}: {}", problem.origin, problem.key, problem.message);
  const bool unknown = std::any_of(problems.begin(), problems.end(), [](const auto& p) { return p.unknown_plugin; });
  if (unknown) throw PluginError(message + "\n" + registry.searched_paths_note());
  throw ConfigError(message);
}

}  // namespace prefopt::config
