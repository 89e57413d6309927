// Threads: one policy for every process that computes (a single `prefopt run`, a local launcher's
// trial, a Slurm array task).
//
// A trial computes with two thread pools: OpenBLAS's (matrix products) and libtorch's intra-op
// pool (elementwise work, reductions). Both at full size oversubscribe the cores: measured on 2
// cores, a 20-step PPO trial takes 9.3 s with OpenBLAS at 2 threads and the intra-op pool at 1,
// 10.2 s with the libraries' defaults, 11.0 s the other way round and 29.0 s with both at 2. So a
// trial's share of the cores goes to OpenBLAS and the intra-op pool gets one thread; trials in
// parallel split the cores (share = cores / trials), so trials × threads never exceed the cores.
#pragma once

#include <cstdint>
#include <string>

namespace prefopt {

// One of `parallel` trials' share of `cores`: max(1, cores / parallel).
std::int64_t thread_share(std::int64_t cores, std::int64_t parallel);

// The cores this process may run on (its CPU affinity, as Slurm and taskset restrict it).
std::int64_t available_cores();

struct ThreadPlan {
  std::int64_t blas = 1;      // OpenBLAS threads; 0 where no OpenBLAS is loaded
  std::int64_t intra_op = 1;  // libtorch intra-op threads
  std::string reason;         // for the run log: where the number came from
};

// `runtime.threads` when positive; otherwise the share a launcher gave this trial
// (OPENBLAS_NUM_THREADS: the local launcher's cores / jobs, Slurm's cpus per task); otherwise
// every available core. Without OpenBLAS in the process, the share goes to the intra-op pool.
ThreadPlan plan_threads(std::int64_t requested);

// Sizes both pools for this process.
void apply_threads(const ThreadPlan& plan);

// OpenBLAS picks its kernels for the CPU when it loads, and a release older than the CPU falls
// back to generic SSE3 kernels: Debian 12's OpenBLAS 0.3.21 runs "Prescott" kernels on Emerald
// Rapids Xeons (family 6, model 207), where a 1024³ float matrix product reaches 12.5 GFLOP/s on
// one core against 75 with the AVX-512 ("SkylakeX") kernels. When the loaded OpenBLAS chose
// kernels for a lesser instruction set than this CPU has (AVX-512, or AVX2 with FMA), and
// OPENBLAS_CORETYPE is unset, re-executes this program with OPENBLAS_CORETYPE naming the right
// ones: OpenBLAS reads it only as it loads, before main. Returns otherwise (a user's own
// OPENBLAS_CORETYPE is kept; children inherit the setting, so they never re-execute).
void use_best_openblas_kernels(char** argv);

// The BLAS that libtorch's CPU matrix products reach, as this process runs it, for run.log and
// the benchmark reports: "OpenBLAS 0.3.21, Cooperlake kernels, 2 threads" (the kernels OpenBLAS
// picked for this CPU, or OPENBLAS_CORETYPE's), or "MKL (in libtorch), 2 OpenMP threads".
std::string blas_description();

}  // namespace prefopt
