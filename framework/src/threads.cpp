#include "threads.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>
#include <strings.h>
#include <unistd.h>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <cstdlib>
#include <thread>

namespace prefopt {

std::int64_t thread_share(std::int64_t cores, std::int64_t parallel) {
  return std::max<std::int64_t>(1, cores / std::max<std::int64_t>(1, parallel));
}

std::int64_t available_cores() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::thread::hardware_concurrency()));
}

namespace {

// libtorch reaches OpenBLAS through the BLAS interface, which has no thread setting: OpenBLAS's
// own, where it is the BLAS loaded (Debian's libopenblas0-pthread; a PyTorch wheel bundles MKL).
// nullptr where no OpenBLAS is loaded.
template <class F>
F openblas_function(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_DEFAULT, name));
}

using SetThreads = void (*)(int);
SetThreads openblas_set_num_threads() { return openblas_function<SetThreads>("openblas_set_num_threads"); }

using Text = char* (*)();

// Instruction-set levels of OpenBLAS's x86-64 kernels: 0 SSE, 1 AVX, 2 AVX2 + FMA, 3 AVX-512;
// -1 for a name not listed (left alone).
int kernel_level(const char* core) {
  static constexpr std::pair<const char*, int> kLevels[] = {
      {"Prescott", 0},  {"Core2", 0},   {"Penryn", 0},     {"Dunnington", 0}, {"Nehalem", 0},
      {"Atom", 0},      {"Barcelona", 0}, {"Bobcat", 0},   {"Sandybridge", 1}, {"Bulldozer", 1},
      {"Piledriver", 1}, {"Steamroller", 1}, {"Excavator", 1}, {"Haswell", 2},  {"Zen", 2},
      {"SkylakeX", 3},  {"Cooperlake", 3}, {"SapphireRapids", 3}};
  for (const auto& [name, level] : kLevels)
    if (::strcasecmp(core, name) == 0) return level;
  return -1;
}

// The best kernels this CPU runs, with their level.
std::pair<const char*, int> best_kernels_for_this_cpu() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return {"SkylakeX", 3};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"Haswell", 2};
  return {nullptr, 0};
}

constexpr const char* kChosenVariable = "PREFOPT_OPENBLAS_CHOSE";  // what OpenBLAS picked, for the run log

}  // namespace

void use_best_openblas_kernels(char** argv) {
  const auto core = openblas_function<Text>("openblas_get_corename");
  if (core == nullptr || std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::string chosen = core();
  const int level = kernel_level(chosen.c_str());
  const auto [best, best_level] = best_kernels_for_this_cpu();
  if (best == nullptr || level < 0 || level >= best_level) return;
  ::setenv("OPENBLAS_CORETYPE", best, 1);
  ::setenv(kChosenVariable, chosen.c_str(), 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: go on with the kernels there are
  ::unsetenv("OPENBLAS_CORETYPE");
  ::unsetenv(kChosenVariable);
}

std::string blas_description() {
  using Count = int (*)();
  const auto config = openblas_function<Text>("openblas_get_config");
  const auto core = openblas_function<Text>("openblas_get_corename");
  const auto threads = openblas_function<Count>("openblas_get_num_threads");
  if (config == nullptr || core == nullptr || threads == nullptr)
    return fmt::format("{} (in libtorch), {} intra-op threads", at::globalContext().hasMKL() ? "MKL" : "libtorch's own BLAS",
                       at::get_num_threads());
  std::string version = config();
  version = version.substr(0, version.find(' ', version.find(' ') + 1));  // "OpenBLAS 0.3.21"
  std::string how;
  if (const char* chosen = std::getenv(kChosenVariable); chosen != nullptr)
    how = fmt::format(" (OPENBLAS_CORETYPE, set by prefopt: OpenBLAS chose {} for this CPU)", chosen);
  else if (std::getenv("OPENBLAS_CORETYPE") != nullptr)
    how = " (OPENBLAS_CORETYPE)";
  return fmt::format("{}, {} kernels{}, {} threads", version, core(), how, threads());
}

ThreadPlan plan_threads(std::int64_t requested) {
  std::int64_t share = 0;
  std::string reason;
  if (requested > 0) {
    share = requested, reason = fmt::format("runtime.threads = {}", requested);
  } else if (const char* env = std::getenv("OPENBLAS_NUM_THREADS"); env != nullptr && std::atoll(env) > 0) {
    share = std::atoll(env), reason = fmt::format("this trial's share of the cores (OPENBLAS_NUM_THREADS={})", env);
  } else {
    share = available_cores(), reason = fmt::format("every core available ({})", share);
  }
  if (openblas_set_num_threads() == nullptr)
    return {0, share, reason + "; no OpenBLAS loaded, so libtorch's own BLAS gets the intra-op pool"};
  return {share, 1, reason};
}

void apply_threads(const ThreadPlan& plan) {
  at::set_num_threads(static_cast<int>(plan.intra_op));
  if (const SetThreads set = openblas_set_num_threads(); set != nullptr && plan.blas > 0) set(static_cast<int>(plan.blas));
}

}  // namespace prefopt
