// Validation of every key of an experiment: plugin sections against the plugins' parameter
// schemas, the pipeline's sections against theirs, the top level against the known tables.
//
// The top-level tables named after plugin kinds are plugin sections:
//
//   [algorithm]
//   plugin = "dpo"      # which plugin of that kind
//   beta = 0.1          # its parameters, checked against its schema
//
// Every problem is reported at once, each with its dotted key and where the value came from
// (file:line:column, or the override text).
#pragma once

#include <string>
#include <vector>

#include "config/node.h"
#include "registry.h"

namespace prefopt::config {

struct ValidationProblem {
  std::string key;      // "algorithm.beta"
  std::string origin;   // "experiments/dpo.toml:4:8" or "override 'algorithm.beta=-1'"
  std::string message;
  bool unknown_plugin = false;
};

std::vector<ValidationProblem> validate_plugins(const Node& config, const Registry& registry);

// Sections with a fixed schema that are not plugins (the pipeline's [sft], [policy], ...).
using SectionSchemas = std::vector<std::pair<std::string, std::vector<ParamSpec>>>;
std::vector<ValidationProblem> validate_sections(const Node& config, const SectionSchemas& sections);

// The experiment's top-level keys: `seed` (an integer >= 0), the plugin sections, `sections`,
// [plugins] (paths) and [prefopt] (searchpath, sweep); anything else is unknown. A config that
// names no task and no algorithm is not an experiment and is not checked.
std::vector<ValidationProblem> validate_top_level(const Node& config, const SectionSchemas& sections);

// Every key of the experiment: validate_top_level, validate_plugins, validate_sections. Throws
// when there are problems: PluginError (exit 3) if a named plugin does not exist, else
// ConfigError (exit 2); the message lists every problem, one per line.
void check_experiment(const Node& config, const Registry& registry, const SectionSchemas& sections = {});

// The parameters of a plugin section (everything but `plugin`) as a ParamMap, for creation.
ParamMap section_params(const Node& section);
// A parameter value as a config value, each element with `origin`.
Node param_node(const ParamValue& value, const std::string& origin);

}  // namespace prefopt::config
