// The thread policy: a trial's share of the cores, where its number comes from, and that it is
// applied to libtorch's intra-op pool.
#include <catch2/catch.hpp>

#include <ATen/Parallel.h>
#include <cstdlib>

#include "threads.h"

using namespace prefopt;
using Catch::Contains;

TEST_CASE("parallel trials split the cores, one thread at least", "[threads]") {
  CHECK(thread_share(16, 1) == 16);
  CHECK(thread_share(16, 4) == 4);
  CHECK(thread_share(16, 3) == 5);  // 3 x 5 <= 16
  CHECK(thread_share(2, 8) == 1);
  CHECK(thread_share(8, 0) == 8);
  CHECK(available_cores() >= 1);
}

TEST_CASE("runtime.threads wins, then a launcher's share, then every core", "[threads]") {
  const char* before = std::getenv("OPENBLAS_NUM_THREADS");
  const std::string saved = before != nullptr ? before : "";
  // With OpenBLAS (Debian's libtorch) the share goes to it and the intra-op pool gets one thread;
  // without it (a wheel's libtorch, MKL) the share goes to the intra-op pool.
  const bool openblas = blas_description().starts_with("OpenBLAS");
  const auto share_of = [&](const ThreadPlan& plan) { return openblas ? plan.blas : plan.intra_op; };
  ::setenv("OPENBLAS_NUM_THREADS", "3", 1);
  const ThreadPlan requested = plan_threads(5);
  CHECK(share_of(requested) == 5);
  CHECK((openblas ? requested.intra_op : requested.blas) == (openblas ? 1 : 0));
  CHECK_THAT(requested.reason, Contains("runtime.threads = 5"));
  const ThreadPlan shared = plan_threads(0);
  CHECK(share_of(shared) == 3);
  CHECK_THAT(shared.reason, Contains("OPENBLAS_NUM_THREADS=3"));
  ::unsetenv("OPENBLAS_NUM_THREADS");
  const ThreadPlan all = plan_threads(0);
  CHECK(share_of(all) == available_cores());
  CHECK_THAT(all.reason, Contains("every core"));
  if (before != nullptr) ::setenv("OPENBLAS_NUM_THREADS", saved.c_str(), 1);

  const int intra_op = at::get_num_threads();
  apply_threads({.blas = 2, .intra_op = 1, .reason = ""});  // without OpenBLAS, its number is ignored
  CHECK(at::get_num_threads() == 1);
  CHECK_THAT(blas_description(), Contains(openblas ? "kernels" : "(in libtorch)"));
  at::set_num_threads(intra_op);
}

// test_main.cpp starts every test process through use_best_openblas_kernels, as the prefopt
// binary starts: on a CPU with AVX-512 (or AVX2 and FMA) OpenBLAS must then run kernels for it,
// never the generic SSE3 ones an OpenBLAS older than the CPU falls back to (6x slower here).
TEST_CASE("OpenBLAS runs kernels for this CPU's instruction set", "[runtime][threads]") {
  const std::string blas = blas_description();
  if (!blas.starts_with("OpenBLAS")) return;  // a wheel's libtorch: MKL picks its own kernels
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr && std::getenv("PREFOPT_OPENBLAS_CHOSE") == nullptr)
    return;  // the user's choice, kept
  __builtin_cpu_init();
  INFO(blas);
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq")) {
    CHECK_THAT(blas, Contains("SkylakeX kernels") || Contains("Cooperlake kernels") || Contains("SapphireRapids kernels"));
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    CHECK_THAT(blas, !Contains("Prescott") && !Contains("Nehalem") && !Contains("Core2") && !Contains("Sandybridge"));
  }
}
