// Direct preference optimization and its variants, on the preference pairs with the SFT policy as
// the reference: sigmoid (Rafailov et al. 2023), cdpo (label smoothing), rdpo (Chowdhury et al.
// 2024, unbiased under flips of rate ε), ipo (Azar et al. 2023, on per-token averages), hinge.
#include <prefopt/algorithm.h>
#include <prefopt/losses.h>
#include <torch/torch.h>

namespace {
using namespace prefopt;

class Dpo final : public Algorithm {
 public:
  explicit Dpo(const Params& params)
      : options_(pair_training_options(params, /*reference=*/true)),
        beta_(params.get<double>("beta")),
        loss_(losses::parse_dpo_loss(params.get<std::string>("loss"))),
        label_smoothing_(params.get<double>("label_smoothing")) {
    if (loss_ == losses::DpoLoss::rdpo && label_smoothing_ >= 0.5)
      throw ConfigError("dpo: loss = \"rdpo\" needs label_smoothing < 0.5 (it divides by 1 - 2 * label_smoothing)");
  }

 protected:
  void do_run(AlgorithmContext& context) const override {
    train_on_pairs(context, "dpo", options_, [&](const PairBatch& batch, std::map<std::string, double>& diagnostics) {
      // IPO regresses the per-token average log-ratio margin; the others use sequence sums.
      const bool average = loss_ == losses::DpoLoss::ipo;
      const auto pick = [&](const SequenceLogProbs& lp) { return average ? lp.average : lp.sum; };
      const at::Tensor chosen = pick(batch.chosen), rejected = pick(batch.rejected);
      const at::Tensor ref_chosen = pick(batch.reference_chosen), ref_rejected = pick(batch.reference_rejected);
      {
        torch::NoGradGuard no_grad;
        const at::Tensor chosen_reward = beta_ * (chosen - ref_chosen);  // implicit rewards
        const at::Tensor rejected_reward = beta_ * (rejected - ref_rejected);
        diagnostics["chosen_reward"] = chosen_reward.mean().item<double>();
        diagnostics["rejected_reward"] = rejected_reward.mean().item<double>();
        diagnostics["margin"] = (chosen_reward - rejected_reward).mean().item<double>();
        diagnostics["accuracy"] = chosen_reward.gt(rejected_reward).to(torch::kDouble).mean().item<double>();
      }
      return losses::dpo(chosen, rejected, ref_chosen, ref_rejected, beta_, loss_, label_smoothing_);
    });
  }

 private:
  PairTrainingOptions options_;
  double beta_;
  losses::DpoLoss loss_;
  double label_smoothing_;
};

void register_plugins(Registrar& registrar) {
  std::vector<ParamSpec> params = pair_training_params(1e-3);
  params.push_back(ParamSpec::real("beta", 0.1, "inverse temperature: strength of the tie to the reference").min(1e-6));
  params.push_back(ParamSpec::string("loss", "sigmoid", "sigmoid | cdpo | rdpo | ipo | hinge")
                       .one_of({"sigmoid", "cdpo", "rdpo", "ipo", "hinge"}));
  params.push_back(ParamSpec::real("label_smoothing", 0.0, "ε: the assumed label-flip rate (cdpo, rdpo)").min(0.0).max(0.5));
  registrar.add<Dpo>({.name = "dpo",
                      .version = "1.0.0",
                      .description = "direct preference optimization: sigmoid, cdpo, rdpo, ipo or hinge loss",
                      .params = std::move(params)});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-dpo", register_plugins)
