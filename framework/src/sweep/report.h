// `prefopt report`: one self-contained HTML file (inline SVG, no scripts, no network) with
//   1. gold reward against √KL for every trial's evaluations, by algorithm (the frontier),
//   2. gold gained against √KL with Gao et al.'s form fitted per trial group (overoptimization),
//   3. gold and proxy reward over training, averaged per algorithm,
//   4. final gold reward by the swept keys (each combination of their values but seed's and the
//      algorithm's) and algorithm, with 95% confidence intervals over seeds,
//   5. the results table of `prefopt results`, and the fits' table (α, β, R², peak).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "sweep/results.h"
#include "sweep/search.h"

namespace prefopt::sweep {

// `search`: a search sweep's configurations (sweep/search.h), shown in their own section; null otherwise.
std::string render_report(const std::string& title, const std::vector<TrialResult>& results,
                          const SearchResults* search = nullptr);

// Writes the report of `sweep_dir` to `file` (atomically) and returns nothing; throws like
// load_results.
void write_report(const std::filesystem::path& sweep_dir, const std::filesystem::path& file);

}  // namespace prefopt::sweep
