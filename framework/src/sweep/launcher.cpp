#include "sweep/launcher.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "files.h"
#include "run_files.h"
#include "prefopt/error.h"
#include "text.h"
#include "threads.h"

extern char** environ;

namespace prefopt::sweep {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int signal) { g_stop_signal = signal; }

// SIGINT/SIGTERM set a flag for the launch loop while it runs; the old handlers come back after.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string duration(double seconds) {
  const auto s = static_cast<std::int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}h{:02}m", s / 3600, s / 60 % 60) : fmt::format("{}m{:02}s", s / 60, s % 60);
}

fs::path slot_file(const LaunchOptions& options, const std::string& gpu, std::int64_t slot) {
  return options.slot_dir / fmt::format("gpu{}-slot{}.lock", gpu, slot);
}

// Every slot file must open before any trial starts: in a folder this user cannot write (another
// user's without mode 1777, a read-only mount) the first trial would fail instead, mid-sweep.
void check_slot_files(const LaunchOptions& options) {
  std::error_code error;
  if (fs::create_directories(options.slot_dir, error)) ::chmod(options.slot_dir.c_str(), 01777);
  for (const std::string& id : options.gpus)
    for (std::int64_t k = 0; k < options.per_gpu; ++k) {
      const fs::path file = slot_file(options, id, k);
      const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
      if (fd < 0) {
        const int cause = errno;
        throw ConfigError(fmt::format("--slot-dir {}: cannot open the GPU slot file {}: {}. Every sweep on the node "
                                      "locks its slots there, so the folder must be writable by all (mode 1777, as "
                                      "the default /tmp/prefopt-gpu-slots is made); pass --slot-dir to use another",
                                      options.slot_dir.string(), file.filename().string(), std::strerror(cause)));
      }
      ::fchmod(fd, 0666);  // the umask took bits other users' sweeps need
      ::close(fd);
    }
}

// An exclusive lock on one of the GPUs' slot files, or nullopt when all are taken. Slot 0 of
// every GPU is tried before slot 1, so trials spread over the GPUs. The trial inherits the lock:
// a slot stays taken while its trial runs, even past a launcher killed with -9.
std::optional<FileLock> acquire_slot(const LaunchOptions& options, std::string& gpu) {
  for (std::int64_t k = 0; k < options.per_gpu; ++k)
    for (const std::string& id : options.gpus) {
      const fs::path file = slot_file(options, id, k);
      // Mode 0666: other users' sweeps on the node share the slots.
      std::optional<FileLock> slot = FileLock::acquire(file, {.wait = false, .inherited = true, .mode = 0666});
      if (slot) {
        gpu = id;
        return slot;
      }
    }
  return std::nullopt;
}

struct Running {
  std::size_t index;
  pid_t pid;
  Clock::time_point start;
  double started_at;  // seconds since the epoch, for status.json
  std::optional<FileLock> slot;  // the GPU slot, held by the launcher and inherited by the trial
  std::string gpu;
  std::optional<Clock::time_point> terminated;  // when SIGTERM was sent
  bool timed_out = false;
};

// The environment of a trial: this one, with its GPU and its share of the cores set (the policy
// is threads.h's). MKL_NUM_THREADS goes: libtorch sizes its intra-op pool from it too (setting it
// to 2 made a trial 2.7x slower).
std::vector<std::string> trial_environment(const std::string& gpu, std::int64_t threads) {
  std::map<std::string, std::string> set = {{"OMP_NUM_THREADS", "1"}, {"OPENBLAS_NUM_THREADS", std::to_string(threads)}};
  if (!gpu.empty()) set["CUDA_VISIBLE_DEVICES"] = gpu;
  std::vector<std::string> out;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string key = text.substr(0, text.find('='));
    if (!set.contains(key) && key != "MKL_NUM_THREADS") out.push_back(text);
  }
  for (const auto& [key, value] : set) out.push_back(key + "=" + value);
  return out;
}

pid_t start_child(const std::vector<std::string>& args, const std::vector<std::string>& environment,
                  const fs::path& log_file) {
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv, envp;
  std::vector<std::string> arg_copies = args, env_copies = environment;
  for (std::string& a : arg_copies) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : env_copies) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string log = log_file.string();
  const pid_t parent = ::getpid();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(fmt::format("cannot start a trial: fork failed ({})", std::strerror(errno)));
  if (pid > 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a trial never outlives its launcher
  if (::getppid() != parent) ::_exit(127);
  ::setpgid(0, 0);  // its own group: a terminal's Ctrl-C reaches the launcher, which stops it
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  const int in = ::open("/dev/null", O_RDONLY);
  if (out < 0 || in < 0) ::_exit(126);
  ::dup2(in, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  ::execve(argv[0], argv.data(), envp.data());
  ::_exit(127);
}

// Signals the trial's process group, or the process itself when it has not made its group yet.
// Never both: the trial leads its group, and a second SIGTERM ends a run without its checkpoint.
void signal_trial(pid_t pid, int signal) {
  if (::kill(-pid, signal) != 0) ::kill(pid, signal);
}

}  // namespace

std::vector<std::string> parse_gpus(const std::string& text) {
  if (text != "auto") {
    std::vector<std::string> ids;
    std::stringstream in(text);
    for (std::string id; std::getline(in, id, ',');) {
      if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw ConfigError(fmt::format("--gpus: '{}' is not a GPU id; write --gpus 0,1 or --gpus auto", id));
      ids.push_back(id);
    }
    if (ids.empty()) throw ConfigError("--gpus needs GPU ids (0,1) or auto");
    return ids;
  }
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"); visible != nullptr && *visible != '\0') {
    std::vector<std::string> ids;
    std::stringstream in(visible);
    for (std::string id; std::getline(in, id, ',');)
      if (!id.empty()) ids.push_back(id);
    return ids;
  }
  std::vector<std::string> ids;
  std::error_code error;
  std::int64_t count = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/driver/nvidia/gpus", error)) ++count;
  for (std::int64_t i = 0; i < count; ++i) ids.push_back(std::to_string(i));
  if (ids.empty())
    throw ConfigError("--gpus auto: no GPU found (no CUDA_VISIBLE_DEVICES, no /proc/driver/nvidia/gpus); "
                      "run without --gpus to use the CPU");
  return ids;
}

LaunchResult launch(const fs::path& sweep_dir, const std::vector<TrialSpec>& trials, const LaunchOptions& options) {
  const auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const std::int64_t jobs = std::max<std::int64_t>(1, options.jobs);
  const std::int64_t cores =
      options.cores > 0 ? options.cores : available_cores();
  const std::int64_t threads = thread_share(cores, std::min<std::int64_t>(jobs, std::max<std::size_t>(trials.size(), 1)));
  if (!options.gpus.empty()) check_slot_files(options);

  LaunchResult result;
  std::deque<std::size_t> queue;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    if (run_files::finished(sweep_dir / trials[i].name)) {
      ++result.kept;
      continue;
    }
    queue.push_back(i);
  }
  result.finished = result.kept;
  if (result.kept > 0) log(fmt::format("{} of {} trials finished before; kept", result.kept, trials.size()));
  log(fmt::format("{} trials to run, {} at a time, {} thread{} each{}", queue.size(), jobs, threads, threads == 1 ? "" : "s",
                  options.gpus.empty() ? ""
                                       : fmt::format(", on GPUs {} with {} per GPU (slots in {})", join(options.gpus, ","),
                                                     options.per_gpu, options.slot_dir.string())));

  const StopSignals stop_signals;
  std::vector<Running> running;
  const auto started = Clock::now();
  std::int64_t completed_now = 0;
  bool stopping = false;
  while (!queue.empty() || !running.empty()) {
    if (g_stop_signal != 0 && !result.interrupted) {
      result.interrupted = true;
      log(fmt::format("interrupted: stopping {} running trial{}", running.size(), running.size() == 1 ? "" : "s"));
      for (Running& r : running) {
        signal_trial(r.pid, SIGTERM);
        r.terminated = Clock::now();
      }
    }
    while (!result.interrupted && !stopping && static_cast<std::int64_t>(running.size()) < jobs && !queue.empty()) {
      std::string gpu;
      std::optional<FileLock> slot;
      if (!options.gpus.empty() && !(slot = acquire_slot(options, gpu))) break;  // all slots taken: wait
      const std::size_t index = queue.front();
      queue.pop_front();
      const TrialSpec& trial = trials[index];
      const fs::path dir = sweep_dir / trial.name;
      fs::create_directories(dir);
      const std::vector<std::string> args = {options.executable.string(), "trial", sweep_dir.string(), std::to_string(index)};
      const pid_t pid = start_child(args, trial_environment(gpu, threads), dir / "output.log");
      running.push_back({index, pid, Clock::now(), unix_time(), std::move(slot), gpu, std::nullopt, false});
      log(fmt::format("started {}{}", join(trial.swept, " "), gpu.empty() ? "" : " on GPU " + gpu));
    }

    int wait_status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &wait_status, WNOHANG)) > 0;) {
      const auto it = std::find_if(running.begin(), running.end(), [&](const Running& r) { return r.pid == pid; });
      if (it == running.end()) continue;
      const TrialSpec& trial = trials[it->index];
      const fs::path dir = sweep_dir / trial.name;
      const double seconds = std::chrono::duration<double>(Clock::now() - it->start).count();
      const bool exited = WIFEXITED(wait_status);
      const int exit_status = exited ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
      const bool finished = exited && exit_status == 0 && run_files::finished(dir);
      // The trial wrote its status.json, unless it was killed first (it still says "running") or
      // never got to it (it holds an earlier attempt's, or nothing); a timeout is the launcher's to say.
      json status = run_files::read_status(dir);
      if (!status.is_object()) status = {{"name", trial.name}, {"overrides", trial.overrides}, {"started_at", it->started_at}};
      const bool reported = status.value("pid", 0) == pid && status.value("state", "") != "running";
      if (!reported) {
        status["state"] = "failed";
        status["pid"] = pid;
        status["exit_status"] = exit_status;
        status["signal"] = exited ? json(nullptr) : json(strsignal(WTERMSIG(wait_status)));
        status["ended_at"] = unix_time();
        status["seconds"] = seconds;
        status["log_tail"] = last_lines(dir / "output.log", 20);
      }
      if (it->timed_out) status["timed_out"] = true;
      run_files::write_status(dir, status);
      it->slot.reset();
      ++completed_now;
      if (finished) {
        ++result.finished;
        log(fmt::format("finished {} in {}", join(trial.swept, " "), duration(seconds)));
      } else if (const json summary = run_files::read_summary(dir); run_files::ending(summary) == "diverged") {
        log(fmt::format("DIVERGED {}: {}", join(trial.swept, " "), summary["diverged"].get<std::string>()));
      } else if (!result.interrupted) {
        ++result.failed;
        log(fmt::format("FAILED {} ({}); see {}", join(trial.swept, " "),
                        it->timed_out ? fmt::format("timed out after {}", duration(options.timeout_seconds))
                                      : fmt::format("exit status {}", exit_status),
                        (dir / "output.log").string()));
        if (options.max_failures > 0 && result.failed >= options.max_failures && !stopping) {
          stopping = true;
          log(fmt::format("{} trials failed (--max-failures {}): starting no more", result.failed, options.max_failures));
        }
      }
      running.erase(it);
    }

    const auto now = Clock::now();
    for (Running& r : running) {
      if (options.timeout_seconds > 0 && !r.terminated &&
          std::chrono::duration<double>(now - r.start).count() > options.timeout_seconds) {
        r.timed_out = true;
        r.terminated = now;
        signal_trial(r.pid, SIGTERM);
      }
      if (r.terminated && now - *r.terminated > std::chrono::seconds(10)) signal_trial(r.pid, SIGKILL);
    }

    if (options.status) {
      const double elapsed = std::chrono::duration<double>(now - started).count();
      const std::int64_t left = static_cast<std::int64_t>(queue.size() + running.size());
      const std::string eta = completed_now > 0 && left > 0
                                  ? ", ETA " + duration(elapsed / static_cast<double>(completed_now) *
                                                        static_cast<double>(left) / static_cast<double>(jobs))
                                  : "";
      options.status(fmt::format("sweep: {} done, {} running, {} failed, {} queued; {} elapsed{}", result.finished,
                                 running.size(), result.failed, queue.size(), duration(elapsed), eta));
    }
    if (!running.empty() || !queue.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (result.interrupted || stopping) {
      result.not_started += static_cast<std::int64_t>(queue.size());
      queue.clear();
    }
  }
  return result;
}

}  // namespace prefopt::sweep
