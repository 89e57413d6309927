// A pool of simulated annotators who disagree for real reasons (AlpacaFarm's annotator pool):
// each weighs the gold reward's attributes differently (one values valence, another concision),
// may prefer longer or shorter answers, and is reliable only part of the time (otherwise it
// answers at random). Each pair gets `votes_per_pair` votes from distinct annotators, chosen by a
// seeded hash of its prompt (as AlpacaFarm assigns prompts) or at random; every vote records who
// gave it, and `aggregation` turns the votes into one label: majority vote, or consensus — keep
// only the pairs all voters agree on, the usual "require agreement" baseline.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <prefopt/annotator.h>

#include <stdexcept>

namespace {

using prefopt::ParamSpec;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

class PoolAnnotator final : public prefopt::Annotator {
 public:
  explicit PoolAnnotator(const prefopt::Params& params)
      : count_(params.get<std::int64_t>("count")),
        votes_(params.get<std::int64_t>("votes_per_pair")),
        temperature_(params.get<double>("temperature")),
        by_prompt_(params.get<std::string>("assignment") == "prompt"),
        aggregation_(params.get<std::string>("aggregation")),
        seed_(static_cast<std::uint64_t>(params.get<std::int64_t>("pool_seed"))) {
    if (votes_ > count_)
      throw std::invalid_argument(fmt::format("votes_per_pair = {} needs at least as many annotators (count = {})",
                                              votes_, count_));
    const auto& reliabilities = params.get<std::vector<double>>("reliabilities");
    if (!reliabilities.empty() && static_cast<std::int64_t>(reliabilities.size()) != count_)
      throw std::invalid_argument(fmt::format("reliabilities has {} entries for {} annotators; give one per "
                                              "annotator, or none for all reliable",
                                              reliabilities.size(), count_));
    reliability_ = reliabilities.empty() ? at::ones({count_}) : at::tensor(reliabilities, at::kFloat);
    // The annotators' identities come from pool_seed alone, so they stay the same across trials.
    at::Generator identity = at::make_generator<at::CPUGeneratorImpl>(seed_);
    weight_factors_ = (params.get<double>("weight_spread") * at::randn({count_, 3}, identity)).exp();
    length_bias_ = params.get<double>("length_bias_spread") * at::randn({count_}, identity);
  }

 protected:
  prefopt::Labels do_label(const prefopt::PairsToLabel& pairs, at::Generator& generator) const override {
    const std::int64_t n = pairs.attributes_a.size(0);
    const std::int64_t attributes = pairs.attributes_a.size(1);
    if (attributes > weight_factors_.size(1))
      throw std::invalid_argument(fmt::format("the task has {} attributes; pool supports up to {}", attributes,
                                              weight_factors_.size(1)));
    // Who votes: consecutive annotators from a start chosen per prompt (or per pair at random).
    at::Tensor start;
    if (by_prompt_) {
      start = at::empty({n}, at::kLong);
      auto ids = pairs.prompt_ids.accessor<std::int64_t, 1>();
      auto out = start.accessor<std::int64_t, 1>();
      for (std::int64_t i = 0; i < n; ++i)
        out[i] = static_cast<std::int64_t>(splitmix64(static_cast<std::uint64_t>(ids[i]) ^ seed_) %
                                           static_cast<std::uint64_t>(count_));
    } else {
      start = at::randint(count_, {n}, generator);
    }
    const at::Tensor annotators = (start.unsqueeze(1) + at::arange(votes_).unsqueeze(0)).remainder(count_);

    // Each annotator's utility difference: its own attribute weights, plus its length preference.
    const at::Tensor weights = pairs.gold_weights.unsqueeze(0) * weight_factors_.narrow(1, 0, attributes);  // [count, A]
    const at::Tensor difference = pairs.attributes_a - pairs.attributes_b;                                 // [n, A]
    const at::Tensor utility = difference.matmul(weights.t());                                             // [n, count]
    const at::Tensor length_gap = (pairs.lengths_a - pairs.lengths_b).to(at::kFloat).unsqueeze(1);
    const at::Tensor voter_utility = utility.gather(1, annotators) + length_gap * length_bias_.index({annotators});
    const at::Tensor judgement = at::rand({n, votes_}, generator).lt((voter_utility / temperature_).sigmoid());
    const at::Tensor attentive = at::rand({n, votes_}, generator).lt(reliability_.index({annotators}));
    const at::Tensor coin = at::rand({n, votes_}, generator).lt(0.5);
    const at::Tensor votes = at::where(attentive, judgement, coin);

    const at::Tensor for_a = votes.sum(1);
    at::Tensor prefers_a = votes.select(1, 0);
    at::Tensor keep = at::ones({n}, at::kBool);
    if (aggregation_ == "majority") {
      const at::Tensor tie_break = at::rand({n}, generator).lt(0.5);
      prefers_a = at::where(for_a.mul(2).eq(votes_), tie_break, for_a.mul(2).gt(votes_));
    } else if (aggregation_ == "consensus") {
      keep = for_a.eq(0).logical_or(for_a.eq(votes_));
    }
    std::vector<std::string> names;
    for (std::int64_t k = 0; k < count_; ++k) names.push_back(fmt::format("annotator_{}", k));
    return {votes, annotators, prefers_a, keep, std::move(names)};
  }

 private:
  std::int64_t count_;
  std::int64_t votes_;
  double temperature_;
  bool by_prompt_;
  std::string aggregation_;
  std::uint64_t seed_;
  at::Tensor reliability_;    // [count]
  at::Tensor weight_factors_;  // [count, 3]: multiplies the gold weights
  at::Tensor length_bias_;     // [count]: utility per token of extra length
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<PoolAnnotator>(
      {.name = "pool",
       .version = "1.0.0",
       .description = "annotators with their own attribute weights, length bias and reliability",
       .params = {
           ParamSpec::integer("count", 4, "number of annotators").min(1).max(1000),
           ParamSpec::integer("votes_per_pair", 1, "votes each pair gets, from distinct annotators").min(1),
           ParamSpec::real("weight_spread", 0.5,
                           "log-normal spread of each annotator's attribute weights around the gold weights")
               .min(0.0),
           ParamSpec::real("length_bias_spread", 0.0, "std of each annotator's utility per token of length").min(0.0),
           ParamSpec::real_list("reliabilities", {},
                                "per annotator, the probability a vote is a judgement, not a coin toss; "
                                "empty: all 1")
               .min(0.0)
               .max(1.0),
           ParamSpec::real("temperature", 0.25, "Boltzmann temperature of each annotator's choice").min(1e-6),
           ParamSpec::string("assignment", "prompt", "who votes: a seeded hash of the prompt, or random per pair")
               .one_of({"prompt", "random"}),
           ParamSpec::string("aggregation", "majority",
                             "one label from the votes: majority (ties by coin), consensus (keep agreed "
                             "pairs only), first")
               .one_of({"majority", "consensus", "first"}),
           ParamSpec::integer("pool_seed", 0, "seed of the annotators' identities (weights, biases)").min(0),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-annotator-pool", register_plugins)
