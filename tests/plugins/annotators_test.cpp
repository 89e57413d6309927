// The annotator plugins: statistical checks with fixed seeds and tolerances of 4 standard errors.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "prefopt/annotator.h"
#include "support.h"

using namespace prefopt;

namespace {

constexpr std::int64_t kPairs = 20000;

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Random pairs over three attributes with gold weights (1, 0.5, 0.5).
PairsToLabel random_pairs(std::uint64_t seed, std::int64_t n = kPairs) {
  at::Generator generator = seeded(seed);
  return {torch::randn({n, 3}, generator),       torch::randn({n, 3}, generator),
          torch::randint(1, 13, {n}, generator, torch::kLong), torch::randint(1, 13, {n}, generator, torch::kLong),
          torch::arange(n, torch::kLong),        torch::tensor({1.0f, 0.5f, 0.5f})};
}

double fraction(const at::Tensor& mask) { return mask.to(torch::kDouble).mean().item<double>(); }
double tolerance(double p, std::int64_t n) { return 4 * std::sqrt(p * (1 - p) / static_cast<double>(n)); }

Labels label(const Registry& registry, const std::string& name, const ParamMap& params, const PairsToLabel& pairs,
             std::uint64_t seed = 7) {
  at::Generator generator = seeded(seed);
  return registry.create<Annotator>(name, params)->label(pairs, generator);
}

}  // namespace

TEST_CASE("oracle labels follow the gold reward, and ties are a fair coin", "[annotator]") {
  const Registry registry = test::load_registry();
  const PairsToLabel pairs = random_pairs(1);
  const Labels labels = label(registry, "oracle", {}, pairs);
  CHECK(labels.prefers_a.equal(pairs.gold_a().gt(pairs.gold_b())));
  CHECK(labels.keep.all().item<bool>());
  CHECK(labels.names == std::vector<std::string>{"oracle"});

  PairsToLabel ties = pairs;
  ties.attributes_b = ties.attributes_a;
  CHECK(std::abs(fraction(label(registry, "oracle", {}, ties).prefers_a) - 0.5) < tolerance(0.5, kPairs));
}

TEST_CASE("bradley_terry labels have probability sigmoid(gold difference / temperature)", "[annotator]") {
  const Registry registry = test::load_registry();
  PairsToLabel pairs = random_pairs(2);
  pairs.attributes_b = pairs.attributes_a.clone();
  pairs.attributes_a.select(1, 0).add_(0.25);  // every gold difference is exactly 0.25
  for (double temperature : {0.25, 1.0}) {
    const double expected = 1.0 / (1.0 + std::exp(-0.25 / temperature));
    const Labels labels = label(registry, "bradley_terry", {{"temperature", temperature}}, pairs);
    CHECK(std::abs(fraction(labels.prefers_a) - expected) < tolerance(expected, kPairs));
  }
}

TEST_CASE("flip labels disagree with the oracle at the configured rate", "[annotator]") {
  const Registry registry = test::load_registry();
  const PairsToLabel pairs = random_pairs(3);
  const at::Tensor oracle = pairs.gold_a().gt(pairs.gold_b());
  for (double rate : {0.0, 0.1, 0.25, 0.5}) {
    const Labels labels = label(registry, "flip", {{"rate", rate}}, pairs);
    const double flipped = fraction(labels.prefers_a.ne(oracle));
    CHECK(std::abs(flipped - rate) < std::max(tolerance(rate, kPairs), 1e-9));
  }
  CHECK_THROWS_AS(registry.create<Annotator>("flip", {{"rate", 0.6}}), ConfigError);
}

TEST_CASE("pool: each annotator agrees with gold as its reliability predicts", "[annotator][pool]") {
  const Registry registry = test::load_registry();
  const PairsToLabel pairs = random_pairs(4);
  const at::Tensor gold = pairs.gold_a().gt(pairs.gold_b());
  // Near-deterministic judges with the gold weights; a vote is a coin toss with probability 1 - r.
  const Labels labels = label(registry, "pool",
                              {{"count", std::int64_t{3}},
                               {"weight_spread", 0.0},
                               {"temperature", 1e-4},
                               {"reliabilities", std::vector<double>{1.0, 0.6, 0.0}},
                               {"assignment", std::string("random")}},
                              pairs);
  REQUIRE(labels.names.size() == 3);
  const at::Tensor voter = labels.annotators.select(1, 0);
  const at::Tensor agrees = labels.votes.select(1, 0).eq(gold);
  for (std::int64_t k = 0; k < 3; ++k) {
    const double r = std::vector<double>{1.0, 0.6, 0.0}[static_cast<std::size_t>(k)];
    const double expected = r + (1 - r) / 2;
    const at::Tensor mine = voter.eq(k);
    const std::int64_t n = mine.sum().item<std::int64_t>();
    CHECK(n > kPairs / 4);
    const double observed = agrees.masked_select(mine).to(torch::kDouble).mean().item<double>();
    CHECK(std::abs(observed - expected) < std::max(tolerance(expected, n), 1e-9));
  }
}

TEST_CASE("pool: annotators weigh attributes differently and may like length", "[annotator][pool]") {
  const Registry registry = test::load_registry();
  PairsToLabel pairs = random_pairs(5);
  const at::Tensor gold = pairs.gold_a().gt(pairs.gold_b());
  const ParamMap base = {{"count", std::int64_t{4}}, {"temperature", 1e-4}, {"assignment", std::string("random")}};
  auto agreement = [&](ParamMap params) {
    for (const auto& entry : base) params.insert(entry);
    return fraction(label(registry, "pool", params, pairs).prefers_a.eq(gold));
  };
  CHECK(agreement({{"weight_spread", 0.0}}) == 1.0);  // identical to the oracle
  const double spread = agreement({{"weight_spread", 1.0}});
  CHECK(spread < 0.95);  // real disagreement with gold, not noise: they still mostly agree
  CHECK(spread > 0.6);

  // Equal gold, different lengths: an annotator's choices follow the sign of its length bias.
  pairs.attributes_b = pairs.attributes_a.clone();
  const Labels biased = label(registry, "pool",
                              {{"count", std::int64_t{1}}, {"weight_spread", 0.0}, {"length_bias_spread", 5.0},
                               {"pool_seed", std::int64_t{3}}, {"temperature", 1e-4}},
                              pairs);
  const at::Tensor longer = pairs.lengths_a.gt(pairs.lengths_b);
  const at::Tensor shorter = pairs.lengths_a.lt(pairs.lengths_b);
  const double picks_longer = fraction(biased.prefers_a.masked_select(longer));
  const double picks_a_when_shorter = fraction(biased.prefers_a.masked_select(shorter));
  CHECK(std::abs(picks_longer - (1.0 - picks_a_when_shorter)) < 1e-9);
  CHECK((picks_longer == 1.0 || picks_longer == 0.0));
}

TEST_CASE("pool: votes, assignment by prompt, majority and consensus", "[annotator][pool]") {
  const Registry registry = test::load_registry();
  PairsToLabel pairs = random_pairs(6);
  pairs.prompt_ids = torch::arange(kPairs, torch::kLong).floor_divide(4);  // 4 pairs per prompt
  const at::Tensor gold = pairs.gold_a().gt(pairs.gold_b());
  const ParamMap common = {{"count", std::int64_t{5}},
                           {"votes_per_pair", std::int64_t{3}},
                           {"weight_spread", 0.0},
                           {"temperature", 1e-4},
                           {"reliabilities", std::vector<double>{0.5, 0.5, 0.5, 0.5, 0.5}}};
  ParamMap majority = common, consensus = common;
  majority["aggregation"] = std::string("majority");
  consensus["aggregation"] = std::string("consensus");
  const Labels by_majority = label(registry, "pool", majority, pairs);
  const Labels by_consensus = label(registry, "pool", consensus, pairs);

  REQUIRE(by_majority.votes.sizes() == torch::IntArrayRef({kPairs, 3}));
  // Distinct voters per pair, the same voters for every pair of a prompt.
  const at::Tensor who = by_majority.annotators;
  CHECK(who.select(1, 0).ne(who.select(1, 1)).logical_and(who.select(1, 1).ne(who.select(1, 2))).all().item<bool>());
  CHECK(who.view({kPairs / 4, 4, 3}).eq(who.view({kPairs / 4, 4, 3}).select(1, 0).unsqueeze(1)).all().item<bool>());
  // A vote is right with probability 0.75: majority of 3 is right w.p. 0.84375; consensus keeps
  // 0.75^3 + 0.25^3 = 0.4375 of the pairs, of which 0.421875 / 0.4375 = 0.964 are right.
  CHECK(std::abs(fraction(by_majority.prefers_a.eq(gold)) - 0.84375) < tolerance(0.84375, kPairs));
  CHECK(by_majority.keep.all().item<bool>());
  const double kept = fraction(by_consensus.keep);
  CHECK(std::abs(kept - 0.4375) < tolerance(0.4375, kPairs));
  const at::Tensor kept_right = by_consensus.prefers_a.eq(gold).masked_select(by_consensus.keep);
  const double consensus_accuracy = fraction(kept_right);
  CHECK(std::abs(consensus_accuracy - 0.421875 / 0.4375) < tolerance(0.964, kept_right.size(0)));
}

TEST_CASE("annotators are deterministic for a seed and reject impossible settings", "[annotator]") {
  const Registry registry = test::load_registry();
  const PairsToLabel pairs = random_pairs(8, 1000);
  for (const char* name : {"oracle", "bradley_terry", "flip", "pool"})
    CHECK(label(registry, name, {}, pairs, 11).prefers_a.equal(label(registry, name, {}, pairs, 11).prefers_a));
  CHECK_THROWS_WITH(registry.create<Annotator>("pool", {{"count", std::int64_t{2}}, {"votes_per_pair", std::int64_t{3}}}),
                    Catch::Contains("votes_per_pair = 3 needs at least as many annotators (count = 2)"));
  CHECK_THROWS_WITH(registry.create<Annotator>("pool", {{"reliabilities", std::vector<double>{1.0}}}),
                    Catch::Contains("reliabilities has 1 entries for 4 annotators"));
}
