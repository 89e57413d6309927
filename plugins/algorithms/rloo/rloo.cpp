// REINFORCE leave-one-out (Ahmadian et al. 2024): k responses per prompt; each response's
// baseline is the mean reward of the other k − 1, so no critic is needed. The reward is the proxy
// score minus β times the response's KL to the reference (k1, summed over tokens).
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Rloo final : public Algorithm {
 public:
  explicit Rloo(const Params& params)
      : rollout_(rollout_options(params)),
        learning_rate_(params.get<double>("learning_rate")),
        max_grad_norm_(params.get<double>("max_grad_norm")),
        kl_coef_(params.get<double>("kl_coef")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    torch::optim::AdamW optimizer(context.policy->parameters(), torch::optim::AdamWOptions(learning_rate_));
    TrainingState state;
    state.add("rloo.optimizer", optimizer);
    train(context, "rloo", state, [&](std::int64_t) {
      const Rollout rollout = roll_out(context, rollout_);
      const std::int64_t n = rollout.samples.responses.size(0);
      StepReport report{.samples = n, .diagnostics = {}};
      const at::Tensor kl = losses::kl_k1(rollout.log_probs, rollout.reference_log_probs).sum(1);
      const at::Tensor rewards = rollout.scores - kl_coef_ * kl;
      const at::Tensor advantages = losses::rloo_advantages(rewards.view({rollout_.prompts, rollout_.per_prompt})).view({n});
      // One on-policy REINFORCE step: −E[A · log π(y|x)].
      const at::Tensor log_probs = context.policy->response_log_probs(rollout.samples, context.temperature).sum(1);
      const at::Tensor loss = -(advantages * log_probs).mean();
      report.diagnostics["loss"] = loss.item<double>();
      report.diagnostics["grad_norm"] = apply_gradients(optimizer, loss, max_grad_norm_);
      report.diagnostics["score"] = rollout.scores.mean().item<double>();
      report.diagnostics["rollout_kl"] = kl.mean().item<double>();
      report.diagnostics["advantage_std"] = advantages.std().item<double>();
      report.diagnostics["no_eos_fraction"] = 1.0 - rollout.has_eos.to(torch::kDouble).mean().item<double>();
      return report;
    });
  }

 private:
  RolloutOptions rollout_;
  double learning_rate_, max_grad_norm_, kl_coef_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = rollout_params({.prompts = 16, .per_prompt = 4}, 2);
  params.push_back(ParamSpec::real("learning_rate", 3e-4, "AdamW learning rate").min(0.0));
  params.push_back(ParamSpec::real("max_grad_norm", 1.0, "clip the gradient's global norm to this; 0: no clipping").min(0.0));
  params.push_back(ParamSpec::real("kl_coef", 0.05, "beta: weight of the response's KL in its reward").min(0.0));
  registrar.add<Rloo>({.name = "rloo",
                       .version = "1.0.0",
                       .description = "REINFORCE leave-one-out: k samples per prompt, the others' mean as baseline",
                       .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-rloo", register_plugins)
