#include "sweep/slurm.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "config/validate.h"
#include "files.h"
#include "prefopt/error.h"
#include "process.h"
#include "text.h"

namespace prefopt::sweep {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSlurmHint = "the Slurm launcher needs Slurm's client commands (Debian: slurm-client)";

fs::path submissions_file(const fs::path& sweep_dir) { return sweep_dir / "slurm" / "submissions.json"; }

json read_submissions(const fs::path& sweep_dir) {
  std::ifstream in(submissions_file(sweep_dir));
  return in ? json::parse(in) : json::array();
}

}  // namespace

const std::vector<ParamSpec>& slurm_params() {
  static const std::vector<ParamSpec> params = {
      ParamSpec::string("partition", "", "--partition; empty: the cluster's default"),
      ParamSpec::string("account", "", "--account"),
      ParamSpec::string("qos", "", "--qos"),
      ParamSpec::string("time", "", "--time, the limit of each trial (e.g. \"4:00:00\"); empty: the partition's"),
      ParamSpec::integer("cpus_per_task", 0, "--cpus-per-task; also the trial's threads; 0: the cluster's default").min(0),
      ParamSpec::string("mem", "", "--mem per trial (e.g. \"16G\")"),
      ParamSpec::integer("gpus", 0, "GPUs per trial").min(0),
      ParamSpec::string("gpu_request", "gres", "how GPUs are asked for: --gres=gpu:N or --gpus-per-task=N")
          .one_of({"gres", "gpus-per-task"}),
      ParamSpec::integer("array_parallelism", 0, "trials running at once (the array's %N); 0: no limit").min(0),
      ParamSpec::string("constraint", "", "--constraint (node features)"),
      ParamSpec::string("job_name", "", "--job-name; empty: prefopt-<sweep folder>"),
      ParamSpec::integer("signal_seconds", 120,
                         "send the trial SIGUSR1 this long before its time limit: it checkpoints and requeues; 0: no signal")
          .min(0),
      ParamSpec::boolean("requeue", true, "--requeue: a preempted or failed node's trial goes back into the queue"),
      ParamSpec::string_list("sbatch", {}, "further sbatch options, one per entry (e.g. \"--exclusive\")"),
      ParamSpec::string_list("setup", {}, "shell lines run before the trial (module load ..., source venv/bin/activate)"),
  };
  return params;
}

Params slurm_options(const config::Node* table) {
  config::Node root{config::Table{}, table != nullptr ? table->origin : "defaults"};
  if (table != nullptr) root.table().emplace_back("launcher.slurm", *table);
  const std::vector<config::ValidationProblem> problems = config::validate_sections(root, {{"launcher.slurm", slurm_params()}});
  if (!problems.empty()) {
    std::string message = "invalid [launcher.slurm]:";
    for (const config::ValidationProblem& p : problems) message += fmt::format("\n  {}: {}: {}", p.origin, p.key, p.message);
    throw ConfigError(message);
  }
  auto checked = check_values(slurm_params(), table != nullptr ? config::section_params(*table) : ParamMap{},
                              "[launcher.slurm]");
  return std::get<Params>(std::move(checked));
}

std::string sbatch_script(const fs::path& sweep_dir, const fs::path& executable, const Params& options) {
  const auto text = [&](const char* key) { return options.get<std::string>(key); };
  const auto number = [&](const char* key) { return options.get<std::int64_t>(key); };
  std::string job_name = text("job_name");
  if (job_name.empty()) job_name = "prefopt-" + sweep_dir.filename().string();
  std::vector<std::string> directives = {"--job-name=" + job_name,
                                         "--output=" + (sweep_dir / "slurm" / "%A_%a.out").string(),
                                         "--open-mode=append"};
  for (const char* key : {"partition", "account", "qos", "time", "mem", "constraint"})
    if (!text(key).empty()) directives.push_back(fmt::format("--{}={}", key, text(key)));
  if (number("cpus_per_task") > 0) directives.push_back(fmt::format("--cpus-per-task={}", number("cpus_per_task")));
  if (number("gpus") > 0)
    directives.push_back(text("gpu_request") == "gres" ? fmt::format("--gres=gpu:{}", number("gpus"))
                                                       : fmt::format("--gpus-per-task={}", number("gpus")));
  if (number("signal_seconds") > 0) directives.push_back(fmt::format("--signal=B:USR1@{}", number("signal_seconds")));
  directives.push_back(options.get<bool>("requeue") ? "--requeue" : "--no-requeue");
  for (const std::string& extra : options.get<std::vector<std::string>>("sbatch")) directives.push_back(extra);

  std::string script = "#!/bin/bash\n# Written by prefopt for the sweep in " + sweep_dir.string() +
                       "; submitted as a job array whose index is the trial's index in sweep.json.\n";
  for (const std::string& d : directives) script += "#SBATCH " + d + "\n";
  script += "\n";
  for (const std::string& line : options.get<std::vector<std::string>>("setup")) script += line + "\n";
  script += R"sh(
# One trial per task, its threads from the allocation: OpenBLAS gets the CPUs, libtorch's
# intra-op pool one thread (both at full size oversubscribe the cores). Without
# --cpus-per-task the trial sizes itself from its CPU affinity.
export OMP_NUM_THREADS=1
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then export OPENBLAS_NUM_THREADS="$SLURM_CPUS_PER_TASK"; fi
unset MKL_NUM_THREADS

# The batch shell receives Slurm's signals: SIGUSR1 before the time limit (--signal=B:USR1),
# SIGTERM on scancel, requeue or preemption. Both reach the trial, which saves a checkpoint and
# exits 75.
warned=0
trap 'warned=1; kill -USR1 "$trial" 2>/dev/null' USR1
trap 'kill -TERM "$trial" 2>/dev/null' TERM
)sh";
  script += fmt::format("{} trial {} \"$SLURM_ARRAY_TASK_ID\" &\n", shell_quote(executable.string()),
                        shell_quote(sweep_dir.string()));
  script += R"sh(trial=$!
# `wait` returns early for each trapped signal; once the trial is gone, `wait` gives its status.
while kill -0 "$trial" 2>/dev/null; do wait "$trial"; done
wait "$trial"
status=$?
)sh";
  if (options.get<bool>("requeue"))
    script += R"sh(# Warned of the time limit and stopped with a checkpoint: back into the queue, to continue.
if [ "$status" -eq 75 ] && [ "$warned" -eq 1 ]; then
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
)sh";
  script += "exit \"$status\"\n";
  return script;
}

std::string array_ranges(const std::vector<std::size_t>& indices) {
  std::vector<std::string> parts;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    parts.push_back(j == i ? std::to_string(indices[i]) : fmt::format("{}-{}", indices[i], indices[j]));
    i = j + 1;
  }
  return join(parts, ",");
}

std::map<std::size_t, QueuedTask> queued_trials(const fs::path& sweep_dir) {
  std::set<std::string> jobs;
  for (const json& submission : read_submissions(sweep_dir)) jobs.insert(submission["job_id"].get<std::string>());
  if (jobs.empty()) return {};
  // Every array task on its own line (--array), hidden partitions too (--all):
  // "<array job id> <task id> <state>".
  const ProgramOutput listed = run_program("squeue", {"--noheader", "--all", "--array", "--format=%F %K %T"}, kSlurmHint);
  if (listed.exit_status != 0)
    throw std::runtime_error(fmt::format("squeue failed (exit status {}): {}", listed.exit_status, trim(listed.err)));
  std::map<std::size_t, QueuedTask> queued;
  std::istringstream lines(listed.out);
  for (std::string job, task, state; lines >> job >> task >> state;)
    if (jobs.contains(job) && task.find_first_not_of("0123456789") == std::string::npos)
      queued[std::stoul(task)] = {job, state};
  return queued;
}

std::string submit(const fs::path& sweep_dir, const std::vector<std::size_t>& indices, const fs::path& executable,
                   const Params& options) {
  const fs::path script = sweep_dir / "slurm" / "sweep.sbatch";
  fs::create_directories(script.parent_path());
  write_atomically(script, sbatch_script(sweep_dir, executable, options));
  const std::int64_t parallel = options.get<std::int64_t>("array_parallelism");
  const std::string array = array_ranges(indices) + (parallel > 0 ? fmt::format("%{}", parallel) : "");
  const ProgramOutput submitted = run_program("sbatch", {"--parsable", "--array=" + array, script.string()}, kSlurmHint);
  if (submitted.exit_status != 0)
    throw ConfigError(fmt::format("sbatch refused the sweep's job array (exit status {}): {}\n  script: {}",
                                  submitted.exit_status, trim(submitted.err), script.string()));
  const std::string job_id = trim(submitted.out.substr(0, submitted.out.find(';')));  // "<id>[;<cluster>]"
  json submissions = read_submissions(sweep_dir);
  submissions.push_back({{"job_id", job_id}, {"array", array}, {"indices", indices}, {"submitted_at", unix_time()}});
  write_atomically(submissions_file(sweep_dir), submissions.dump(2) + "\n");
  return job_id;
}

bool follow_queue(const fs::path& sweep_dir, const std::function<void(const std::string&)>& status) {
  std::string last;
  for (std::map<std::size_t, QueuedTask> queued; !(queued = queued_trials(sweep_dir)).empty();) {
    std::map<std::string, std::int64_t> states;
    for (const auto& [index, task] : queued) ++states[task.state];
    std::int64_t held = 0;
    for (const auto& [state, count] : states)
      if (state != "RUNNING" && state != "PENDING" && state != "COMPLETING" && state != "CONFIGURING") held += count;
    const std::string line = fmt::format("slurm: {} running, {} pending{}", states["RUNNING"] + states["COMPLETING"],
                                         states["PENDING"] + states["CONFIGURING"], held > 0 ? fmt::format(", {} held", held) : "");
    if (line != last) status(line);
    last = line;
    if (held == static_cast<std::int64_t>(queued.size())) return false;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  return true;
}

}  // namespace prefopt::sweep
