// RAFT, reward-ranked fine-tuning (Dong et al. 2023): each step samples k responses to each of a
// batch of fresh prompts, keeps the one the proxy reward ranks first, and takes a supervised step
// (negative log-likelihood per token) on the kept responses. No reference term: the policy drifts
// from the reference only as far as the kept samples lead it. Written against the public SDK only.
#include <prefopt/algorithm.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Raft final : public Algorithm {
 public:
  explicit Raft(const Params& params)
      : rollout_(rollout_options(params)),
        learning_rate_(params.get<double>("learning_rate")),
        max_grad_norm_(params.get<double>("max_grad_norm")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    torch::optim::AdamW optimizer(context.policy->parameters(), torch::optim::AdamWOptions(learning_rate_));
    TrainingState state;
    state.add("raft.optimizer", optimizer);
    train(context, "raft", state, [&](std::int64_t) {
      const Rollout rollout = roll_out(context, rollout_);
      const at::Tensor best = group_extremes(rollout.scores, rollout_.per_prompt).best;
      const Sequences kept = select_rows(rollout.samples, best);
      const at::Tensor loss = -sequence_log_probs(context.policy, kept, context.temperature).average.mean();
      StepReport report{.samples = rollout.samples.responses.size(0), .diagnostics = {}};
      report.diagnostics["loss"] = loss.item<double>();
      report.diagnostics["grad_norm"] = apply_gradients(optimizer, loss, max_grad_norm_);
      report.diagnostics["score"] = rollout.scores.mean().item<double>();
      report.diagnostics["kept_score"] = rollout.scores.index_select(0, best).mean().item<double>();
      return report;
    });
  }

 private:
  RolloutOptions rollout_;
  double learning_rate_, max_grad_norm_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = rollout_params({.prompts = 16, .per_prompt = 4}, 2);
  params.push_back(ParamSpec::real("learning_rate", 1e-4, "AdamW learning rate").min(0.0));
  params.push_back(ParamSpec::real("max_grad_norm", 1.0, "clip the gradient's global norm to this; 0: no clipping").min(0.0));
  registrar.add<Raft>({.name = "raft",
                       .version = "1.0.0",
                       .description = "reward-ranked fine-tuning: supervised steps on the proxy's best of k samples",
                       .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("example-algorithm-raft", register_plugins)
