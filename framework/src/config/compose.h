// Hydra-style composition of an experiment from TOML files and command-line overrides.
//
//   Composer composer("experiments/dpo.toml", {});            // config search path from here
//   for (const Trial& trial : composer.trials(overrides, multirun)) {
//     Composition c = composer.compose(trial.overrides);     // defaults list + value overrides
//     resolve_interpolations(c.config);                       // interpolate.h
//   }
//
// Config groups are folders of TOML files on the config search path (the experiment's folder,
// then each --config-dir, then the experiment's `[prefopt] searchpath`). An experiment composes
// them through its `defaults` array, as Hydra's defaults list does:
//
//   defaults = [{task = "synthetic"}, {algorithm = "dpo"}, {"algorithm@reference" = "sft"},
//               {"optional ensemble" = "mean"}, {"override algorithm/optimizer" = "sgd"}, "_self_"]
//
// Each option's content is placed at its package: the group path with '/' read as '.', or
// `@pkg` (relative to the containing config's package), or a `# @package X` header in the option
// file (`_global_` is the root, `_group_` the group). An option may have a defaults list of its
// own, whose group paths are relative to its folder (absolute with a leading '/'). `_self_` is
// where a config's own values merge; without it, after its defaults (Hydra 1.1+). Tables merge,
// arrays and scalars replace, the later value wins. `override` entries are honoured in the
// experiment's own defaults list.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/node.h"
#include "config/override.h"

namespace prefopt::config {

struct SearchDir {
  std::filesystem::path dir;
  std::string origin;  // "experiment folder", "--config-dir", "[prefopt] searchpath (file:line:col)"
};

struct Composition {
  Node config;                           // composed and overridden, not yet interpolated
  std::vector<std::string> defaults_tree;  // one line per entry, indented, for --info
  std::map<std::string, std::string> choices;  // config group[@package] -> the option composed
};

// One trial of a (possibly single-trial) run: overrides without sweeps. A swept override's text
// is rewritten to the value this trial takes ("a=1,2" becomes "a=1"), so messages name it.
struct Trial {
  std::vector<Override> overrides;
  std::vector<std::string> sweep_texts;  // the swept overrides' texts, for naming the trial
};

// Options that need no file, by group then option: prefopt gives every installed plugin as an
// option of its kind's group ("algorithm/dpo": `plugin = "dpo"` and its parameters at their
// defaults), so `algorithm=my_algo` works for any installed plugin without a group file.
using BuiltinOptions = std::map<std::string, std::map<std::string, Node, std::less<>>, std::less<>>;

class Composer {
 public:
  // A file on the search path wins over a built-in option of the same name (a preset).
  Composer(const std::filesystem::path& experiment, const std::vector<std::filesystem::path>& config_dirs,
           BuiltinOptions builtin_options = {});

  const std::vector<SearchDir>& search_path() const { return search_path_; }
  const std::filesystem::path& experiment() const { return experiment_; }

  // A config group exists when some search folder has a subfolder of that path, or it has
  // built-in options.
  bool is_group(std::string_view path) const;
  // The group's options (file stems and built-in options), sorted, over the whole search path.
  std::vector<std::string> group_options(std::string_view group) const;

  // The experiment's own sweep, `[prefopt.sweep]` key = "values" in override syntax (Hydra's
  // hydra.sweeper.params): parsed overrides, applied in multirun before the command line's, which
  // replace those of the same key. Errors name file:line:column.
  std::vector<Override> sweep_overrides() const;

  // Expands sweeps into trials: the cartesian product, first override varying slowest. Without
  // `multirun` a sweep is an error that says how to write a list, a string or a sweep.
  std::vector<Trial> trials(const std::vector<Override>& overrides, bool multirun) const;

  // Composes one trial. Throws ConfigError naming the override or file:line:column at fault.
  Composition compose(const std::vector<Override>& overrides) const;

 private:
  struct Expansion;
  std::filesystem::path find_option(std::string_view group, std::string_view option) const;
  const Node* builtin_option(std::string_view group, std::string_view option) const;  // nullptr: none

  std::filesystem::path experiment_;
  Node primary_;
  std::vector<SearchDir> search_path_;
  BuiltinOptions builtin_options_;
};

}  // namespace prefopt::config
