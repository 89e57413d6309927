// The stage cache keys: each stage's key covers exactly what the stage reads (pipeline/stages.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>

#include "config/compose.h"
#include "config/interpolate.h"
#include "pipeline/sections.h"
#include "pipeline/stage_cache.h"
#include "pipeline/stages.h"
#include "support.h"

using namespace prefopt;
namespace fs = std::filesystem;

namespace {

const fs::path kExperiment = fs::path(PREFOPT_SOURCE_DIR) / "experiments" / "dpo.toml";

config::Node compose(const std::vector<std::string>& overrides) {
  std::vector<config::Override> parsed;
  for (const std::string& text : overrides) parsed.push_back(config::parse_override(text));
  config::Node node = test::experiment_composer(kExperiment).compose(parsed).config;
  config::resolve_interpolations(node);
  return node;
}

const Runtime kCpu = resolve_runtime("cpu", "float32", true, "test");

// Which of the three stages' keys differ between the experiment and the experiment + `overrides`.
std::string changed_stages(const Registry& registry, const std::vector<std::string>& overrides,
                           const Runtime& runtime = kCpu) {
  const config::Node base = compose({});
  const config::Node changed = compose(overrides);
  const TrialStageKeys a = trial_stage_keys(base, registry, trial_seed(base), kCpu);
  const TrialStageKeys b = trial_stage_keys(changed, registry, trial_seed(changed), runtime);
  std::string out;
  if (a.sft.key != b.sft.key) out += "sft ";
  if (a.preferences.key != b.preferences.key) out += "preferences ";
  if (a.reward_models.key != b.reward_models.key) out += "reward_models ";
  return out.empty() ? "none" : out.substr(0, out.size() - 1);
}

}  // namespace

TEST_CASE("changing a stage's input invalidates exactly that stage and the stages after it", "[stages]") {
  const Registry registry = test::load_registry();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"task.vocab=24", "sft preferences reward_models"},
      {"policy.width=32", "sft preferences reward_models"},
      {"sft.steps=10", "sft preferences reward_models"},
      {"seed=3", "sft preferences reward_models"},
      {"annotator.rate=0.1", "preferences reward_models"},
      {"annotator.rate=0.25", "none"},  // the value it has
      {"preferences.pairs=100", "preferences reward_models"},
      {"eval.temperature=0.7", "preferences reward_models"},  // the pairs are sampled at it
      {"reward_model.epochs=3", "reward_models"},
      {"reward_models.members=2", "reward_models"},
      {"+reward_models.bootstrap=true", "reward_models"},
      {"eval.prompts=10", "none"},
      {"algorithm.beta=0.5", "none"},
      {"algorithm=orpo", "none"},
      {"ensemble=worst_case", "none"},
      {"train.steps=5", "none"},
      {"runtime.threads=1", "none"},
      // Writing out a default is the same setting.
      {"+reward_models.bootstrap=false", "none"},
      {"reward_model.epochs=2", "none"},
  };
  for (const auto& [override_text, expected] : cases) {
    INFO(override_text);
    CHECK(changed_stages(registry, {override_text}) == expected);
  }
  const Runtime bf16 = resolve_runtime("cpu", "bfloat16", true, "test");
  CHECK(changed_stages(registry, {}, bf16) == "sft preferences reward_models");
}

TEST_CASE("a rebuilt plugin library invalidates the stages that run it", "[stages]") {
  test::TempDir dir;
  for (const auto& entry : fs::directory_iterator(default_plugin_dir()))
    fs::copy_file(entry.path(), dir.path() / entry.path().filename());
  const auto keys = [&] {
    PluginSearchPath path;
    path.add(dir.path().string(), "test");
    const Registry registry = Registry::load(path);
    REQUIRE(registry.problems().empty());
    const config::Node config = compose({});
    return trial_stage_keys(config, registry, 0, kCpu);
  };
  const TrialStageKeys before = keys();
  CHECK(before.sft.material.find("annotator") == std::string::npos);
  CHECK(before.preferences.material.find("annotator plugin flip") != std::string::npos);
  // Same name and version, other code: as after a rebuild.
  std::ofstream(dir.path() / "annotator_flip.so", std::ios::app | std::ios::binary) << '\0';
  const TrialStageKeys after = keys();
  CHECK(after.sft.key == before.sft.key);
  CHECK(after.preferences.key != before.preferences.key);
  CHECK(after.reward_models.key != before.reward_models.key);
}

TEST_CASE("a stage reads only the settings it declares", "[stages]") {
  const Registry registry = test::load_registry();
  const config::Node config = compose({});
  const StageSettings sft(kSftStage, config, registry);
  CHECK(sft.get<std::int64_t>("sft", "steps") == 300);
  CHECK(sft.get<std::int64_t>("task", "vocab") > 0);
  CHECK_THROWS_AS(sft.at("eval", "temperature"), std::logic_error);
  const StageSettings preferences(kPreferencesStage, config, registry);
  CHECK(preferences.get<double>("eval", "temperature") == 1.0);
  CHECK_THROWS_AS(preferences.at("eval", "prompts"), std::logic_error);  // only eval.temperature is declared
  CHECK_THROWS_AS(preferences.at("sft", "steps"), std::logic_error);     // the sft stage's key covers it
}

TEST_CASE("a stage-cache entry that fails its checksums is computed again, saying why", "[stages][faults]") {
  test::TempDir dir;
  const StageCache cache(dir.path());
  int computed = 0;
  const auto compute = [&](const fs::path& folder) {
    ++computed;
    fs::create_directories(folder / "member-0");
    std::ofstream(folder / "policy.pt", std::ios::binary) << std::string(4096, 'w');
    std::ofstream(folder / "member-0" / "model.pt", std::ios::binary) << "reward model " << computed;
  };
  const auto get = [&] { return cache.get("sft", "0123456789abcdef", compute); };
  const fs::path entry = dir.path() / "sft" / "0123456789abcdef";
  const auto damage = [&](const std::function<void()>& how, const std::string& expected) {
    how();
    const StageEntry again = get();
    CHECK_FALSE(again.reused);
    CHECK_THAT(again.corruption, Catch::Equals(expected));
    const StageEntry healthy = get();  // recomputed with fresh checksums
    CHECK(healthy.reused);
    CHECK(healthy.corruption.empty());
  };

  const StageEntry first = get();
  CHECK_FALSE(first.reused);
  CHECK(first.dir == entry);
  CHECK(test::read_file(entry / StageCache::kChecksums).find(" 4096 policy.pt\n") != std::string::npos);
  CHECK(get().reused);
  REQUIRE(computed == 1);

  damage([&] { fs::resize_file(entry / "policy.pt", 1000); }, "policy.pt has 1000 bytes, 4096 when written");
  damage(
      [&] {  // one bit of one byte, the size unchanged
        std::fstream file(entry / "policy.pt", std::ios::binary | std::ios::in | std::ios::out);
        file.seekp(2048);
        file.put('w' ^ 0x01);
      },
      "policy.pt changed since it was written (checksum)");
  damage([&] { fs::remove(entry / "member-0" / "model.pt"); }, "member-0/model.pt is missing");
  damage([&] { fs::remove(entry / StageCache::kChecksums); }, "it has no checksums.txt");
  CHECK(computed == 5);
  // Nothing is left beside the entry: no temporary or set-aside folders.
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(dir.path() / "sft")) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"0123456789abcdef", "0123456789abcdef.lock"});
}

TEST_CASE("a computation killed midway leaves a temporary folder the next one of its key removes", "[stages][faults]") {
  test::TempDir dir;
  const StageCache cache(dir.path());
  const fs::path stage = dir.path() / "sft";
  // What kill -9 leaves: a temporary folder of this key (and one of a set-aside entry), half written.
  fs::create_directories(stage / "0123456789abcdef.tmp-4242-0badf00d");
  std::ofstream(stage / "0123456789abcdef.tmp-4242-0badf00d" / "policy.pt") << "half";
  fs::create_directories(stage / "0123456789abcdef.corrupt.tmp-4242-00000001");
  fs::create_directories(stage / "fedcba9876543210.tmp-4243-00000002");  // another key's, maybe alive
  const StageEntry entry = cache.get("sft", "0123456789abcdef", [](const fs::path& folder) {
    std::ofstream(folder / "policy.pt") << "whole";
  });
  CHECK_FALSE(entry.reused);
  CHECK(test::read_file(entry.dir / "policy.pt") == "whole");
  std::vector<std::string> names;
  for (const auto& item : fs::directory_iterator(stage)) names.push_back(item.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"0123456789abcdef", "0123456789abcdef.lock", "fedcba9876543210.tmp-4243-00000002"});
}
