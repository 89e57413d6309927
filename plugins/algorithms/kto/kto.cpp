// KTO (Ethayarajh et al. 2024) from the preference pairs split into desirable (chosen) and
// undesirable (rejected) examples. The reference point z₀ is the policy's KL to the reference
// estimated on mismatched (prompt, response) pairs of the batch, detached and clamped at 0.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Kto final : public Algorithm {
 public:
  explicit Kto(const Params& params)
      : options_(pair_training_options(params, /*reference=*/true)),
        beta_(params.get<double>("beta")),
        desirable_weight_(params.get<double>("desirable_weight")),
        undesirable_weight_(params.get<double>("undesirable_weight")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    train_on_pairs(context, "kto", options_, [&](const PairBatch& batch, std::map<std::string, double>& diagnostics) {
      const std::int64_t n = batch.pairs.size();
      const at::Tensor log_ratio = torch::cat({batch.chosen.sum - batch.reference_chosen.sum,
                                               batch.rejected.sum - batch.reference_rejected.sum});
      const auto bools = torch::TensorOptions(log_ratio.device()).dtype(torch::kBool);
      const at::Tensor desirable = torch::cat({torch::ones({n}, bools), torch::zeros({n}, bools)});
      // Mismatched pairs: each prompt with the next pair's chosen response.
      double z0 = 0.0;
      {
        torch::NoGradGuard no_grad;
        const Sequences& chosen = batch.pairs.chosen;
        const Sequences mismatched{chosen.prompts, chosen.responses.roll(1, 0), chosen.lengths.roll(1, 0)};
        z0 = losses::kto_reference_point(sequence_log_probs(context.policy, mismatched, context.temperature).sum -
                                         sequence_log_probs(context.reference, mismatched, context.temperature).sum);
        diagnostics["kl_reference_point"] = z0;
        diagnostics["chosen_reward"] = (beta_ * log_ratio.narrow(0, 0, n)).mean().item<double>();
        diagnostics["rejected_reward"] = (beta_ * log_ratio.narrow(0, n, n)).mean().item<double>();
        diagnostics["margin"] = diagnostics["chosen_reward"] - diagnostics["rejected_reward"];
      }
      return losses::kto(log_ratio, desirable, z0, beta_, desirable_weight_, undesirable_weight_);
    });
  }

 private:
  PairTrainingOptions options_;
  double beta_;
  double desirable_weight_;
  double undesirable_weight_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = pair_training_params(1e-3);
  params.push_back(ParamSpec::real("beta", 0.1, "inverse temperature of the value function").min(1e-6));
  params.push_back(ParamSpec::real("desirable_weight", 1.0, "lambda_D: weight of desirable examples").min(0.0));
  params.push_back(ParamSpec::real("undesirable_weight", 1.0, "lambda_U: weight of undesirable examples").min(0.0));
  registrar.add<Kto>({.name = "kto",
                      .version = "1.0.0",
                      .description = "Kahneman-Tversky optimization on the pairs split into desirable and undesirable",
                      .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-kto", register_plugins)
