// Helpers shared by the tests: temporary folders and running the prefopt binary.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/compose.h"
#include "registry.h"

namespace prefopt::test {

// A fresh folder under the system temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CliResult {
  int status;
  std::string out;
  std::string err;
};

// Runs the built `prefopt` with `args` (each passed as one word), PREFOPT_PLUGIN_PATH unset
// unless `plugin_path_env` is given.
CliResult run_cli(const std::vector<std::string>& args, const std::string& plugin_path_env = "", const std::string& input = "");

// Starts `prefopt ARGS` in the background, stdout and stderr to `log`, PREFOPT_PLUGIN_PATH unset;
// returns its pid. wait_cli returns its exit status, or 128 + the signal that ended it.
int spawn_cli(const std::vector<std::string>& args, const std::filesystem::path& log);
int wait_cli(int pid);

// A registry over `dirs` (each as if given to --plugin-path) followed by the built-in plugins.
Registry load_registry(const std::vector<std::filesystem::path>& dirs = {});
// The Composer of `experiment` as `prefopt` builds it: the built-in plugins are options of the
// plugin groups.
config::Composer experiment_composer(const std::filesystem::path& experiment);

// Where the test libraries were built: one folder per case (tests/test_libraries/).
std::filesystem::path test_library_dir(const std::string& name);

std::string read_file(const std::filesystem::path& file);
// The rows of a run folder's metrics.jsonl.
std::vector<nlohmann::json> read_metrics(const std::filesystem::path& run_dir);

// Says on stdout that the running test cannot run here and why. ctest reports a test that printed
// this as skipped, not passed (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt; Catch2 2 has no
// SKIP); the caller returns right after.
void report_skipped(const std::string& why);
inline constexpr const char* kSkippedMarker = "prefopt-test-skipped:";
// True, after report_skipped, when a run of the sentiment task failed for want of VADER's lexicon
// (the peers' venv); the caller returns.
bool skipped_without_lexicon(const CliResult& result);

// The trial folders of the sweep in `sweep_dir`, in sweep.json's order.
std::vector<std::filesystem::path> sweep_trial_dirs(const std::filesystem::path& sweep_dir);

// Waits until `file` exists. False as soon as the process `pid` (when given) has ended without
// writing it, or after `seconds`: a guard against a hang only, since on a loaded 2-core CI machine
// a trial's stages can take minutes before the file appears. The process is not reaped.
bool wait_for_file(const std::filesystem::path& file, int seconds, int pid = 0);

// `prefopt sweep SWEEP --out OUT --cache CACHE` with the experiments' config groups and the test
// libraries' test_trainer on the plugin path, then `extra`.
std::vector<std::string> sweep_args(const std::filesystem::path& sweep, const std::filesystem::path& out,
                                    const std::filesystem::path& cache, const std::vector<std::string>& extra = {});

// The tables of a tiny pipeline (width 16, 10 SFT steps, 32 pairs, one reward model, 8 evaluation
// prompts), to follow an experiment's top-level keys.
extern const char* const kTinyPipeline;
// The tiny pipeline with a built-in `algorithm` training `steps` steps, evaluated every `every`.
std::string tiny_experiment(const std::string& algorithm, int steps, int every);
// The tiny pipeline whose algorithm is the test library's test_trainer (`abort`, `sleep_ms`): the
// sweep launchers' tests run it.
extern const std::string kTrainerExperiment;

// A tmpfs mounted on a folder (the fault tests' full disk and read-only folder), unmounted when the
// object goes. Only root may mount: mount() gives nullopt elsewhere (or where the container forbids
// it), and the test reports itself skipped.
class Tmpfs {
 public:
  // `options` as mount(8) takes them for tmpfs: "size=256k", "ro".
  static std::optional<Tmpfs> mount(const std::filesystem::path& folder, const std::string& options);
  Tmpfs(Tmpfs&& other) noexcept : folder_(std::exchange(other.folder_, {})) {}
  Tmpfs& operator=(Tmpfs&&) = delete;
  ~Tmpfs();

 private:
  explicit Tmpfs(std::filesystem::path folder) : folder_(std::move(folder)) {}
  std::filesystem::path folder_;
};

// Whether `prefopt plugins list`'s table has a row for this plugin.
bool lists_plugin(const std::string& table, const std::string& kind, const std::string& name);

}  // namespace prefopt::test
