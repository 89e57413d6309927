// The `sentiment` task plugin: real English text with a rule-based gold judge, no download beyond
// Debian's `fortunes` package and VADER's lexicon (PyPI's vaderSentiment, which
// scripts/install-peers.sh installs).
#include <prefopt/error.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "sentiment_world.h"

namespace {

namespace fs = std::filesystem;
using prefopt::ConfigError;
using prefopt::ParamSpec;
using prefopt::sentiment::World;
using prefopt::sentiment::WorldOptions;

// vaderSentiment's lexicon in the peers' venv ($PREFOPT_VENV, else ~/.cache/prefopt/torch-venv),
// the one scripts/install-peers.sh makes; empty when it is not there.
fs::path installed_lexicon() {
  const char* venv = std::getenv("PREFOPT_VENV");
  const char* home = std::getenv("HOME");
  const fs::path root = venv != nullptr && *venv != '\0' ? fs::path(venv)
                        : home != nullptr               ? fs::path(home) / ".cache/prefopt/torch-venv"
                                                        : fs::path();
  std::error_code error;
  if (root.empty() || !fs::is_directory(root / "lib", error)) return {};
  for (const auto& python : fs::directory_iterator(root / "lib", error)) {
    const fs::path lexicon = python.path() / "site-packages/vaderSentiment/vader_lexicon.txt";
    if (fs::is_regular_file(lexicon, error)) return lexicon;
  }
  return {};
}

WorldOptions options_from(const prefopt::Params& p) {
  WorldOptions o;
  o.corpus = p.get<std::string>("corpus");
  o.lexicon = p.get<std::string>("lexicon");
  o.vocab = p.get<std::int64_t>("vocab");
  o.prompt_length = p.get<std::int64_t>("prompt_length");
  o.min_prompt_length = p.get<std::int64_t>("min_prompt_length");
  o.max_response_length = p.get<std::int64_t>("max_response_length");
  o.sentiment_weight = p.get<double>("sentiment_weight");
  o.fluency_weight = p.get<double>("fluency_weight");
  o.length_weight = p.get<double>("length_weight");
  if (o.min_prompt_length > o.prompt_length)
    throw ConfigError("task.min_prompt_length (" + std::to_string(o.min_prompt_length) + ") exceeds task.prompt_length (" +
                      std::to_string(o.prompt_length) + ")");
  if (o.lexicon.empty()) o.lexicon = installed_lexicon();
  if (o.lexicon.empty())
    throw ConfigError(
        "task.lexicon: VADER's lexicon (vader_lexicon.txt of PyPI's vaderSentiment) was not found in the peers' venv; "
        "run scripts/install-peers.sh, or set task.lexicon to the file");
  if (!fs::exists(o.corpus))
    throw ConfigError("task.corpus: " + o.corpus.string() +
                      " does not exist; Debian's fortune files come with `apt-get install fortunes` "
                      "(scripts/install-deps.sh installs it)");
  return o;
}

World make_world(const prefopt::Params& params) {
  try {
    return World(options_from(params));
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("task.vocab: ") + e.what());
  } catch (const ConfigError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw ConfigError(e.what());
  }
}

class SentimentTask final : public prefopt::TextTask {
 public:
  explicit SentimentTask(const prefopt::Params& params) : world_(make_world(params)) {}

 protected:
  std::int64_t do_vocab_size() const override { return world_.tokenizer().vocab_size(); }
  std::int64_t do_eos_token() const override { return World::kEos; }
  std::int64_t do_prompt_length() const override { return world_.options().prompt_length; }
  std::int64_t do_max_response_length() const override { return world_.options().max_response_length; }
  std::vector<std::string> do_attribute_names() const override { return {"sentiment", "fluency", "length"}; }
  at::Tensor do_gold_weights() const override { return world_.weights(); }
  at::Tensor do_sample_prompts(std::int64_t n, at::Generator& generator) const override {
    return world_.sample_prompts(n, generator);
  }
  prefopt::Sequences do_sample_corpus(std::int64_t n, at::Generator& generator) const override {
    return world_.sample_corpus(n, generator);
  }
  at::Tensor do_score_attributes(const prefopt::Sequences& sequences) const override {
    return world_.attributes(sequences);
  }
  // Whitespace runs become one space, as in the corpus the tokenizer learned from.
  std::vector<std::int64_t> do_encode(const std::string& text) const override {
    std::string folded;
    for (const char c : text) {
      const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
      if (!space) folded += c;
      else if (folded.empty() || folded.back() != ' ') folded += ' ';
    }
    return world_.tokenizer().encode(folded);
  }
  std::string do_decode(const std::vector<std::int64_t>& ids) const override { return world_.tokenizer().decode(ids); }

 private:
  World world_;
};

void register_plugins(prefopt::Registrar& registrar) {
  const WorldOptions d;
  registrar.add<SentimentTask>(
      {.name = "sentiment",
       .version = "1.0.0",
       .description = "fortune cookies as English text (BPE); gold = VADER sentiment + fluency + length",
       .params = {
           ParamSpec::string("corpus", d.corpus.string(), "a fortune file, or a folder of them (entries end at a \"%\" line)"),
           ParamSpec::string("lexicon", "", "VADER's vader_lexicon.txt; empty: the one in the peers' venv"),
           ParamSpec::integer("vocab", d.vocab, "tokens at most: EOS, the corpus's characters, then BPE merges")
               .min(2).max(65536),
           ParamSpec::integer("prompt_length", d.prompt_length, "prompt tokens: a fortune's first (at most, with min_prompt_length)")
               .min(1).max(1024),
           ParamSpec::integer("min_prompt_length", d.min_prompt_length,
                              "> 0: prompts of min_prompt_length..prompt_length tokens, left-padded; 0: all prompt_length")
               .min(0).max(1024),
           ParamSpec::integer("max_response_length", d.max_response_length, "response tokens at most, EOS included")
               .min(1).max(4096),
           ParamSpec::real("sentiment_weight", d.sentiment_weight, "gold weight of VADER's compound score of prompt + response"),
           ParamSpec::real("fluency_weight", d.fluency_weight, "gold weight of the response's mean bigram log-prob under the corpus"),
           ParamSpec::real("length_weight", d.length_weight, "gold weight of -|length - target| / target, target the corpus's mean"),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-task-sentiment", register_plugins)
