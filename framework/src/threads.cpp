#include "threads.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>

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

ThreadPlan plan_threads(std::int64_t requested) {
  if (requested > 0) return {requested, 1, fmt::format("runtime.threads = {}", requested)};
  if (const char* share = std::getenv("OPENBLAS_NUM_THREADS"); share != nullptr && std::atoll(share) > 0)
    return {std::atoll(share), 1, fmt::format("this trial's share of the cores (OPENBLAS_NUM_THREADS={})", share)};
  const std::int64_t cores = available_cores();
  return {cores, 1, fmt::format("every core available ({})", cores)};
}

void apply_threads(const ThreadPlan& plan) {
  at::set_num_threads(static_cast<int>(plan.intra_op));
  // libtorch reaches OpenBLAS through the BLAS interface, which has no thread setting: call
  // OpenBLAS's own where it is the BLAS loaded (Debian's libopenblas0-pthread).
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); set != nullptr)
    set(static_cast<int>(plan.blas));
}

}  // namespace prefopt
