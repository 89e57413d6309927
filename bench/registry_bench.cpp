// Costs of the plugin boundary: loading the registry, looking a plugin up, and calling through a
// plugin interface (non-virtual guard + virtual call across the shared-library boundary) against
// the same tensor operation called directly.
//
//   build/bin/prefopt_bench_registry
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "prefopt/ensemble.h"
#include "registry.h"

namespace {

prefopt::Registry builtin_registry() {
  prefopt::PluginSearchPath path;
  path.add_default();
  return prefopt::Registry::load(path);
}

// Scanning the plugin folder and registering its libraries. Libraries are never unloaded, so
// after the first iteration dlopen only bumps a reference count: this is the steady-state cost a
// second Registry in the same process pays.
void BM_RegistryLoad(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(builtin_registry());
}
BENCHMARK(BM_RegistryLoad)->Unit(benchmark::kMicrosecond);

void BM_RegistryFind(benchmark::State& state) {
  const prefopt::Registry registry = builtin_registry();
  for (auto _ : state)
    benchmark::DoNotOptimize(&registry.find(prefopt::PluginKind::ensemble, "worst_case"));
}
BENCHMARK(BM_RegistryFind);

void BM_RegistryCreate(benchmark::State& state) {
  const prefopt::Registry registry = builtin_registry();
  for (auto _ : state)
    benchmark::DoNotOptimize(registry.create<prefopt::Ensemble>("uncertainty_weighted", {{"lambda", 0.1}}));
}
BENCHMARK(BM_RegistryCreate);

// state.range(0) responses scored by 5 members.
void BM_CombineThroughPlugin(benchmark::State& state) {
  torch::manual_seed(0);
  const prefopt::Registry registry = builtin_registry();
  const auto ensemble = registry.create<prefopt::Ensemble>("mean");
  const at::Tensor scores = torch::randn({5, state.range(0)});
  for (auto _ : state) benchmark::DoNotOptimize(ensemble->combine(scores));
}
BENCHMARK(BM_CombineThroughPlugin)->Arg(1)->Arg(64)->Arg(4096);

void BM_CombineDirect(benchmark::State& state) {
  torch::manual_seed(0);
  const at::Tensor scores = torch::randn({5, state.range(0)});
  for (auto _ : state) benchmark::DoNotOptimize(scores.mean(0));
}
BENCHMARK(BM_CombineDirect)->Arg(1)->Arg(64)->Arg(4096);

}  // namespace

BENCHMARK_MAIN();
