// RLHF with PPO (Ziegler et al. 2019; Ouyang et al. 2022): the policy maximizes the ensemble's
// proxy score minus a per-token KL penalty to the reference, with a separate critic (the SFT
// backbone plus a value head) for generalized advantage estimates, clipped policy and value
// losses, several epochs of minibatches per rollout, and a fixed or adaptive KL coefficient.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

// V(s_t) for every response position t: the state before the response's token t is emitted.
class CriticImpl : public torch::nn::Module {
 public:
  explicit CriticImpl(Policy& sft) {
    backbone_ = register_module("backbone", copy_policy(sft));
    head_ = register_module("head", torch::nn::Linear(sft->hidden_size(), 1));
    torch::NoGradGuard no_grad;
    head_->weight.zero_();
    head_->bias.zero_();
    to(sft->device());
  }

  torch::Tensor forward(const Sequences& s) {  // [batch, response width]
    const std::int64_t prompt = s.prompts.size(1), width = s.responses.size(1);
    const torch::Tensor tokens = torch::cat({s.prompts, s.responses}, 1).narrow(1, 0, prompt + width - 1);
    return head_(backbone_->hidden(tokens).narrow(1, prompt - 1, width)).squeeze(2).to(torch::kFloat);
  }

 private:
  Policy backbone_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Critic);

class Ppo final : public Algorithm {
 public:
  explicit Ppo(const Params& params)
      : rollout_(rollout_options(params)),
        learning_rate_(params.get<double>("learning_rate")),
        critic_learning_rate_(params.get<double>("critic_learning_rate")),
        max_grad_norm_(params.get<double>("max_grad_norm")),
        epochs_(params.get<std::int64_t>("epochs")),
        minibatches_(params.get<std::int64_t>("minibatches")),
        gamma_(params.get<double>("gamma")),
        lambda_(params.get<double>("lambda")),
        clip_(params.get<double>("clip")),
        value_clip_(params.get<double>("value_clip")),
        kl_coef_(params.get<double>("kl_coef")),
        kl_target_(params.get<double>("kl_target")),
        kl_horizon_(params.get<double>("kl_horizon")),
        k3_(params.get<std::string>("kl_estimator") == "k3"),
        whiten_advantages_(params.get<bool>("whiten_advantages")),
        whiten_rewards_(params.get<bool>("whiten_rewards")) {
    if (minibatches_ > rollout_.prompts * rollout_.per_prompt)
      throw ConfigError("ppo: minibatches exceeds the responses per rollout (prompts * per_prompt)");
  }

 protected:
  void do_run(AlgorithmContext& context) const override {
    Critic critic(context.reference);
    torch::optim::AdamW policy_optimizer(context.policy->parameters(), torch::optim::AdamWOptions(learning_rate_));
    torch::optim::AdamW critic_optimizer(critic->parameters(), torch::optim::AdamWOptions(critic_learning_rate_));
    losses::KlController kl_controller(kl_coef_, kl_target_, kl_horizon_);
    double kl_coefficient = kl_controller.coefficient();  // carried through checkpoints
    TrainingState state;
    state.add("ppo.critic", *critic);
    state.add("ppo.policy_optimizer", policy_optimizer);
    state.add("ppo.critic_optimizer", critic_optimizer);
    state.add("ppo.kl_coefficient", kl_coefficient);

    train(context, "ppo", state, [&](std::int64_t) {
      kl_controller.set_coefficient(kl_coefficient);
      const Rollout rollout = roll_out(context, rollout_);
      const std::int64_t n = rollout.samples.responses.size(0);
      const at::Tensor& mask = rollout.mask;
      StepReport report{.samples = n, .diagnostics = {}};
      auto& diagnostics = report.diagnostics;

      at::Tensor advantages, returns, old_values;
      {
        torch::NoGradGuard no_grad;
        old_values = critic->forward(rollout.samples) * mask;
        const at::Tensor kl = (k3_ ? losses::kl_k3(rollout.log_probs, rollout.reference_log_probs)
                                   : losses::kl_k1(rollout.log_probs, rollout.reference_log_probs)) *
                              mask;
        // r_t = −β kl_t, plus the score on each response's last token.
        at::Tensor rewards = -kl_controller.coefficient() * kl;
        rewards.scatter_add_(1, (rollout.samples.lengths - 1).unsqueeze(1), rollout.scores.unsqueeze(1));
        if (whiten_rewards_) rewards = losses::whiten(rewards, mask, /*shift_mean=*/false);
        advantages = losses::gae(rewards, old_values, mask, gamma_, lambda_);
        returns = advantages + old_values;
        if (whiten_advantages_) advantages = losses::whiten(advantages, mask);

        const double sequence_kl = losses::kl_k1(rollout.log_probs, rollout.reference_log_probs).sum(1).mean().item<double>();
        diagnostics["score"] = rollout.scores.mean().item<double>();
        diagnostics["rollout_kl"] = sequence_kl;
        diagnostics["kl_coef"] = kl_controller.coefficient();
        diagnostics["no_eos_fraction"] = 1.0 - rollout.has_eos.to(torch::kDouble).mean().item<double>();
        kl_controller.update(sequence_kl, n);
        kl_coefficient = kl_controller.coefficient();
      }

      const std::int64_t size = n / minibatches_;
      double clip_fraction = 0, approx_kl = 0, policy_loss = 0, value_loss = 0;
      for (std::int64_t epoch = 0; epoch < epochs_; ++epoch) {
        const at::Tensor order = torch::randperm(n, context.generator, torch::kLong);
        for (std::int64_t b = 0; b < minibatches_; ++b) {
          const at::Tensor rows = order.narrow(0, b * size, size).to(mask.device());
          const Sequences batch = select_rows(rollout.samples, rows);
          const at::Tensor batch_mask = mask.index_select(0, rows);
          const losses::ClippedObjective objective = losses::clipped_policy_loss(
              context.policy->response_log_probs(batch, context.temperature), rollout.log_probs.index_select(0, rows),
              advantages.index_select(0, rows), batch_mask, clip_);
          apply_gradients(policy_optimizer, objective.loss, max_grad_norm_);
          const at::Tensor values_loss =
              losses::clipped_value_loss(critic->forward(batch), old_values.index_select(0, rows),
                                         returns.index_select(0, rows), batch_mask, value_clip_);
          apply_gradients(critic_optimizer, values_loss, max_grad_norm_);
          clip_fraction += objective.clip_fraction;
          approx_kl += objective.approx_kl;
          policy_loss += objective.loss.item<double>();
          value_loss += values_loss.item<double>();
        }
      }
      const double updates = static_cast<double>(epochs_ * minibatches_);
      diagnostics["clip_fraction"] = clip_fraction / updates;
      diagnostics["approx_kl"] = approx_kl / updates;
      diagnostics["policy_loss"] = policy_loss / updates;
      diagnostics["value_loss"] = value_loss / updates;
      return report;
    });
  }

 private:
  RolloutOptions rollout_;
  double learning_rate_, critic_learning_rate_, max_grad_norm_;
  std::int64_t epochs_, minibatches_;
  double gamma_, lambda_, clip_, value_clip_;
  double kl_coef_, kl_target_, kl_horizon_;
  bool k3_, whiten_advantages_, whiten_rewards_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = rollout_params({.prompts = 64, .per_prompt = 1}, 1);
  for (ParamSpec spec : {
           ParamSpec::real("learning_rate", 3e-4, "the policy's AdamW learning rate").min(0.0),
           ParamSpec::real("critic_learning_rate", 1e-3, "the critic's AdamW learning rate").min(0.0),
           ParamSpec::real("max_grad_norm", 1.0, "clip each gradient's global norm to this; 0: no clipping").min(0.0),
           ParamSpec::integer("epochs", 4, "passes over each rollout").min(1),
           ParamSpec::integer("minibatches", 4, "minibatches per pass").min(1),
           ParamSpec::real("gamma", 1.0, "discount").min(0.0).max(1.0),
           ParamSpec::real("lambda", 0.95, "GAE lambda").min(0.0).max(1.0),
           ParamSpec::real("clip", 0.2, "policy ratio clip epsilon").min(0.0),
           ParamSpec::real("value_clip", 0.2, "value clip epsilon").min(0.0),
           ParamSpec::real("kl_coef", 0.05, "beta: initial per-token KL penalty coefficient").min(0.0),
           ParamSpec::real("kl_target", 0.0, "adaptive KL: target KL per response; 0 keeps kl_coef fixed").min(0.0),
           ParamSpec::real("kl_horizon", 10000.0, "adaptive KL: horizon in samples").min(1.0),
           ParamSpec::string("kl_estimator", "k1", "per-token KL in the reward: k1 = lp - lr, k3 (non-negative)")
               .one_of({"k1", "k3"}),
           ParamSpec::boolean("whiten_advantages", true, "normalize advantages per rollout"),
           ParamSpec::boolean("whiten_rewards", false, "scale per-token rewards to unit variance per rollout"),
       })
    params.push_back(std::move(spec));
  registrar.add<Ppo>({.name = "ppo",
                      .version = "1.0.0",
                      .description = "RLHF: PPO against the proxy reward with a per-token KL penalty and a critic",
                      .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-ppo", register_plugins)
