// The Slurm launcher: a sweep's unfinished trials go to the cluster as one job array, and prefopt
// returns; nothing has to watch them.
//
// SWEEP_DIR/slurm/sweep.sbatch runs `prefopt trial SWEEP_DIR $SLURM_ARRAY_TASK_ID` (the array
// index is the trial's index in sweep.json), so results land in the local launcher's layout. The
// script asks for a warning signal before the time limit (--signal=B:USR1@N) and passes it, and
// SIGTERM (scancel, preemption), on to the trial, which saves a checkpoint and stops (exit 75);
// after the warning the task requeues itself, and a requeued task continues from its checkpoint.
// SWEEP_DIR/slurm/submissions.json lists the submitted jobs, so a re-run submits only the trials
// neither finished nor still queued or running.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/node.h"
#include "prefopt/params.h"

namespace prefopt::sweep {

// The [launcher.slurm] table of a sweep file.
const std::vector<ParamSpec>& slurm_params();
// Checks `table` (null: all defaults) against slurm_params(); ConfigError names file:line.
Params slurm_options(const config::Node* table);

// The batch script for the sweep in `sweep_dir`, run by `executable`.
std::string sbatch_script(const std::filesystem::path& sweep_dir, const std::filesystem::path& executable,
                                      const Params& options);

// "0-3,7,9-10"
std::string array_ranges(const std::vector<std::size_t>& indices);

// An array task of the sweep still in Slurm's queue.
struct QueuedTask {
  std::string job;    // the array job's id
  std::string state;  // PENDING, RUNNING, COMPLETING, REQUEUE_HOLD, ...
};

// The sweep's array tasks still known to Slurm's queue, by trial index. Empty when nothing was
// submitted. Throws when squeue fails.
std::map<std::size_t, QueuedTask> queued_trials(const std::filesystem::path& sweep_dir);

// Follows the sweep's array tasks until none is left in Slurm's queue, polling every two seconds
// and calling `status` with a line ("slurm: 3 running, 5 pending, 1 held") whenever the counts
// change. Returns false when it stopped because only held tasks are left (REQUEUE_HOLD,
// SPECIAL_EXIT, held after a failed launch): they wait for a person.
bool follow_queue(const std::filesystem::path& sweep_dir, const std::function<void(const std::string&)>& status);

// Writes the batch script and submits `indices` as one job array; records the job in
// submissions.json and returns its id. Throws with sbatch's message when it refuses.
std::string submit(const std::filesystem::path& sweep_dir, const std::vector<std::size_t>& indices,
                               const std::filesystem::path& executable, const Params& options);

}  // namespace prefopt::sweep
