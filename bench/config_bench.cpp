// Composing and validating a realistic experiment (5 config groups, 50 keys, interpolations,
// 10 command-line overrides): what `prefopt config` and every trial start pay.
//
//   build/bin/prefopt_bench_config
#include <benchmark/benchmark.h>

#include "config/compose.h"
#include "config/interpolate.h"
#include "config/validate.h"
#include "registry.h"

namespace {

const std::string kExperiment = PREFOPT_BENCH_FIXTURES "/realistic/experiment.toml";
const std::vector<std::string> kOverrides = {
    "train.beta=0.2",       "train=dpo",          "seed=3",           "policy.width=256",
    "data.flip_rate=0.1",   "+train.tag=bench",   "~eval.entropy",    "ensemble.lambda=0.1",
    "runtime.threads=1",    "data.pairs=1_000"};

std::vector<prefopt::config::Override> parse_all() {
  std::vector<prefopt::config::Override> out;
  for (const std::string& text : kOverrides) out.push_back(prefopt::config::parse_override(text));
  return out;
}

void BM_ParseOverrides(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_all());
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kOverrides.size()));
}
BENCHMARK(BM_ParseOverrides)->Unit(benchmark::kMicrosecond);

// Everything from the file on disk to a validated config: load the experiment, parse the
// overrides, compose the defaults list (reads 5 group files), apply, interpolate, validate.
void BM_ComposeAndValidate(benchmark::State& state) {
  prefopt::PluginSearchPath path;
  path.add_default();
  const prefopt::Registry registry = prefopt::Registry::load(path);
  for (auto _ : state) {
    const prefopt::config::Composer composer(kExperiment, {});
    prefopt::config::Node config = composer.compose(parse_all()).config;
    prefopt::config::resolve_interpolations(config);
    prefopt::config::check_experiment(config, registry);
    benchmark::DoNotOptimize(config);
  }
}
BENCHMARK(BM_ComposeAndValidate)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
