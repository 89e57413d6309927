// Odds-ratio preference optimization (Hong et al. 2024): the chosen responses' NLL plus λ times
// an odds-ratio term that pushes the rejected responses' odds below the chosen ones'. No
// reference policy. The odds use per-token average log-probs, with log(1 − p) computed stably.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Orpo final : public Algorithm {
 public:
  explicit Orpo(const Params& params)
      : options_(pair_training_options(params, /*reference=*/false)), lambda_(params.get<double>("lambda")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    train_on_pairs(context, "orpo", options_, [&](const PairBatch& batch, std::map<std::string, double>& diagnostics) {
      const at::Tensor nll = -batch.chosen.average;
      const at::Tensor odds_ratio = losses::orpo_odds_ratio(batch.chosen.average, batch.rejected.average);
      {
        torch::NoGradGuard no_grad;
        diagnostics["nll"] = nll.mean().item<double>();
        diagnostics["odds_ratio_loss"] = odds_ratio.mean().item<double>();
        diagnostics["chosen_log_prob"] = batch.chosen.average.mean().item<double>();
        diagnostics["rejected_log_prob"] = batch.rejected.average.mean().item<double>();
        diagnostics["margin"] = (batch.chosen.average - batch.rejected.average).mean().item<double>();
        diagnostics["accuracy"] = batch.chosen.average.gt(batch.rejected.average).to(torch::kDouble).mean().item<double>();
      }
      return nll + lambda_ * odds_ratio;
    });
  }

 private:
  PairTrainingOptions options_;
  double lambda_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = pair_training_params(1e-3);
  params.push_back(ParamSpec::real("lambda", 0.25, "weight of the odds-ratio term beside the NLL (paper: 0.1-0.25)").min(0.0));
  registrar.add<Orpo>({.name = "orpo",
                       .version = "1.0.0",
                       .description = "odds-ratio preference optimization: NLL + lambda * odds-ratio loss, no reference",
                       .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-orpo", register_plugins)
