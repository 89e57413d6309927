#include "threads.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>

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

}  // namespace

std::string blas_description() {
  using Text = char* (*)();
  using Count = int (*)();
  const auto config = openblas_function<Text>("openblas_get_config");
  const auto core = openblas_function<Text>("openblas_get_corename");
  const auto threads = openblas_function<Count>("openblas_get_num_threads");
  if (config == nullptr || core == nullptr || threads == nullptr)
    return fmt::format("{} (in libtorch), {} intra-op threads", at::globalContext().hasMKL() ? "MKL" : "libtorch's own BLAS",
                       at::get_num_threads());
  std::string version = config();
  version = version.substr(0, version.find(' ', version.find(' ') + 1));  // "OpenBLAS 0.3.21"
  return fmt::format("{}, {} kernels{}, {} threads", version, core(),
                     std::getenv("OPENBLAS_CORETYPE") != nullptr ? " (OPENBLAS_CORETYPE)" : "", threads());
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
