// SimPO (Meng et al. 2024): a reference-free margin loss on per-token average log-probs,
// −log σ(β (a_w − a_l) − γ), optionally plus α times the chosen responses' NLL.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Simpo final : public Algorithm {
 public:
  explicit Simpo(const Params& params)
      : options_(pair_training_options(params, /*reference=*/false)),
        beta_(params.get<double>("beta")),
        gamma_(params.get<double>("gamma")),
        alpha_(params.get<double>("nll_weight")) {}

 protected:
  void do_run(AlgorithmContext& context) const override {
    train_on_pairs(context, "simpo", options_, [&](const PairBatch& batch, std::map<std::string, double>& diagnostics) {
      const at::Tensor& chosen = batch.chosen.average;
      const at::Tensor& rejected = batch.rejected.average;
      {
        torch::NoGradGuard no_grad;
        diagnostics["chosen_reward"] = (beta_ * chosen).mean().item<double>();
        diagnostics["rejected_reward"] = (beta_ * rejected).mean().item<double>();
        diagnostics["margin"] = (beta_ * (chosen - rejected)).mean().item<double>();
        diagnostics["accuracy"] = chosen.gt(rejected).to(torch::kDouble).mean().item<double>();
      }
      at::Tensor loss = losses::simpo(chosen, rejected, beta_, gamma_);
      if (alpha_ > 0) loss = loss - alpha_ * chosen;
      return loss;
    });
  }

 private:
  PairTrainingOptions options_;
  double beta_;
  double gamma_;
  double alpha_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = pair_training_params(1e-3);
  params.push_back(ParamSpec::real("beta", 2.0, "scale of the average log-prob reward (paper: 2-2.5)").min(1e-6));
  params.push_back(ParamSpec::real("gamma", 1.0, "target reward margin (paper: 0.5-1.5)").min(0.0));
  params.push_back(ParamSpec::real("nll_weight", 0.0, "alpha: weight of the chosen responses' NLL").min(0.0));
  registrar.add<Simpo>({.name = "simpo",
                        .version = "1.0.0",
                        .description = "simple preference optimization: length-normalized margin loss, no reference",
                        .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-simpo", register_plugins)
