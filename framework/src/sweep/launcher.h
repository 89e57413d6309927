// The local launcher: runs a sweep's trials as child `prefopt trial SWEEP_DIR INDEX` processes on
// this node.
//
// Every trial is its own process (a crash, an out-of-memory kill or a stuck CUDA context takes
// down one trial), with its output in SWEEP_DIR/<trial>/output.log and a status.json the trial
// writes (the launcher writes it for a trial killed before it could). A trial is finished when
// its summary.json exists (the run writes it last, atomically), so killing the launcher at any
// moment loses nothing that finished: running the sweep again runs only the others, and a trial
// stopped with a checkpoint continues from it. On SIGINT/SIGTERM the launcher sends its trials
// SIGTERM (they checkpoint and stop) and SIGKILL 10 s later. Children die with the launcher
// (PR_SET_PDEATHSIG), so a re-run never races an orphan.
//
// GPU slots: each trial on a GPU holds an exclusive flock on one of K slot files per GPU in a
// node-wide folder (default /tmp/prefopt-gpu-slots); the child inherits the lock, so it is held
// exactly as long as the trial's process lives, whoever started it. Two sweeps on one node thus
// never put more than K trials on a GPU.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sweep/spec.h"

namespace prefopt::sweep {

struct LaunchOptions {
  std::filesystem::path executable = std::filesystem::read_symlink("/proc/self/exe");  // the prefopt binary
  std::int64_t jobs = 1;                   // trials at once
  std::vector<std::string> gpus;           // CUDA device ids; empty: no GPU slots
  std::int64_t per_gpu = 1;                // trials per GPU at once, node-wide
  std::filesystem::path slot_dir = "/tmp/prefopt-gpu-slots";
  std::int64_t cores = 0;                  // threads per trial = max(1, cores / jobs); 0: this machine's
  double timeout_seconds = 0;              // per trial; 0: none
  std::int64_t max_failures = 0;           // stop starting trials after this many failed; 0: never
  std::function<void(const std::string&)> log;     // one line per event
  std::function<void(const std::string&)> status;  // the live status line
};

struct LaunchResult {
  std::int64_t finished = 0;  // including those finished before
  std::int64_t kept = 0;      // finished before this launch
  std::int64_t failed = 0;       // a diverged trial is neither finished nor failed: it ended
  std::int64_t not_started = 0;  // after --max-failures stopped the sweep, or an interrupt
  bool interrupted = false;      // SIGINT or SIGTERM: running trials were stopped
};

// Runs every trial of `trials` (the sweep.json of sweep_dir, in its order) not finished yet into
// sweep_dir/<name>/.
LaunchResult launch(const std::filesystem::path& sweep_dir, const std::vector<TrialSpec>& trials,
                                const LaunchOptions& options);

// The GPU ids of `--gpus`: "0,1,3", or "auto" (CUDA_VISIBLE_DEVICES if set, else the GPUs the
// NVIDIA driver lists). Throws ConfigError when auto finds none.
std::vector<std::string> parse_gpus(const std::string& text);

}  // namespace prefopt::sweep
