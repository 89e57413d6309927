#include "support.h"

#include "pipeline/sections.h"

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace prefopt::test {
namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device entropy;
  path_ = fs::temp_directory_path() / ("prefopt-test-" + std::to_string(::getpid()) + "-" +
                                       std::to_string(entropy()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<nlohmann::json> read_metrics(const fs::path& run_dir) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(run_dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

namespace {
std::string shell_quote(const std::string& word) {
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

CliResult run_cli(const std::vector<std::string>& args, const std::string& plugin_path_env, const std::string& input) {
  TempDir dir;
  std::string command = "env ";
  if (plugin_path_env.empty()) {
    command += "-u PREFOPT_PLUGIN_PATH ";
  } else {
    command += "PREFOPT_PLUGIN_PATH=";
    command += shell_quote(plugin_path_env);
    command += " ";
  }
  command += shell_quote(PREFOPT_CLI_PATH);
  for (const std::string& arg : args) {
    command += " ";
    command += shell_quote(arg);
  }
  command += " >";
  command += shell_quote((dir.path() / "out").string());
  command += " 2>";
  command += shell_quote((dir.path() / "err").string());
  std::ofstream(dir.path() / "in") << input;
  command += " <";
  command += shell_quote((dir.path() / "in").string());
  const int raw = std::system(command.c_str());
  if (raw == -1 || !WIFEXITED(raw)) throw std::runtime_error("prefopt did not exit normally: " + command);
  return {WEXITSTATUS(raw), read_file(dir.path() / "out"), read_file(dir.path() / "err")};
}

int spawn_cli(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> words = {PREFOPT_CLI_PATH};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  const std::string log_file = log.string();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::unsetenv("PREFOPT_PLUGIN_PATH");
    std::freopen(log_file.c_str(), "w", stdout);
    ::dup2(::fileno(stdout), 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_cli(int pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) throw std::runtime_error("waitpid failed");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Registry load_registry(const std::vector<fs::path>& dirs) {
  PluginSearchPath path;
  for (const fs::path& dir : dirs) path.add(dir.string(), "--plugin-path");
  path.add_default();
  return Registry::load(path);
}

config::Composer experiment_composer(const fs::path& experiment) {
  return config::Composer(experiment, {}, plugin_options(load_registry()));
}

std::vector<fs::path> sweep_trial_dirs(const fs::path& sweep_dir) {
  std::vector<fs::path> out;
  const nlohmann::json sweep = nlohmann::json::parse(read_file(sweep_dir / "sweep.json"));
  for (const nlohmann::json& t : sweep["trials"]) out.push_back(sweep_dir / t["name"].get<std::string>());
  return out;
}

bool wait_for_file(const fs::path& file, int seconds, int pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  const auto ended = [pid] {
    siginfo_t info{};
    return pid > 0 && ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid != 0;
  };
  while (!fs::exists(file)) {
    if (ended()) return fs::exists(file);
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::vector<std::string> sweep_args(const fs::path& sweep, const fs::path& out, const fs::path& cache,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"sweep",        sweep.string(),
                                   "--out",        out.string(),
                                   "--cache",      cache.string(),
                                   "--config-dir", (fs::path(PREFOPT_SOURCE_DIR) / "experiments").string(),
                                   "--plugin-path", test_library_dir("test_trainer").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

const char* const kTinyPipeline = R"([policy]
width = 16
[sft]
steps = 10
corpus_size = 128
[preferences]
pairs = 32
held_out = 16
[reward_models]
members = 1
[eval]
prompts = 8
)";

const std::string kTrainerExperiment = std::string(R"(defaults = [{task = "synthetic"}, {annotator = "flip"}, {reward_model = "bradley_terry"},
            {ensemble = "mean"}, "_self_"]
seed = 0
[algorithm]
plugin = "test_trainer"
abort = false
sleep_ms = 0
)") + kTinyPipeline;

std::string tiny_experiment(const std::string& algorithm, int steps, int every) {
  return fmt::format(R"(defaults = [{{task = "synthetic"}}, {{annotator = "flip"}}, {{reward_model = "bradley_terry"}},
            {{ensemble = "mean"}}, {{algorithm = "{}"}}, "_self_"]
seed = 0
)",
                     algorithm) +
         kTinyPipeline + fmt::format("[train]\nsteps = {}\neval_every = {}\n", steps, every);
}

bool lists_plugin(const std::string& table, const std::string& kind, const std::string& name) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first, second;
    if (words >> first >> second && first == kind && second == name) return true;
  }
  return false;
}

fs::path test_library_dir(const std::string& name) { return fs::path(PREFOPT_TEST_LIBRARY_DIR) / name; }

void report_skipped(const std::string& why) { std::cout << kSkippedMarker << " " << why << std::endl; }

bool skipped_without_lexicon(const CliResult& result) {
  if (result.status != 2 || result.err.find("VADER's lexicon") == std::string::npos) return false;
  report_skipped("VADER's lexicon is not installed (scripts/install-peers.sh)");
  return true;
}

std::optional<Tmpfs> Tmpfs::mount(const std::filesystem::path& folder, const std::string& options) {
  std::filesystem::create_directories(folder);
  const bool read_only = options == "ro";
  if (::mount("tmpfs", folder.c_str(), "tmpfs", read_only ? MS_RDONLY : 0, read_only ? nullptr : options.c_str()) != 0)
    return std::nullopt;
  return Tmpfs(folder);
}

Tmpfs::~Tmpfs() {
  if (!folder_.empty()) ::umount2(folder_.c_str(), MNT_DETACH);
}

}  // namespace prefopt::test
