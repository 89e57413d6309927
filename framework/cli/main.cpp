// prefopt: declarative preference-optimization experiments.
#include <fmt/format.h>
#include <torch/cuda.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <string_view>

#include "commands.h"
#include "text.h"
#include "threads.h"

namespace po = boost::program_options;

namespace prefopt::cli {
namespace {

constexpr const char* kOverview = R"(usage: prefopt [--version] [--help] <command> [<args>]

Commands:
  config          compose an experiment with overrides and print the resolved config
  run             run one trial of the pipeline into a fresh run folder (or --rerun one);
                  with -m, every trial of a command-line sweep
  sweep           run a sweep file's trials, each in its own process (or as a Slurm job array);
                  resumable
  status          how far a sweep got: finished, running, pending, stopped, failed trials
  trial           run one trial of a planned sweep (what launchers start)
  results         a sweep's results aggregated over seeds (table, csv, json)
  report          a sweep's self-contained HTML report
  plugins list    list the plugins found on the plugin search path
  plugins show    show one plugin's description and parameter schema
  model inspect   describe a Hugging Face checkpoint folder and check its weights
  model logprobs  per-token log-probabilities of token sequences under a checkpoint
  model generate  greedy continuations of token sequences under a checkpoint
  model score     a sequence-classification checkpoint's scores (a reward model)
  model tokenize  encode and decode text with a checkpoint's tokenizer.json
  export          a run's trained policy as a Hugging Face folder (runs from a checkpoint)

Run `prefopt <command> --help` for a command's options.

Exit status:
  0  success
  1  a run failed (for sweeps: a trial failed or did not start)
  2  usage or configuration error
  3  plugin error (a plugin library failed to load, an unknown plugin, a plugin call failed)
  74   a file could not be written (a full disk, a read-only folder); nothing half-written is
       kept: make room and run the same command again (a run: with --continue)
  75   a run was stopped by a signal after saving a checkpoint; continue it with --continue
  130  a sweep was interrupted (SIGINT or SIGTERM); run it again to resume
)";

struct Command {
  const char* summary;
  int (*run)(const Args&);
};

const std::map<std::string, Command> kCommands = {
    {"config", {"compose an experiment with overrides and print the resolved config", config}},
    {"run", {"run one trial of the pipeline into a fresh run folder (or --rerun one)", run}},
    {"sweep", {"run a sweep file's trials, each in its own process (or on Slurm); resumable", sweep_command}},
    {"results", {"a sweep's results aggregated over seeds", results_command}},
    {"report", {"a sweep's self-contained HTML report", report_command}},
    {"status", {"how far a sweep got", status_command}},
    {"trial", {"run one trial of a planned sweep", trial_command}},
    {"plugins list", {"list the plugins found on the plugin search path", plugins_list}},
    {"plugins show", {"show one plugin's description and parameter schema", plugins_show}},
    {"model inspect", {"describe a Hugging Face checkpoint folder and check its weights", model_inspect}},
    {"model logprobs", {"per-token log-probabilities of token sequences under a checkpoint", model_logprobs}},
    {"model generate", {"greedy continuations of token sequences under a checkpoint", model_generate}},
    {"model score", {"a sequence-classification checkpoint's scores (a reward model)", model_score}},
    {"model tokenize", {"encode and decode text with a checkpoint's tokenizer.json", model_tokenize}},
    {"export", {"a run's trained policy as a Hugging Face folder", export_command}},
};

void print_version() {
  fmt::print("prefopt {}\n", version_string());
  fmt::print("SDK API {}.{}\n", PREFOPT_API_MAJOR, PREFOPT_API_MINOR);
  fmt::print("toolchain {}\n", host_toolchain_fingerprint());
  const bool cuda = torch::cuda::is_available();
  fmt::print("libtorch {}, CUDA {}\n", TORCH_VERSION,
             cuda ? fmt::format("available ({} device(s))", torch::cuda::device_count())
                  : std::string("not available"));
}

int dispatch(int argc, char** argv) {
  const Args words(argv + 1, argv + argc);
  if (words.empty()) throw ConfigError(fmt::format("no command given\n\n{}", kOverview));
  // Options before the command belong to prefopt itself; everything after it to the command, so
  // that `prefopt plugins list --help` is the command's help.
  const std::string& first = words[0];
  if (first == "--version" || first == "-V") {
    print_version();
    return 0;
  }
  if (first == "--help" || first == "-h") {
    fmt::print("{}", kOverview);
    return 0;
  }
  if (first.starts_with("-")) throw ConfigError(fmt::format("unknown option '{}'\n\n{}", first, kOverview));

  // Commands are one or two words ("plugins list"); try the longer first.
  std::vector<std::string> names;
  for (const auto& [name, command] : kCommands) names.push_back(name);
  const bool has_second = words.size() > 1;
  for (const std::string& name : {has_second ? first + " " + words[1] : std::string(), first}) {
    const auto it = kCommands.find(name);
    if (it != kCommands.end())
      return it->second.run(Args(words.begin() + (name == first ? 1 : 2), words.end()));
  }

  // A command group alone ("prefopt plugins") or with --help lists its subcommands.
  std::string group_help;
  for (const auto& [name, command] : kCommands)
    if (name.starts_with(first + " ")) group_help += fmt::format("  {:<15} {}\n", name, command.summary);
  const bool asked_for_help = has_second && (words[1] == "--help" || words[1] == "-h");
  if (!group_help.empty() && (asked_for_help || !has_second)) {
    fmt::print(asked_for_help ? stdout : stderr, "usage: prefopt {} <subcommand>\n\nSubcommands:\n{}",
               first, group_help);
    return asked_for_help ? 0 : static_cast<int>(ExitCode::usage);
  }
  const std::string given = group_help.empty() ? first : first + " " + words[1];
  throw ConfigError(fmt::format("unknown command '{}'{}\n\n{}", given, did_you_mean(given, names),
                                kOverview));
}

}  // namespace
}  // namespace prefopt::cli

int main(int argc, char** argv) {
  // Only the commands that compute pay the second start-up (~0.5 s) a re-execution costs.
  if (argc > 1 && (std::string_view(argv[1]) == "run" || std::string_view(argv[1]) == "trial"))
    prefopt::use_best_openblas_kernels(argv);
  try {
    return prefopt::cli::dispatch(argc, argv);
  } catch (const prefopt::Error& e) {
    fmt::print(stderr, "prefopt: error: {}\n", e.what());
    return static_cast<int>(e.code());
  } catch (const po::error& e) {
    fmt::print(stderr, "prefopt: error: {}\nRun with --help for usage.\n", e.what());
    return static_cast<int>(prefopt::ExitCode::usage);
  } catch (const std::exception& e) {
    fmt::print(stderr, "prefopt: error: {}\n", e.what());
    return static_cast<int>(prefopt::ExitCode::run_failed);
  }
}
