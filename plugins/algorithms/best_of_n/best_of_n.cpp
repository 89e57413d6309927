// Best-of-n (no training): sample n responses from the reference policy, keep the proxy reward's
// favourite. KL(best-of-n || reference) = log n - (n - 1) / n exactly (Stiennon et al.), so a list
// of n traces the gold-vs-sqrt(KL) curve of Gao et al. in one run.
#include <prefopt/algorithm.h>
#include <torch/torch.h>

#include <cmath>

namespace {

class BestOfN final : public prefopt::Algorithm {
 public:
  explicit BestOfN(const prefopt::Params& params) : ns_(params.get<std::vector<std::int64_t>>("n")) {}

 protected:
  void do_run(prefopt::AlgorithmContext& context) const override {
    const torch::Tensor& prompts = context.evaluation_prompts;
    const std::int64_t count = prompts.size(0);
    for (std::size_t index = 0; index < ns_.size(); ++index) {
      const std::int64_t n = ns_[index];
      // n candidates per prompt, all scored at once: [n * count] rows, candidate-major.
      const torch::Tensor repeated = prompts.repeat({n, 1});
      const prefopt::Sequences candidates = context.reference->sample(
          repeated, context.response_length, {.temperature = context.temperature}, context.task.eos_token(),
          context.evaluation_generator);
      const torch::Tensor scores = context.proxy_reward(candidates).view({n, count});
      const torch::Tensor best = scores.argmax(0) * count + torch::arange(count, scores.options().dtype(torch::kLong));
      const prefopt::Sequences chosen{candidates.prompts.narrow(0, 0, count), candidates.responses.index_select(0, best),
                                      candidates.lengths.index_select(0, best)};
      const double kl = std::log(static_cast<double>(n)) - static_cast<double>(n - 1) / static_cast<double>(n);
      context.evaluate({static_cast<std::int64_t>(index), "n = " + std::to_string(n), chosen, kl,
                        {{"n", static_cast<double>(n)}}});
    }
  }

 private:
  std::vector<std::int64_t> ns_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<BestOfN>(
      {.name = "best_of_n",
       .version = "1.0.0",
       .description = "sample n from the reference, keep the proxy's favourite; KL = log n - (n-1)/n",
       .params = {prefopt::ParamSpec::integer_list("n", {1, 4, 16, 64}, "the n to evaluate, in order").min(1)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-best-of-n", register_plugins)
