// The `synthetic` task plugin: the embedded default world, no data to download.
#include <prefopt/error.h>

#include <string>

#include "synthetic_language.h"

namespace {

using prefopt::ParamSpec;
using prefopt::synthetic::Language;
using prefopt::synthetic::LanguageOptions;

LanguageOptions options_from(const prefopt::Params& p) {
  LanguageOptions o;
  o.vocab = p.get<std::int64_t>("vocab");
  o.prompt_length = p.get<std::int64_t>("prompt_length");
  o.min_prompt_length = p.get<std::int64_t>("min_prompt_length");
  o.max_response_length = p.get<std::int64_t>("max_response_length");
  o.mean_length = p.get<double>("mean_length");
  o.target_length = p.get<double>("target_length");
  o.logit_scale = p.get<double>("logit_scale");
  o.seed = p.get<std::int64_t>("language_seed");
  o.valence_weight = p.get<double>("valence_weight");
  o.coherence_weight = p.get<double>("coherence_weight");
  o.length_weight = p.get<double>("length_weight");
  return o;
}

class SyntheticTask final : public prefopt::Task {
 public:
  explicit SyntheticTask(const prefopt::Params& params) : language_(options_from(params)) {
    if (language_.options().min_prompt_length > language_.options().prompt_length)
      throw prefopt::ConfigError("task.min_prompt_length (" + std::to_string(language_.options().min_prompt_length) +
                                 ") exceeds task.prompt_length (" + std::to_string(language_.options().prompt_length) +
                                 ")");
  }

 protected:
  std::int64_t do_vocab_size() const override { return language_.options().vocab; }
  std::int64_t do_eos_token() const override { return Language::kEos; }
  std::int64_t do_prompt_length() const override { return language_.options().prompt_length; }
  std::int64_t do_max_response_length() const override { return language_.options().max_response_length; }
  std::vector<std::string> do_attribute_names() const override { return {"valence", "coherence", "length"}; }
  at::Tensor do_gold_weights() const override { return language_.weights(); }
  at::Tensor do_sample_prompts(std::int64_t n, at::Generator& generator) const override {
    return language_.sample_prompts(n, generator);
  }
  prefopt::Sequences do_sample_corpus(std::int64_t n, at::Generator& generator) const override {
    return language_.sample_responses(language_.sample_prompts(n, generator), generator);
  }
  at::Tensor do_score_attributes(const prefopt::Sequences& sequences) const override {
    return language_.attributes(sequences);
  }

 private:
  Language language_;
};

void register_plugins(prefopt::Registrar& registrar) {
  const LanguageOptions d;
  registrar.add<SyntheticTask>(
      {.name = "synthetic",
       .version = "1.0.0",
       .description = "seeded bigram language; gold reward = valence + coherence + length terms",
       .params = {
           ParamSpec::integer("vocab", d.vocab, "vocabulary size, EOS (token 0) included").min(3).max(100000),
           ParamSpec::integer("prompt_length", d.prompt_length, "prompt tokens (at most, with min_prompt_length)")
               .min(1).max(1024),
           ParamSpec::integer("min_prompt_length", d.min_prompt_length,
                              "> 0: prompts of min_prompt_length..prompt_length tokens, left-padded; 0: all prompt_length")
               .min(0).max(1024),
           ParamSpec::integer("max_response_length", d.max_response_length, "response tokens at most, EOS included")
               .min(1).max(4096),
           ParamSpec::real("mean_length", d.mean_length, "expected response length of the true language (> 1)").min(1.1),
           ParamSpec::real("target_length", d.target_length, "response length the gold reward likes best").min(0.0),
           ParamSpec::real("logit_scale", d.logit_scale, "std of the bigram logits; larger is more predictable").min(0.0),
           ParamSpec::integer("language_seed", d.seed, "seed of the language itself: transitions and valences").min(0),
           ParamSpec::real("valence_weight", d.valence_weight, "gold weight of the mean token valence"),
           ParamSpec::real("coherence_weight", d.coherence_weight, "gold weight of the mean log-prob under the language"),
           ParamSpec::real("length_weight", d.length_weight, "gold weight of -|length - target| / target"),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-task-synthetic", register_plugins)
