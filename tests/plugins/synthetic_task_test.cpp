// The synthetic task: its language (white box, against hand computation) and the plugin.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include "../../plugins/tasks/synthetic/synthetic_language.h"
#include "support.h"

using namespace prefopt;
using prefopt::synthetic::Language;
using prefopt::synthetic::LanguageOptions;

namespace {
at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }
}  // namespace

TEST_CASE("the language: stochastic rows, P(EOS | word) = 1 / mean_length", "[task][synthetic]") {
  const Language language(LanguageOptions{});
  const at::Tensor probs = language.transition_log_probs().exp();
  CHECK(probs.sum(1).allclose(torch::ones({32}), 1e-5, 1e-5));
  CHECK(probs.select(1, Language::kEos).narrow(0, 1, 31).allclose(torch::full({31}, 1.0 / 6.0), 1e-5, 1e-5));
  CHECK(language.valence()[0].item<float>() == 0.0f);
  LanguageOptions other;
  other.seed = 1;
  CHECK_FALSE(Language(other).transition_log_probs().equal(language.transition_log_probs()));
  CHECK(Language(LanguageOptions{}).transition_log_probs().equal(language.transition_log_probs()));
}

TEST_CASE("attributes match a hand computation", "[task][synthetic]") {
  const Language language(LanguageOptions{});
  const at::Tensor lp = language.transition_log_probs();
  const at::Tensor v = language.valence();
  const at::Tensor prompts = torch::tensor({{1, 2, 3, 4}, {7, 7, 7, 7}}, torch::kLong);
  at::Tensor responses = torch::zeros({2, 12}, torch::kLong);
  responses[0][0] = 5;
  responses[0][1] = 6;  // then EOS at position 2
  for (int t = 0; t < 12; ++t) responses[1][t] = 9;  // no EOS at all: 12 words
  const Sequences s{prompts, responses, response_lengths(responses, Language::kEos)};
  CHECK(s.lengths.equal(torch::tensor({3, 12}, torch::kLong)));

  const at::Tensor attributes = language.attributes(s);
  const double valence0 = (v[5].item<double>() + v[6].item<double>()) / 2;
  const double coherence0 = (lp[4][5].item<double>() + lp[5][6].item<double>() + lp[6][0].item<double>()) / 3;
  CHECK(attributes[0][0].item<double>() == Approx(valence0).margin(1e-5));
  CHECK(attributes[0][1].item<double>() == Approx(coherence0).margin(1e-5));
  CHECK(attributes[0][2].item<double>() == Approx(-4.0 / 6.0));
  const double coherence1 = (lp[7][9].item<double>() + 11 * lp[9][9].item<double>()) / 12;
  CHECK(attributes[1][0].item<double>() == Approx(v[9].item<double>()).margin(1e-5));
  CHECK(attributes[1][1].item<double>() == Approx(coherence1).margin(1e-5));
  CHECK(attributes[1][2].item<double>() == Approx(-1.0));  // |12 - 6| / 6
}

TEST_CASE("samples follow the language, and the gold reward prefers them to random text", "[task][synthetic]") {
  const Registry registry = test::load_registry();
  const auto task = registry.create<Task>("synthetic");
  at::Generator generator = seeded(1);
  const std::int64_t n = 20000;
  const Sequences corpus = task->sample_corpus(n, generator);
  // Empty responses (EOS first) occur with P(EOS | word) = 1/6: 4 standard errors of tolerance.
  const double empty = corpus.lengths.eq(1).to(torch::kDouble).mean().item<double>();
  CHECK(std::abs(empty - 1.0 / 6.0) < 4 * std::sqrt((1.0 / 6.0) * (5.0 / 6.0) / n));
  CHECK(corpus.prompts.gt(0).all().item<bool>());  // prompts are words only

  // Coherence: true-language samples beat uniformly random words by a wide margin.
  const at::Tensor words = torch::randint(1, 32, {n, 12}, generator, torch::kLong);
  const Sequences random{corpus.prompts, words, response_lengths(words, 0)};
  const double sampled = task->score_attributes(corpus).select(1, 1).mean().item<double>();
  const double uniform = task->score_attributes(random).select(1, 1).mean().item<double>();
  CHECK(sampled > uniform + 1.0);

  // The plugin's gold reward is attributes · weights (1, 0.5, 0.5).
  const at::Tensor expected = task->score_attributes(corpus).matmul(torch::tensor({1.0f, 0.5f, 0.5f}));
  CHECK(task->gold_reward(corpus).allclose(expected));
  CHECK(task->attribute_names() == std::vector<std::string>{"valence", "coherence", "length"});

  at::Generator again = seeded(1);
  CHECK(task->sample_corpus(n, again).responses.equal(corpus.responses));  // same seed, same corpus
}

TEST_CASE("min_prompt_length gives prompts of every length in range, right-aligned", "[task][synthetic]") {
  const Registry registry = test::load_registry();
  const auto task = registry.create<Task>("synthetic", {{"prompt_length", std::int64_t{6}}, {"min_prompt_length", std::int64_t{2}}});
  at::Generator generator = seeded(2);
  const at::Tensor prompts = task->sample_prompts(6000, generator);
  const at::Tensor real = prompts.ne(kPromptPadding);
  const at::Tensor lengths = real.sum(1);
  // Padding only on the left: once a prompt starts, it continues to the last column.
  CHECK(real.equal(torch::arange(6).unsqueeze(0).ge(6 - lengths.unsqueeze(1))));
  CHECK(prompts.masked_select(real).gt(0).all().item<bool>());
  // Uniform over 2..6: each length 1/5 of the prompts, within 4 standard errors.
  for (std::int64_t length = 2; length <= 6; ++length) {
    const double share = lengths.eq(length).to(torch::kDouble).mean().item<double>();
    CHECK(std::abs(share - 0.2) < 4 * std::sqrt(0.2 * 0.8 / 6000));
  }
  // The gold reward reads the last prompt token, which is always real.
  const Sequences corpus = task->sample_corpus(64, generator);
  CHECK(corpus.prompts.select(1, 5).gt(0).all().item<bool>());
  CHECK(task->gold_reward(corpus).isfinite().all().item<bool>());

  CHECK_THROWS_WITH(registry.create<Task>("synthetic", {{"min_prompt_length", std::int64_t{5}}}),
                    Catch::Contains("min_prompt_length (5) exceeds task.prompt_length (4)"));
}
