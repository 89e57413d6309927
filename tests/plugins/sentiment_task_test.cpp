// The sentiment task: VADER's rules against hand computation (tests/tasks/vader_differential.py
// compares it with the vaderSentiment package on every fortune), the fortune reader, the
// byte-pair tokenizer, the world's prompts, corpus and attributes, and DPO and PPO raising the
// gold reward on real text.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "../../plugins/tasks/sentiment/fortune_corpus.h"
#include "../../plugins/tasks/sentiment/sentiment_world.h"
#include "../../plugins/tasks/sentiment/vader.h"
#include "support.h"

using namespace prefopt;
using namespace prefopt::sentiment;
namespace fs = std::filesystem;

namespace {

double normalized(double sum) { return sum / std::sqrt(sum * sum + 15); }

void write(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

// A lexicon of our own (not VADER's values) for tests that must not need the PyPI package.
constexpr const char* kLexicon =
    "good\t2.0\t0.5\t[]\nbad\t-2.5\t0.5\t[]\ngreat\t3.1\t0.5\t[]\nfine\t1.0\t0.5\t[]\nlove\t3.2\t0.5\t[]\n"
    "happy\t2.7\t0.5\t[]\nbest\t3.2\t0.5\t[]\nwise\t1.8\t0.5\t[]\nfriend\t2.2\t0.5\t[]\nfree\t2.3\t0.5\t[]\n"
    "beautiful\t2.9\t0.5\t[]\nhope\t1.9\t0.5\t[]\nlaugh\t2.6\t0.5\t[]\nhate\t-2.7\t0.5\t[]\nwrong\t-2.1\t0.5\t[]\n"
    "war\t-2.9\t0.5\t[]\ndie\t-2.9\t0.5\t[]\ndeath\t-2.9\t0.5\t[]\nfool\t-1.9\t0.5\t[]\nkill\t-3.7\t0.5\t[]\n"
    "sad\t-2.1\t0.5\t[]\npoor\t-2.1\t0.5\t[]\nevil\t-3.4\t0.5\t[]\ntrouble\t-1.7\t0.5\t[]\nworst\t-3.1\t0.5\t[]\n"
    "no\t-1.2\t0.5\t[]\n";

Vader small_vader() {
  Vader::Lexicon lexicon;
  std::istringstream in(kLexicon);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    lexicon[line.substr(0, tab)] = std::stod(line.substr(tab + 1));
  }
  return Vader(std::move(lexicon));
}

double compound(const Vader& vader, std::string_view text) { return vader.polarity(text).compound; }

}  // namespace

TEST_CASE("VADER's rules, computed by hand on a small lexicon", "[task][sentiment]") {
  const Vader vader = small_vader();
  CHECK(compound(vader, "") == 0.0);
  CHECK(compound(vader, "nothing here") == 0.0);
  CHECK(compound(vader, "good") == Approx(normalized(2.0)));
  CHECK(compound(vader, "Good.") == Approx(normalized(2.0)));  // punctuation stripped, case folded
  CHECK(compound(vader, "not good") == Approx(normalized(2.0 * -0.74)));
  CHECK(compound(vader, "isn't good") == Approx(normalized(2.0 * -0.74)));  // any "n't"
  CHECK(compound(vader, "not very good") == Approx(normalized((2.0 + 0.293) * -0.74)));
  CHECK(compound(vader, "very much good") == Approx(normalized(2.0 + 0.95 * 0.293)));  // a booster two back
  CHECK(compound(vader, "very good") == Approx(normalized(2.0 + 0.293)));
  CHECK(compound(vader, "very bad") == Approx(normalized(-2.5 - 0.293)));  // boosters push away from 0
  CHECK(compound(vader, "slightly good") == Approx(normalized(2.0 - 0.293)));
  CHECK(compound(vader, "good!!") == Approx(normalized(2.0 + 2 * 0.292)));
  CHECK(compound(vader, "good!!!!!!") == Approx(normalized(2.0 + 4 * 0.292)));  // at most 4 count
  CHECK(compound(vader, "bad??") == Approx(normalized(-2.5 - 2 * 0.18)));
  CHECK(compound(vader, "GOOD and fine") == Approx(normalized(2.0 + 0.733 + 1.0)));  // caps beside lower case
  CHECK(compound(vader, "GOOD") == Approx(normalized(2.0)));                          // all caps: no emphasis
  CHECK(compound(vader, "the least good") == Approx(normalized(2.0 * -0.74)));
  CHECK(compound(vader, "at least good") == Approx(normalized(2.0)));
  CHECK(compound(vader, "never so good") == Approx(normalized((2.0 + 0.293) * 1.25)));  // "so" boosts too
  CHECK(compound(vader, "no good") == Approx(normalized(2.0 * -0.74)));  // "no" before a known word: 0, and negates it
  CHECK(compound(vader, "good but bad") == Approx(normalized(2.0 * 0.5 - 2.5 * 1.5)));
  // The package's "but" rule rescales the first score equal to each score in turn: after "fine"
  // (1) is halved to 0.5 and "good" (2) to 1, the "fine" after "but" finds the halved "good" first
  // and halves it again, and is itself never raised: 0.5 + 0.5 + 1, not 0.5 + 1 + 1.5.
  CHECK(compound(vader, "fine good but fine") == Approx(normalized(2.0)));

  const Polarity shares = vader.polarity("good and bad");  // scores 2, 0, -2.5
  CHECK(shares.positive == Approx(3.0 / 7.5));
  CHECK(shares.negative == Approx(3.5 / 7.5));
  CHECK(shares.neutral == Approx(1.0 / 7.5));
}

TEST_CASE("VADER's lexicon file: malformed lines are refused with file and line", "[task][sentiment]") {
  test::TempDir dir;
  write(dir.path() / "lexicon.txt", "good\t2.0\t0.5\n\nbad\tworse\t0.5\n");
  try {
    Vader::from_file(dir.path() / "lexicon.txt");
    FAIL("a malformed lexicon loaded");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("lexicon.txt:3:") && Catch::Contains("bad\tworse"));
  }
  CHECK_THROWS_WITH(Vader::from_file(dir.path() / "missing.txt"), Catch::Contains("missing.txt: cannot read"));
  write(dir.path() / "lexicon.txt", "good\t2.0\t0.5\n");
  CHECK(Vader::from_file(dir.path() / "lexicon.txt").lexicon_size() == 1);
}

TEST_CASE("fortune files: entries split at %, whitespace folded, art and non-ASCII left out", "[task][sentiment]") {
  test::TempDir dir;
  write(dir.path() / "quotes",
        "A  fool and\nhis money\tare soon parted.\n%\n%\n  ____\n |    |\n |____|\n%\nCaf\xc3\xa9 au lait.\n%\nThe end.");
  write(dir.path() / "quotes.dat", "binary index\n%\nnot an entry\n");
  write(dir.path() / "more", "Zebras last.\n");
  CHECK(read_fortunes(dir.path()) ==
        std::vector<std::string>{"Zebras last.", "A fool and his money are soon parted.", "The end."});  // name order
  CHECK(read_fortunes(dir.path() / "more") == std::vector<std::string>{"Zebras last."});
  CHECK_THROWS_WITH(read_fortunes(dir.path() / "none"), Catch::Contains("none: no such fortune file or folder"));
  write(dir.path() / "art", "  ____\n |____|\n");
  CHECK_THROWS_WITH(read_fortunes(dir.path() / "art"), Catch::Contains("no fortune entries"));
}

TEST_CASE("byte-pair training and encoding, by hand", "[task][sentiment]") {
  CHECK(pre_tokenize("hello, 42 it's") == std::vector<std::string_view>{"hello", ",", " 42", " it's"});
  // Chunks "ab" once, " ab" twice, "abc" once. Characters: ' ' 1, a 2, b 3, c 4. (a, b) occurs 4
  // times: token 5 = "ab". Then (' ', ab) twice: token 6 = " ab". Then no pair occurs twice.
  const BytePairTokenizer tokenizer = BytePairTokenizer::train({"ab ab ab", "abc"}, 10);
  REQUIRE(tokenizer.vocab_size() == 7);
  CHECK(tokenizer.token_text(0).empty());
  CHECK(tokenizer.token_text(2) == "a");
  CHECK(tokenizer.token_text(5) == "ab");
  CHECK(tokenizer.token_text(6) == " ab");
  CHECK(tokenizer.encode("ab abc") == std::vector<std::int64_t>{5, 6, 4});
  CHECK(tokenizer.encode("ba") == std::vector<std::int64_t>{3, 2});
  CHECK(tokenizer.decode({5, 6, 4, 0}) == "ab abc");
  CHECK(BytePairTokenizer::train({"ab ab ab", "abc"}, 6).vocab_size() == 6);  // stops at the vocabulary
  CHECK_THROWS_WITH(tokenizer.encode("abd"), Catch::Contains("never saw the character 'd' in training"));
  CHECK_THROWS_WITH(BytePairTokenizer::train({"abc"}, 3), Catch::Contains("cannot hold EOS and the 3 characters"));
}

TEST_CASE("the world: prompts begin fortunes, the corpus continues them to EOS, attributes by hand",
          "[task][sentiment]") {
  test::TempDir dir;
  write(dir.path() / "lexicon.txt", kLexicon);
  write(dir.path() / "fortunes",
        "A good friend is a happy friend.\n%\nNo good deed goes unpunished.\n%\nThe best is yet to come, they say.\n%\n"
        "Hi.\n%\nA very long fortune that goes on and on and on and will never fit in the response at all, whatever "
        "the prompt may be, however many tokens the response is allowed to have.\n");
  WorldOptions options;
  options.corpus = dir.path() / "fortunes";
  options.lexicon = dir.path() / "lexicon.txt";
  options.vocab = 80;
  options.prompt_length = 8;
  options.max_response_length = 48;
  const World world(options);
  const BytePairTokenizer& tokenizer = world.tokenizer();
  // "Hi." is too short to prompt and the long one never ends within the response.
  REQUIRE(world.entries() == 3);

  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(7);
  const Sequences corpus = world.sample_corpus(64, generator);
  std::set<std::string> texts;
  for (std::int64_t row = 0; row < 64; ++row) {
    REQUIRE(corpus.responses[row][corpus.lengths[row].item<std::int64_t>() - 1].item<std::int64_t>() == World::kEos);
    texts.insert(world.text(corpus, row));
  }
  CHECK(texts == std::set<std::string>{"A good friend is a happy friend.", "No good deed goes unpunished.",
                                       "The best is yet to come, they say."});
  at::Generator again = at::make_generator<at::CPUGeneratorImpl>(7);
  CHECK(world.sample_corpus(64, again).prompts.equal(corpus.prompts));

  // Target length: the three fortunes' tokens after an 8-token prompt, plus EOS.
  double target = 0;
  for (const char* text :
       {"A good friend is a happy friend.", "No good deed goes unpunished.", "The best is yet to come, they say."})
    target += static_cast<double>(tokenizer.encode(text).size()) - 8 + 1;
  target /= 3;
  CHECK(world.target_length() == Approx(target));

  // A hand-made sequence: prompt "No good", response "deed" then EOS, with one pad in front.
  const std::vector<std::int64_t> prompt_ids = tokenizer.encode("No good"), response_ids = tokenizer.encode(" deed");
  REQUIRE(prompt_ids.size() < 8);
  at::Tensor prompts = at::full({1, 8}, kPromptPadding, at::kLong);
  for (std::size_t t = 0; t < prompt_ids.size(); ++t)
    prompts[0][static_cast<std::int64_t>(8 - prompt_ids.size() + t)] = prompt_ids[t];
  at::Tensor responses = at::zeros({1, 48}, at::kLong);
  for (std::size_t t = 0; t < response_ids.size(); ++t) responses[0][t] = response_ids[t];
  const Sequences s{prompts, responses, response_lengths(responses, World::kEos)};
  CHECK(world.text(s, 0) == "No good deed");
  const at::Tensor attributes = world.attributes(s);
  const at::Tensor log_probs = world.bigram_log_probs();
  double fluency = 0;
  std::int64_t previous = prompt_ids.back();
  for (const std::int64_t id : response_ids) {
    fluency += log_probs[previous][id].item<double>();
    previous = id;
  }
  fluency += log_probs[previous][World::kEos].item<double>();
  const double length = static_cast<double>(response_ids.size() + 1);
  CHECK(attributes[0][0].item<double>() == Approx(normalized(2.0 * -0.74)).margin(1e-6));
  CHECK(attributes[0][1].item<double>() == Approx(fluency / length).margin(1e-5));
  CHECK(attributes[0][2].item<double>() == Approx(-std::abs(length - target) / target).margin(1e-6));
  // Bigram rows are distributions.
  CHECK(log_probs.exp().sum(1).allclose(torch::ones({tokenizer.vocab_size()}), 1e-4, 1e-4));

  // Prompts of 2 to 8 tokens: right-aligned behind kPromptPadding, the response continuing each
  // fortune from its prompt's end, so a row still reads as the whole fortune.
  WorldOptions varied = options;
  varied.min_prompt_length = 2;
  const World varied_world(varied);
  at::Generator draws = at::make_generator<at::CPUGeneratorImpl>(3);
  const Sequences mixed = varied_world.sample_corpus(200, draws);
  std::set<std::int64_t> prompt_lengths;
  for (std::int64_t row = 0; row < 200; ++row) {
    const std::int64_t real = mixed.prompts[row].ne(kPromptPadding).sum().item<std::int64_t>();
    prompt_lengths.insert(real);
    CHECK(mixed.prompts[row].narrow(0, 0, 8 - real).eq(kPromptPadding).all().item<bool>());
    CHECK(texts.contains(varied_world.text(mixed, row)));
  }
  CHECK(prompt_lengths == std::set<std::int64_t>{2, 3, 4, 5, 6, 7, 8});
}

TEST_CASE("the sentiment plugin: settings checked with the key to fix", "[task][sentiment]") {
  test::TempDir dir;
  write(dir.path() / "lexicon.txt", kLexicon);
  const Registry registry = test::load_registry();
  const ParamMap base = {{"lexicon", (dir.path() / "lexicon.txt").string()}};
  const auto task = registry.create<Task>("sentiment", base);
  CHECK(task->vocab_size() == 512);
  CHECK(task->attribute_names() == std::vector<std::string>{"sentiment", "fluency", "length"});
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const Sequences corpus = task->sample_corpus(2000, generator);
  // Real fortunes score as real text should: fluent, and about as long as the target.
  const at::Tensor attributes = task->score_attributes(corpus);
  CHECK(attributes.select(1, 1).mean().item<double>() > -5.0);
  CHECK(attributes.select(1, 2).mean().item<double>() > -0.5);

  auto refused = [&](ParamMap params, const std::string& message) {
    for (const auto& [key, value] : base) params.try_emplace(key, value);
    try {
      registry.create<Task>("sentiment", params);
      FAIL("accepted " << message);
    } catch (const ConfigError& e) {
      CHECK_THAT(e.what(), Catch::Contains(message));
    }
  };
  refused({{"lexicon", (dir.path() / "missing.txt").string()}}, "missing.txt: cannot read VADER's lexicon");
  refused({{"corpus", (dir.path() / "nowhere").string()}}, "task.corpus: ");
  refused({{"vocab", std::int64_t{10}}}, "task.vocab: a vocabulary of 10 tokens cannot hold EOS");
  refused({{"min_prompt_length", std::int64_t{9}}}, "task.min_prompt_length (9) exceeds task.prompt_length (8)");
  write(dir.path() / "long", "A fortune far longer than a prompt of eight tokens and a response of twenty-four can hold.");
  refused({{"corpus", (dir.path() / "long").string()}}, "no fortune has 9 to 31 tokens");
}

// The DPO paper's IMDb setting in miniature, at a test's size: the base policy learns the
// fortunes by SFT, near-oracle labels judge pairs of its samples under VADER's own lexicon, and
// DPO (from the pairs) and PPO (against a reward model of them) must raise the gold reward; DPO
// its sentiment too. Measured at these settings: DPO -0.520 -> -0.310 (sentiment 0.04 -> 0.21),
// PPO -0.520 -> 0.017 (sentiment 0.04 -> 0.50), standard errors 0.013 to 0.018. PPO's sentiment is
// not asserted: with a reward model this weak (held-out accuracy 0.62 to 0.67) it rises in some
// seeds and in others PPO gains its gold through fluency and length (sweeps/sentiment.toml, seeds
// 1 and 2), while DPO raised sentiment in every seed measured.
TEST_CASE("DPO and PPO raise the gold reward on real text", "[task][sentiment][e2e]") {
  test::TempDir dir;
  for (const auto& [name, steps] : {std::pair{"dpo", "150"}, std::pair{"ppo", "60"}}) {
    const auto result = test::run_cli(
        {"run", PREFOPT_SOURCE_DIR "/experiments/sentiment.toml", "--out", (dir.path() / name).string(), "--cache",
         (dir.path() / "cache").string(), "sft.steps=300", "sft.corpus_size=4096", "preferences.pairs=3000",
         "train.eval_every=50", "eval.prompts=512", std::string("algorithm=") + name, std::string("train.steps=") + steps});
    if (test::skipped_without_lexicon(result)) return;
    INFO(name << ": " << result.err);
    REQUIRE(result.status == 0);
    const auto rows = test::read_metrics(dir.path() / name);
    REQUIRE(rows.size() >= 2);
    const double before = rows.front()["gold"].get<double>(), after = rows.back()["gold"].get<double>();
    const double se = std::hypot(rows.front()["gold_se"].get<double>(), rows.back()["gold_se"].get<double>());
    INFO("gold " << before << " -> " << after << " (standard error " << se << "), sentiment "
                 << rows.front()["gold_sentiment"] << " -> " << rows.back()["gold_sentiment"]);
    CHECK(after - before >= std::max(0.1, 4 * se));
    if (std::string(name) == "dpo")
      CHECK(rows.back()["gold_sentiment"].get<double>() > rows.front()["gold_sentiment"].get<double>() + 0.1);
  }
}
