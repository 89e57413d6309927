// Group relative policy optimization (Shao et al. 2024): g responses per prompt, each advantage
// the response's score standardized within its group, PPO's clipped objective on every token,
// and the KL to the reference in the loss (k3 estimator) rather than in the reward.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Grpo final : public Algorithm {
 public:
  explicit Grpo(const Params& params)
      : rollout_(rollout_options(params)),
        learning_rate_(params.get<double>("learning_rate")),
        max_grad_norm_(params.get<double>("max_grad_norm")),
        epochs_(params.get<std::int64_t>("epochs")),
        clip_(params.get<double>("clip")),
        kl_coef_(params.get<double>("kl_coef")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    torch::optim::AdamW optimizer(context.policy->parameters(), torch::optim::AdamWOptions(learning_rate_));
    TrainingState state;
    state.add("grpo.optimizer", optimizer);
    train(context, "grpo", state, [&](std::int64_t) {
      const Rollout rollout = roll_out(context, rollout_);
      const std::int64_t n = rollout.samples.responses.size(0);
      StepReport report{.samples = n, .diagnostics = {}};
      auto& diagnostics = report.diagnostics;
      const at::Tensor advantages =
          losses::grpo_advantages(rollout.scores.view({rollout_.prompts, rollout_.per_prompt})).view({n, 1});
      double clip_fraction = 0, kl = 0, loss_sum = 0;
      for (std::int64_t epoch = 0; epoch < epochs_; ++epoch) {
        const at::Tensor log_probs = context.policy->response_log_probs(rollout.samples, context.temperature);
        const losses::ClippedObjective objective = losses::clipped_policy_loss(
            log_probs, rollout.log_probs, advantages.expand_as(log_probs), rollout.mask, clip_);
        const at::Tensor penalty = losses::masked_mean(losses::kl_k3(log_probs, rollout.reference_log_probs), rollout.mask);
        const at::Tensor loss = objective.loss + kl_coef_ * penalty;
        diagnostics["grad_norm"] += apply_gradients(optimizer, loss, max_grad_norm_) / static_cast<double>(epochs_);
        clip_fraction += objective.clip_fraction;
        kl += penalty.item<double>();
        loss_sum += loss.item<double>();
      }
      diagnostics["loss"] = loss_sum / static_cast<double>(epochs_);
      diagnostics["clip_fraction"] = clip_fraction / static_cast<double>(epochs_);
      diagnostics["token_kl_k3"] = kl / static_cast<double>(epochs_);
      diagnostics["score"] = rollout.scores.mean().item<double>();
      diagnostics["no_eos_fraction"] = 1.0 - rollout.has_eos.to(torch::kDouble).mean().item<double>();
      return report;
    });
  }

 private:
  RolloutOptions rollout_;
  double learning_rate_, max_grad_norm_;
  std::int64_t epochs_;
  double clip_, kl_coef_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = rollout_params({.prompts = 8, .per_prompt = 8}, 2);
  params.push_back(ParamSpec::real("learning_rate", 3e-4, "AdamW learning rate").min(0.0));
  params.push_back(ParamSpec::real("max_grad_norm", 1.0, "clip the gradient's global norm to this; 0: no clipping").min(0.0));
  params.push_back(ParamSpec::integer("epochs", 1, "gradient steps per rollout (mu)").min(1));
  params.push_back(ParamSpec::real("clip", 0.2, "policy ratio clip epsilon").min(0.0));
  params.push_back(ParamSpec::real("kl_coef", 0.04, "beta: weight of the k3 KL term in the loss").min(0.0));
  registrar.add<Grpo>({.name = "grpo",
                       .version = "1.0.0",
                       .description = "group relative policy optimization: group-standardized advantages, KL in the loss",
                       .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-grpo", register_plugins)
