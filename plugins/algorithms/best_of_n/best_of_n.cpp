// Best-of-n (no training): sample n responses from the reference policy, keep the proxy reward's
// favourite, for each n of a list: one run traces the gold-vs-sqrt(KL) curve of Gao et al.
//
// KL. The usual log n - (n - 1)/n is an upper bound (Beirami et al. 2024), reached only when no
// response has noticeable probability; the synthetic task's short responses repeat often, so it
// can overstate the KL a lot. It is reported as the diagnostic kl_bound; the row's kl is estimated
// from samples. With F(r) = P_ref(R < r) and p = pi_ref(y), best-of-n gives the response y of
// proxy score r probability (F + p)^n - F^n (distinct responses having distinct scores), so
//
//   KL = E_{y ~ best-of-n} [ log(((F + p)^n - F^n) / p) ],
//
// averaged over the chosen responses, p exact from the reference's log-probs, F counted in a
// fresh pool of `kl_pool` reference samples per prompt: the count's noise widens kl_se (about
// sqrt(n / kl_pool) nats per prompt) and biases the estimate by O(1 / kl_pool). The pool does not
// depend on the list of n, so a longer list leaves the earlier rows as they were.
#include <prefopt/algorithm.h>
#include <prefopt/error.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace {

// log(1 - exp(t)) for t <= 0, accurate at both ends.
double log1mexp(double t) { return t > -std::log(2.0) ? std::log(-std::expm1(t)) : std::log1p(-std::exp(t)); }

// log(((F + p)^n - F^n) / p): the log-ratio best-of-n / reference of a response of probability p
// (log_p) with a fraction F (`below`) of the reference's mass scoring below it; in logs, since p
// can be far below the smallest double.
double log_ratio(std::int64_t n, double below, double log_p) {
  if (n == 1) return 0.0;
  const double nd = static_cast<double>(n), log_below = std::log(below);
  // log(F + p) and n (log F - log(F + p)), the latter without cancelling when p << F.
  double log_upto, t;
  if (log_below > log_p) {
    const double gap = std::log1p(std::exp(log_p - log_below));
    log_upto = log_below + gap;
    t = -nd * gap;
  } else {
    log_upto = log_p + std::log1p(std::exp(log_below - log_p));
    t = nd * (log_below - log_upto);
  }
  return nd * log_upto + log1mexp(t) - log_p;
}

class BestOfN final : public prefopt::Algorithm {
 public:
  explicit BestOfN(const prefopt::Params& params)
      : ns_(params.get<std::vector<std::int64_t>>("n")), pool_(params.get<std::int64_t>("kl_pool")) {
    if (ns_.empty()) throw prefopt::ConfigError("algorithm.n: best_of_n needs at least one n, e.g. algorithm.n=[1,4,16]");
  }

 protected:
  void do_run(prefopt::AlgorithmContext& context) const override {
    const torch::Tensor& prompts = context.evaluation_prompts;
    const std::int64_t count = prompts.size(0);
    // The pool comes from the training generator (best-of-n trains nothing), so its size leaves
    // the candidates, drawn from the evaluation generator, as they are.
    const Pool pool = sample_pool(context);
    for (std::size_t index = 0; index < ns_.size(); ++index) {
      const std::int64_t n = ns_[index];
      // n candidates per prompt, all scored at once: [n * count] rows, candidate-major.
      const prefopt::Sequences candidates = sample(context, prompts.repeat({n, 1}), context.evaluation_generator);
      const torch::Tensor scores = context.proxy_reward(candidates).view({n, count});
      const torch::Tensor best = scores.argmax(0) * count + torch::arange(count, scores.options().dtype(torch::kLong));
      const prefopt::Sequences chosen{candidates.prompts.narrow(0, 0, count), candidates.responses.index_select(0, best),
                                      candidates.lengths.index_select(0, best)};
      const auto [kl, kl_se] = estimate_kl(context, n, chosen, scores.amax(0), pool);
      const double bound = std::log(static_cast<double>(n)) - static_cast<double>(n - 1) / static_cast<double>(n);
      context.evaluate({.step = static_cast<std::int64_t>(index),
                        .label = "n = " + std::to_string(n),
                        .responses = chosen,
                        .kl = kl,
                        .kl_se = kl_se,
                        .diagnostics = {{"n", static_cast<double>(n)}, {"kl_bound", bound}}});
    }
  }

 private:
  struct Pool {
    torch::Tensor responses;  // [kl_pool, prompts, width]
    torch::Tensor scores;     // [kl_pool, prompts], the proxy's
  };

  static prefopt::Sequences sample(prefopt::AlgorithmContext& context, const torch::Tensor& prompts,
                                   at::Generator& generator) {
    return context.reference->sample(prompts, context.response_length, {.temperature = context.temperature},
                                     context.task.eos_token(), generator);
  }

  // kl_pool reference samples per prompt, drawn and scored a few repetitions at a time to bound
  // the memory.
  Pool sample_pool(prefopt::AlgorithmContext& context) const {
    const torch::Tensor& prompts = context.evaluation_prompts;
    std::vector<torch::Tensor> responses, scores;
    for (std::int64_t done = 0; done < pool_;) {
      const std::int64_t repeats = std::min<std::int64_t>(pool_ - done, 64);
      const prefopt::Sequences drawn = sample(context, prompts.repeat({repeats, 1}), context.generator);
      responses.push_back(drawn.responses.view({repeats, prompts.size(0), -1}));
      scores.push_back(context.proxy_reward(drawn).view({repeats, prompts.size(0)}));
      done += repeats;
    }
    return {torch::cat(responses), torch::cat(scores)};
  }

  // The KL estimate and its standard error over the prompts; `best` [prompts] are the chosen
  // responses' proxy scores. F is (1 - p) times the fraction of the pool's other responses that
  // score lower: p is known exactly, and so F + p <= 1 holds without clamping the count's noise
  // (a clamp would bias the estimate low whenever the chosen response is the top one). Other
  // responses are told apart by their tokens: the same tokens can score a rounding apart in
  // another batch.
  std::pair<double, double> estimate_kl(prefopt::AlgorithmContext& context, std::int64_t n,
                                        const prefopt::Sequences& chosen, const torch::Tensor& best,
                                        const Pool& pool) const {
    const torch::Tensor log_p =
        context.reference->response_log_probs(chosen, context.temperature).sum(1).to(torch::kCPU, torch::kDouble);
    const torch::Tensor other = pool.responses.ne(chosen.responses.unsqueeze(0)).any(2);
    const torch::Tensor lower = (pool.scores.lt(best.unsqueeze(0)) & other).sum(0).to(torch::kCPU, torch::kDouble);
    const torch::Tensor others = other.sum(0).to(torch::kCPU, torch::kDouble).clamp_min(1.0);
    const torch::Tensor lower_share = lower / others;
    const auto lp = log_p.accessor<double, 1>();
    const auto share = lower_share.accessor<double, 1>();
    torch::Tensor ratios = torch::empty({log_p.size(0)}, torch::kDouble);
    auto out = ratios.accessor<double, 1>();
    for (std::int64_t i = 0; i < log_p.size(0); ++i) out[i] = log_ratio(n, share[i] * -std::expm1(lp[i]), lp[i]);
    const double se = ratios.size(0) > 1 ? ratios.std().item<double>() / std::sqrt(static_cast<double>(ratios.size(0))) : 0.0;
    return {ratios.mean().item<double>(), se};
  }

  std::vector<std::int64_t> ns_;
  std::int64_t pool_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<BestOfN>(
      {.name = "best_of_n",
       .version = "1.1.0",
       .description = "sample n from the reference, keep the proxy's favourite; KL estimated from samples, "
                      "beside the bound log n - (n-1)/n",
       .params = {prefopt::ParamSpec::integer_list("n", {1, 4, 16, 64}, "the n to evaluate, in order").min(1),
                  prefopt::ParamSpec::integer("kl_pool", 256, "reference samples per prompt for the KL estimate")
                      .min(1)}});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-algorithm-best-of-n", register_plugins)
