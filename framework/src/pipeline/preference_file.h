// The preferences stage's output on disk: the pairs (prompts, both responses, their lengths) and
// their labels (votes, who gave them, the aggregated label, the keep mask, the annotators' names)
// as named entries of one torch archive, so the layout is self-describing and order-free.
#pragma once

#include <filesystem>

#include "prefopt/reward_model.h"

namespace prefopt {

void save_preferences(const PreferenceData& data, const std::filesystem::path& file);
// On the CPU; a std::runtime_error naming the file and the entry when one is missing.
PreferenceData load_preferences(const std::filesystem::path& file);

}  // namespace prefopt
