// SWEEP_DIR/sweep.json, the plan of a sweep: the experiment, the spec it was expanded from, the
// launcher and every trial's name, overrides, swept values and resolved-config hash, in order (a
// trial's index there is its Slurm array index). Written before any trial starts; read by each
// trial process, the results index, `prefopt status` and a resumed sweep.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sweep/spec.h"

namespace prefopt::sweep {

struct PlannedTrial {
  TrialSpec spec;
  std::string config_hash;  // of the resolved config: detects an experiment edited mid-sweep
  nlohmann::json search;    // a search's trial: study, configuration, round, params, prune rule
};

// Writes sweep.json (atomically). `run_arguments` are what every trial's run gets from the
// command line (--cache, --config-dir, --plugin-path).
void write_manifest(const std::filesystem::path& sweep_dir, const SweepSpec& spec,
                                const std::string& launcher, const std::vector<std::string>& run_arguments,
                                const std::vector<PlannedTrial>& planned);

inline constexpr const char* kManifest = "sweep.json";

// The trials sweep.json lists, as planned.
std::vector<PlannedTrial> recorded_trials(const nlohmann::json& manifest);
// A sweep's [search] as sweep.json records it (what a resumed search must match).
nlohmann::json search_json(const SearchSpec& search);

// Whether `dir` holds a sweep.json.
bool is_sweep_dir(const std::filesystem::path& dir);

// sweep.json of `sweep_dir`; ConfigError when there is none (not a sweep folder).
nlohmann::json read_manifest(const std::filesystem::path& sweep_dir);

// Refuses (ConfigError) to resume a sweep folder whose trials differ from `planned`: trials
// removed, or whose resolved config changed; trials added only with `extend`. Nothing to check
// in a folder without sweep.json.
void check_resume(const std::filesystem::path& sweep_dir, const std::filesystem::path& experiment,
                              const std::vector<PlannedTrial>& planned, bool extend);

}  // namespace prefopt::sweep
