// What the benchmarks with a summary table share: the model FLOPs of a policy training step and
// a reporter that keeps each run's time and FLOP rate.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace prefopt::bench {

// The model FLOPs of one training step (forward, backward = 2x forward) of a policy on `batch`
// sequences of `time` tokens: per token and block 24 w^2 (qkv, projection, MLP) + 4 T w
// (attention scores and mixing), plus the head's 2 w V.
inline double training_step_flops(std::int64_t batch, std::int64_t time, std::int64_t width, std::int64_t depth,
                                  std::int64_t vocab) {
  const double w = static_cast<double>(width), t = static_cast<double>(time);
  const double forward = static_cast<double>(batch) * t *
                         (static_cast<double>(depth) * (24 * w * w + 4 * t * w) + 2 * w * static_cast<double>(vocab));
  return 3 * forward;
}

// Keeps every run's real time per iteration and FLOP rate (per wall-clock second) for the
// summary table, by the benchmark's name (function name, or the name given at registration)
// and argument; with repetitions, the medians.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate ? run.aggregate_name != "median" : run.repetitions > 1) continue;
      const std::string name = run.run_name.function_name;
      const std::int64_t argument = run.run_name.args.empty() ? 0 : std::stoll(run.run_name.args);
      seconds[{name, argument}] = run.GetAdjustedRealTime() / 1e3;  // the unit is ms
      for (const auto& [counter, value] : run.counters) counters[{name, argument}][counter] = value.value;
      if (const auto flops = run.counters.find("FLOPs"); flops != run.counters.end())
        flop_rate[{name, argument}] = flops->second.value;
    }
  }
  std::map<std::pair<std::string, std::int64_t>, double> seconds, flop_rate;
  std::map<std::pair<std::string, std::int64_t>, std::map<std::string, double>> counters;
};

}  // namespace prefopt::bench
