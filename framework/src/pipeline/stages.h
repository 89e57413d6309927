// The cached stages of a trial and what each one reads, declared once.
//
//   stage          settings                     plugins (their sections too)  upstream
//   sft            [policy] [sft]               task                          -
//   preferences    [preferences] [prompts]      annotator                     sft
//                  [dataset] eval.temperature
//   reward_models  [reward_models]              reward_model                  preferences
//
// A data file in use ([sft] data, [prompts] path, [dataset] path) enters the key of the stage
// whose settings name it, by content.
//
// A stage's cache key is computed from its declaration alone: the resolved values (defaults
// filled, so writing a default changes nothing) of the settings it reads, each plugin's name,
// version and a hash of its library file, a hash of libprefopt and of the executable the host
// code is linked into (the policy, SFT and sampling code every stage runs), the seed, the device type and precision, and its upstream
// stage's key. A stage reads its settings only through `StageSettings`, which refuses a setting
// the stage did not declare, so a key cannot miss an input: changing an input invalidates
// exactly the stages that read it and the stages downstream of them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/node.h"
#include "prefopt/params.h"
#include "prefopt/plugin.h"
#include "registry.h"
#include "runtime.h"

namespace prefopt {

struct StageInputs {
  std::string name;                   // "sft": the stage cache's folder
  std::vector<std::string> settings;  // pipeline sections: "policy" (all of it) or "eval.temperature" (one key)
  std::vector<PluginKind> plugins;    // the plugins the stage runs: their sections, names, versions, libraries
  const StageInputs* upstream;        // the stage whose output this one reads, or null
};

extern const StageInputs kSftStage;
extern const StageInputs kPreferencesStage;
extern const StageInputs kRewardModelsStage;

// A stage's declared settings, resolved against their schemas.
class StageSettings {
 public:
  StageSettings(const StageInputs& stage, const config::Node& config, const Registry& registry);

  // `section.key`; a std::logic_error when the stage did not declare it (a bug: its key would
  // not cover what it reads).
  template <class T>
  const T& get(const std::string& section, const std::string& key) const {
    return std::get<T>(at(section, key));
  }
  const ParamValue& at(const std::string& section, const std::string& key) const;

  // "section.key = value" lines, sorted: the settings' part of the key.
  std::string describe() const;

 private:
  std::string stage_;
  std::map<std::string, std::map<std::string, ParamValue>> values_;  // section -> key -> value
};

struct StageKey {
  std::string key;       // 16 hex digits
  std::string material;  // what was hashed, one input a line (stored beside the entry as inputs.txt)
};

// The key of `stage` for this trial. `upstream_key` is the upstream stage's key ("" for none).
StageKey stage_key(const StageInputs& stage, const config::Node& config, const Registry& registry,
                               std::int64_t seed, const Runtime& runtime, const std::string& upstream_key);

// The keys of all three stages, each from its upstream's.
struct TrialStageKeys {
  StageKey sft, preferences, reward_models;
};
TrialStageKeys trial_stage_keys(const config::Node& config, const Registry& registry, std::int64_t seed,
                                            const Runtime& runtime);

}  // namespace prefopt
