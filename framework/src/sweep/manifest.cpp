#include "sweep/manifest.h"

#include <fmt/format.h>

#include <map>

#include "files.h"
#include "prefopt/error.h"
#include "prefopt/version.h"

namespace prefopt::sweep {
namespace fs = std::filesystem;
using nlohmann::json;

void write_manifest(const fs::path& sweep_dir, const SweepSpec& spec, const std::string& launcher,
                    const std::vector<std::string>& run_arguments, const std::vector<PlannedTrial>& planned) {
  json trials = json::array();
  for (const PlannedTrial& t : planned) {
    json entry = {{"name", t.spec.name}, {"overrides", t.spec.overrides}, {"swept", t.spec.swept}, {"config_hash", t.config_hash}};
    if (!t.search.is_null()) entry["search"] = t.search;
    trials.push_back(std::move(entry));
  }
  json per_option = json::array();
  for (const auto& [group_option, grid] : spec.per_option)
    per_option.push_back({{"group", group_option.first}, {"option", group_option.second}, {"grid", grid}});
  json manifest = {{"experiment", spec.experiment.string()},
                         {"overrides", spec.overrides},
                         {"seeds", spec.seeds},
                         {"grid", spec.grid},
                         {"random", {{"count", spec.random_count}, {"seed", spec.random_seed}, {"params", spec.random}}},
                         {"per_option", per_option},
                         {"launcher", launcher},
                         {"run_arguments", run_arguments},
                         {"prefopt", version_string()},
                         {"trials", trials}};
  if (spec.search) manifest["search"] = search_json(*spec.search);
  write_atomically(sweep_dir / kManifest, manifest.dump(2) + "\n");
}

std::vector<PlannedTrial> recorded_trials(const json& manifest) {
  std::vector<PlannedTrial> out;
  for (const json& t : manifest.at("trials"))
    out.push_back({{t.at("name"), t.at("overrides"), t.at("swept")}, t.value("config_hash", ""), t.value("search", json())});
  return out;
}

json search_json(const SearchSpec& search) {
  json per_option = json::array();
  for (const auto& [group_option, values] : search.per_option)
    per_option.push_back({{"group", group_option.first}, {"option", group_option.second}, {"space", values}});
  return {{"sampler", search.sampler},
          {"budget", search.budget},
          {"seed", search.seed},
          {"objective", search.objective},
          {"startup", search.startup},
          {"batch", search.batch},
          {"space", search.space},
          {"per_option", per_option},
          {"pruner", {{"kind", search.pruner.kind}, {"min_step", search.pruner.min_step}, {"reduction", search.pruner.reduction}}}};
}

bool is_sweep_dir(const fs::path& dir) {
  std::error_code error;
  return fs::is_regular_file(dir / kManifest, error);
}

json read_manifest(const fs::path& sweep_dir) {
  json manifest = read_json_or_null(sweep_dir / kManifest);
  if (manifest.is_null())
    throw ConfigError(fmt::format("'{}' is not a sweep folder (no readable sweep.json); give the folder `prefopt sweep` "
                                  "or `prefopt run -m` printed",
                                  sweep_dir.string()));
  return manifest;
}

namespace {

std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < 5; ++i) out += "\n    " + names[i];
  if (names.size() > 5) out += fmt::format("\n    ... and {} more", names.size() - 5);
  return out;
}

}  // namespace

void check_resume(const fs::path& sweep_dir, const fs::path& experiment, const std::vector<PlannedTrial>& planned,
                  bool extend) {
  if (!is_sweep_dir(sweep_dir)) return;
  const json previous = read_manifest(sweep_dir);  // one cut short is refused, never overwritten
  if (previous.value("experiment", "") != experiment.string())
    throw ConfigError(fmt::format("'{}' holds a sweep of another experiment ({}); use another --out", sweep_dir.string(),
                                  previous.value("experiment", "?")));
  std::map<std::string, std::string> before, now;
  for (const json& t : previous["trials"]) before[t["name"]] = t.value("config_hash", "");
  for (const PlannedTrial& t : planned) now[t.spec.name] = t.config_hash;
  std::vector<std::string> removed, changed, added;
  for (const auto& [name, hash] : before) {
    if (!now.contains(name))
      removed.push_back(name);
    else if (now.at(name) != hash)
      changed.push_back(name);
  }
  for (const auto& [name, hash] : now)
    if (!before.contains(name)) added.push_back(name);
  if (!removed.empty() || !changed.empty()) {
    std::string message = fmt::format("the sweep in '{}' was started with another spec:", sweep_dir.string());
    if (!removed.empty()) message += fmt::format("\n  {} trial(s) no longer in the sweep:{}", removed.size(), listed(removed));
    if (!changed.empty())
      message += fmt::format("\n  {} trial(s) whose resolved config changed (the experiment or its config groups were "
                             "edited):{}",
                             changed.size(), listed(changed));
    throw ConfigError(message + "\n  Restore the spec to resume it, or give another --out.");
  }
  if (!added.empty() && !extend)
    throw ConfigError(fmt::format("the sweep in '{}' gains {} trial(s):{}\n  Run with --extend to add them to it, or "
                                  "give another --out.",
                                  sweep_dir.string(), added.size(), listed(added)));
}

}  // namespace prefopt::sweep
