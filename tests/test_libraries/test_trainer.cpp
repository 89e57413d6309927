// A loadable algorithm for the sweep launcher's tests: it sleeps `sleep_ms`, then either aborts
// the process (`abort`, as a crashing trial would) or evaluates the untrained policy once.
#include <prefopt/algorithm.h>
#include <prefopt/plugin.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace {

class TestTrainer final : public prefopt::Algorithm {
 public:
  explicit TestTrainer(const prefopt::Params& params)
      : abort_(params.get<bool>("abort")), sleep_ms_(params.get<std::int64_t>("sleep_ms")) {}

 protected:
  void do_run(prefopt::AlgorithmContext& context) const override {
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (abort_) std::abort();
    context.budget.steps = 0;
    prefopt::train(context, "test_trainer", [](std::int64_t) { return prefopt::StepReport{}; });
  }

 private:
  bool abort_;
  std::int64_t sleep_ms_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<TestTrainer>({.name = "test_trainer",
                              .version = "1.0.0",
                              .description = "sleeps, then aborts or evaluates once",
                              .params = {prefopt::ParamSpec::boolean("abort", false, "abort the process"),
                                         prefopt::ParamSpec::integer("sleep_ms", 0, "sleep first").min(0)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-test-trainer", register_plugins)
