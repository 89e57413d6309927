#include "sweep/spec.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "pipeline/stage_cache.h"
#include "sweep/samplers.h"
#include "prefopt/error.h"
#include "text.h"

namespace prefopt::sweep {
namespace fs = std::filesystem;
using config::Node;

namespace {

[[noreturn]] void fail(const Node& node, const std::string& message) {
  throw ConfigError(fmt::format("{}: {}", node.origin, message));
}

std::string string_value(const Node& node, const std::string& key) {
  if (!node.is_string())
    fail(node, fmt::format("{} must be a string in command-line sweep syntax, e.g. \"a,b\" or \"range(1,4)\"; got a {}",
                           key, config::type_name(node)));
  return std::get<std::string>(node.value);
}

KeyValues key_values(const Node& table, const std::string& where) {
  if (!table.is_table()) fail(table, where + " must be a table of key = \"values\"");
  KeyValues out;
  for (const auto& [key, value] : table.table()) out.emplace_back(key, string_value(value, where + "." + key));
  return out;
}

std::int64_t integer(const Node& node, const std::string& key) {
  if (!std::holds_alternative<std::int64_t>(node.value)) fail(node, key + " must be an integer");
  return std::get<std::int64_t>(node.value);
}

// The override `text` parsed, errors prefixed with where it came from.
config::Override parse(const std::string& text, const std::string& where) {
  try {
    return config::parse_override(text);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", where, e.what()));
  }
}

PerOption per_option(const Node& value, const std::string& where) {
  if (!value.is_table()) fail(value, fmt::format("{0} must be tables [{0}.GROUP.OPTION]", where));
  PerOption out;
  for (const auto& [group, options] : value.table()) {
    if (!options.is_table()) fail(options, fmt::format("{0}.{1} must be tables [{0}.{1}.OPTION]", where, group));
    for (const auto& [option, values] : options.table())
      out.push_back({{group, option}, key_values(values, where + "." + group + "." + option)});
  }
  return out;
}

std::string one_of(const Node& node, const std::string& key, const std::vector<std::string>& known) {
  if (!node.is_string()) fail(node, fmt::format("{} must be one of {}", key, join(known, ", ")));
  const std::string value = std::get<std::string>(node.value);
  if (std::find(known.begin(), known.end(), value) == known.end())
    fail(node, fmt::format("{} must be one of {}, not '{}'{}", key, join(known, ", "), value, did_you_mean(value, known)));
  return value;
}

std::int64_t at_least(const Node& node, const std::string& key, std::int64_t minimum) {
  const std::int64_t value = integer(node, key);
  if (value < minimum) fail(node, fmt::format("{} must be at least {}", key, minimum));
  return value;
}

PrunerSpec pruner_spec(const Node& table) {
  if (!table.is_table()) fail(table, "search.pruner must be a table: kind, min_step, reduction");
  PrunerSpec pruner;
  for (const auto& [key, value] : table.table()) {
    if (key == "kind")
      pruner.kind = one_of(value, "search.pruner.kind", {"none", "asha", "hyperband"});
    else if (key == "min_step")
      pruner.min_step = at_least(value, "search.pruner.min_step", 1);
    else if (key == "reduction")
      pruner.reduction = at_least(value, "search.pruner.reduction", 2);
    else
      fail(value, fmt::format("unknown key search.pruner.{}{} (known: kind, min_step, reduction)", key,
                              did_you_mean(key, {"kind", "min_step", "reduction"})));
  }
  if (pruner.kind != "none" && pruner.min_step == 0)
    fail(table, "search.pruner needs min_step: the training step of the first evaluation that may stop a trial");
  return pruner;
}

SearchSpec search_spec(const Node& table) {
  if (!table.is_table()) fail(table, "search must be a table: sampler, budget, [search.space], ...");
  static const std::vector<std::string> known = {"sampler", "budget", "seed",  "objective",  "startup",
                                                 "batch",   "space",  "per_option", "pruner"};
  SearchSpec search;
  for (const auto& [key, value] : table.table()) {
    if (key == "sampler")
      search.sampler = one_of(value, "search.sampler", kSamplers);
    else if (key == "budget")
      search.budget = at_least(value, "search.budget", 1);
    else if (key == "seed")
      search.seed = static_cast<std::uint64_t>(at_least(value, "search.seed", 0));
    else if (key == "objective")
      search.objective = one_of(value, "search.objective", kObjectives);
    else if (key == "startup")
      search.startup = at_least(value, "search.startup", 0);
    else if (key == "batch")
      search.batch = at_least(value, "search.batch", 1);
    else if (key == "space")
      search.space = key_values(value, "search.space");
    else if (key == "per_option")
      search.per_option = per_option(value, "search.per_option");
    else if (key == "pruner")
      search.pruner = pruner_spec(value);
    else
      fail(value, fmt::format("unknown key search.{}{} (known: {})", key, did_you_mean(key, known), join(known, ", ")));
  }
  if (search.budget == 0) fail(table, "search needs budget: the configurations each study tries, e.g. budget = 16");
  if (search.space.empty() && search.per_option.empty())
    fail(table, "search needs [search.space] (or [search.per_option.GROUP.OPTION]): the parameters to search");
  return search;
}

// Expands `base` trials by `axes` (each "key=values"), the axes' swept texts appended.
std::vector<config::Trial> cross(const config::Composer& composer, const std::vector<config::Trial>& base,
                                 const std::vector<config::Override>& axes) {
  if (axes.empty()) return base;
  std::vector<config::Trial> out;
  for (const config::Trial& trial : base) {
    std::vector<config::Override> overrides = trial.overrides;
    // An axis replaces an override of the same key (the sweep's grid versus a fixed value).
    for (const config::Override& axis : axes)
      std::erase_if(overrides, [&](const config::Override& o) { return o.key == axis.key; });
    const std::size_t first_axis = overrides.size();
    overrides.insert(overrides.end(), axes.begin(), axes.end());
    for (config::Trial expanded : composer.trials(overrides, /*multirun=*/true)) {
      std::vector<std::string> swept = trial.sweep_texts;
      for (std::size_t i = first_axis; i < expanded.overrides.size(); ++i) swept.push_back(expanded.overrides[i].text);
      expanded.sweep_texts = std::move(swept);
      out.push_back(std::move(expanded));
    }
  }
  return out;
}

// One random value of `sweep` for `key`: uniform over listed values, uniform (or log-uniform with
// tag(log)) over an interval. std's distributions differ between library versions; these do not.
std::string draw(const config::Override& o, const config::Composer& composer, std::mt19937_64& rng) {
  if (!o.is_sweep()) {
    const auto* node = o.value ? std::get_if<Node>(&*o.value) : nullptr;
    if (node == nullptr) throw ConfigError(fmt::format("override '{}': a random parameter needs values", o.text));
    return config::override_value_text(*node);
  }
  const config::Sweep& sweep = std::get<config::Sweep>(*o.value);
  const double unit = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // [0, 1)
  if (sweep.interval) {
    auto [low, high] = *sweep.interval;
    const bool log = std::find(sweep.tags.begin(), sweep.tags.end(), "log") != sweep.tags.end();
    if (log && low <= 0) throw ConfigError(fmt::format("override '{}': tag(log) needs a positive interval", o.text));
    const double value = log ? std::exp(std::log(low) + unit * (std::log(high) - std::log(low))) : low + unit * (high - low);
    return fmt::format("{}", value);
  }
  const bool group = o.package || composer.is_group(o.key);
  const std::vector<Node> values =
      config::sweep_values(sweep, group ? composer.group_options(o.key) : std::vector<std::string>{}, o.text);
  if (values.empty()) throw ConfigError(fmt::format("override '{}' sweeps over no values", o.text));
  return config::override_value_text(values[static_cast<std::size_t>(unit * static_cast<double>(values.size()))]);
}

}  // namespace

SweepSpec load_sweep_file(const fs::path& file) {
  std::error_code error;
  if (!fs::is_regular_file(file, error)) throw ConfigError(fmt::format("sweep file '{}' does not exist", file.string()));
  const Node root = config::load_toml_file(file.string());
  SweepSpec spec;
  static const std::vector<std::string> known = {"experiment", "overrides",  "seeds",  "grid",
                                                 "random",     "per_option", "search", "launcher"};
  bool has_experiment = false;
  for (const auto& [key, value] : root.table()) {
    if (key == "experiment") {
      if (!value.is_string()) fail(value, "experiment must be a path (relative to the sweep file)");
      spec.experiment = (fs::absolute(file).parent_path() / std::get<std::string>(value.value)).lexically_normal();
      has_experiment = true;
    } else if (key == "overrides") {
      if (!value.is_array()) fail(value, "overrides must be an array of override strings");
      for (const Node& o : value.array()) spec.overrides.push_back(string_value(o, "overrides entries"));
    } else if (key == "seeds") {
      if (!value.is_array()) fail(value, "seeds must be an array of integers, e.g. [0, 1, 2]");
      for (const Node& seed : value.array()) spec.seeds.push_back(integer(seed, "seeds entries"));
    } else if (key == "grid") {
      spec.grid = key_values(value, "grid");
    } else if (key == "random") {
      if (!value.is_table()) fail(value, "random must be a table with count, seed and [random.params]");
      for (const auto& [random_key, random_value] : value.table()) {
        if (random_key == "count")
          spec.random_count = integer(random_value, "random.count");
        else if (random_key == "seed")
          spec.random_seed = static_cast<std::uint64_t>(integer(random_value, "random.seed"));
        else if (random_key == "params")
          spec.random = key_values(random_value, "random.params");
        else
          fail(random_value, fmt::format("unknown key random.{}{}", random_key,
                                         did_you_mean(random_key, {"count", "seed", "params"})));
      }
      if (spec.random_count < 1) fail(value, "random.count must be at least 1");
      if (spec.random.empty()) fail(value, "random needs [random.params]");
    } else if (key == "per_option") {
      spec.per_option = per_option(value, "per_option");
    } else if (key == "search") {
      spec.search = search_spec(value);
    } else if (key == "launcher") {
      if (value.is_string()) {
        spec.launcher = std::get<std::string>(value.value);
      } else if (value.is_table()) {
        for (const auto& [launcher_key, launcher_value] : value.table()) {
          if (launcher_key == "name" && launcher_value.is_string())
            spec.launcher = std::get<std::string>(launcher_value.value);
          else if (launcher_key == "name")
            fail(launcher_value, "launcher.name must be \"local\" or \"slurm\"");
          else if (launcher_key == "slurm")
            spec.slurm = launcher_value;
          else
            fail(launcher_value, fmt::format("unknown key launcher.{}{} (known: name, slurm)", launcher_key,
                                             did_you_mean(launcher_key, {"name", "slurm"})));
        }
      } else {
        fail(value, "launcher must be \"local\" or \"slurm\", or a table [launcher] with name and [launcher.slurm]");
      }
      if (spec.launcher != "local" && spec.launcher != "slurm")
        fail(value, fmt::format("unknown launcher '{}'{}; prefopt has local and slurm", spec.launcher,
                                did_you_mean(spec.launcher, {"local", "slurm"})));
    } else {
      fail(value, fmt::format("unknown key '{}' in a sweep file{} (known: {})", key, did_you_mean(key, known),
                              join(known, ", ")));
    }
  }
  if (spec.search && spec.random_count > 0)
    fail(*root.child("search"), "a sweep has [search] or [random], not both: [search] draws its configurations itself");
  if (!has_experiment)
    throw ConfigError(fmt::format("{}: a sweep file names its experiment: experiment = \"../experiments/NAME.toml\"",
                                  file.string()));
  return spec;
}

SweepSpec command_line_sweep(const fs::path& experiment, const std::vector<std::string>& overrides) {
  SweepSpec spec;
  spec.experiment = experiment;
  spec.overrides = overrides;
  std::set<std::string> given;
  for (const std::string& text : overrides) given.insert(config::parse_override(text).key);
  const config::Composer composer(experiment, {});
  for (const config::Override& own : composer.sweep_overrides())
    if (!given.contains(own.key)) spec.grid.emplace_back(own.key, own.text.substr(own.text.find('=') + 1));
  return spec;
}

std::string trial_name(const std::vector<std::string>& swept, const std::vector<std::string>& overrides) {
  std::string readable;
  for (const std::string& text : swept) {
    if (!readable.empty()) readable += ',';
    for (const char c : text) readable += std::isalnum(static_cast<unsigned char>(c)) || std::strchr("=._-+", c) ? c : '_';
  }
  if (readable.size() > 80) readable.resize(80);
  // FNV-1a barely changes its high bits for a change in the last bytes ("seed=1" vs "seed=2"); a
  // splitmix64 finalizer spreads every input bit over the 32 bits shown.
  std::uint64_t h = fnv1a(join(overrides, "\x1f"));
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return (readable.empty() ? std::string("trial") : readable) + fmt::format("-{:08x}", h >> 32);
}

std::vector<TrialSpec> expand(const SweepSpec& spec, const config::Composer& composer) {
  // Fixed overrides (their sweeps are grid axes too), then the grid.
  std::vector<config::Override> first;
  for (const std::string& text : spec.overrides) {
    config::Override o = parse(text, "overrides");
    std::erase_if(first, [&](const config::Override& earlier) { return earlier.key == o.key; });  // the later wins
    first.push_back(std::move(o));
  }
  std::vector<config::Override> grid;
  for (const auto& [key, values] : spec.grid) grid.push_back(parse(key + "=" + values, "grid." + key));
  std::vector<config::Trial> trials = cross(composer, composer.trials(first, /*multirun=*/true), grid);

  if (spec.random_count > 0) {
    std::vector<config::Override> params;
    for (const auto& [key, values] : spec.random) params.push_back(parse(key + "=" + values, "random.params." + key));
    std::mt19937_64 rng(spec.random_seed);
    std::vector<std::vector<config::Override>> draws;
    for (std::int64_t i = 0; i < spec.random_count; ++i) {
      std::vector<config::Override> drawn;
      for (const config::Override& p : params) drawn.push_back(config::parse_override(p.key + "=" + draw(p, composer, rng)));
      draws.push_back(std::move(drawn));
    }
    std::vector<config::Trial> crossed;
    for (const config::Trial& trial : trials)
      for (const auto& drawn : draws) {
        config::Trial t = trial;
        for (const config::Override& o : drawn) {
          std::erase_if(t.overrides, [&](const config::Override& x) { return x.key == o.key; });
          t.overrides.push_back(o);
          t.sweep_texts.push_back(o.text);
        }
        crossed.push_back(std::move(t));
      }
    trials = std::move(crossed);
  }

  for (const auto& [group_option, option_grid] : spec.per_option) {
    const auto& [group, option] = group_option;
    std::vector<config::Override> axes;
    for (const auto& [key, values] : option_grid)
      axes.push_back(parse(key + "=" + values, "per_option." + group + "." + option + "." + key));
    std::vector<config::Trial> next;
    for (const config::Trial& trial : trials) {
      const auto choices = composer.compose(trial.overrides).choices;
      const auto chosen = choices.find(group);
      if (chosen == choices.end() || chosen->second != option) {
        next.push_back(trial);
        continue;
      }
      for (config::Trial& t : cross(composer, {trial}, axes)) next.push_back(std::move(t));
    }
    trials = std::move(next);
  }

  std::vector<TrialSpec> out;
  std::set<std::string> names;
  for (const config::Trial& trial : trials) {
    std::vector<std::string> overrides;
    for (const config::Override& o : trial.overrides) overrides.push_back(o.text);
    for (TrialSpec& t : with_seeds(overrides, trial.sweep_texts, spec.seeds)) {
      if (!names.insert(t.name).second)
        throw ConfigError(fmt::format("the sweep has the trial '{}' twice; remove the repeated values", join(t.swept, " ")));
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<TrialSpec> with_seeds(const std::vector<std::string>& overrides, const std::vector<std::string>& swept,
                                  const std::vector<std::int64_t>& seeds) {
  std::vector<std::optional<std::int64_t>> each(seeds.begin(), seeds.end());
  if (each.empty()) each.emplace_back();  // the experiment's own seed
  std::vector<std::string> without_seed;  // the overrides, less the seed a sweep seed replaces
  if (!seeds.empty())
    for (const std::string& text : overrides)
      if (config::parse_override(text).key != "seed") without_seed.push_back(text);
  std::vector<TrialSpec> out;
  for (const std::optional<std::int64_t>& seed : each) {
    TrialSpec t{"", seed ? without_seed : overrides, swept};
    if (seed) {
      t.overrides.push_back("seed=" + std::to_string(*seed));
      t.swept.push_back("seed=" + std::to_string(*seed));
    }
    t.name = trial_name(t.swept, t.overrides);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace prefopt::sweep
