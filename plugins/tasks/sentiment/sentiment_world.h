// The sentiment task's world: the DPO paper's IMDb setting in miniature. Prompts are the first
// tokens of fortune cookies, the supervised corpus their true continuations, and the gold reward
// weighs two attributes of the whole text (prompt and response). Only fortunes that end within
// the response give prompts, so every corpus response ends with EOS and the base policy learns
// to stop; every fortune teaches the tokenizer and the bigram model.
//
//   sentiment  VADER's compound score of the text, in [-1, 1]
//   fluency    mean log-probability of the response's tokens (EOS included) under a bigram model
//              of the corpus (add-0.1 smoothing): low for word salad and loops
//   length     -|length - target| / target, target the corpus responses' mean length: a
//              one-word answer is as unwelcome as a rambling one (fluency alone would favour
//              ending at once, since "." then EOS is the likeliest ending there is)
//
// A proxy trained on sentiment labels learns which words VADER likes long before it learns
// VADER's negation, "but" and "least" rules or what the corpus would never say, so a policy
// optimized hard against it drifts into positive word salad: the gold reward, with fluency in it,
// rises and then falls.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fortune_corpus.h"
#include "prefopt/task.h"
#include "vader.h"

namespace prefopt::sentiment {

struct WorldOptions {
  std::filesystem::path corpus = "/usr/share/games/fortunes";
  std::filesystem::path lexicon;  // vader_lexicon.txt
  std::int64_t vocab = 512;
  std::int64_t prompt_length = 8;
  std::int64_t min_prompt_length = 0;  // > 0: prompts of min..prompt_length tokens, left-padded; 0: all prompt_length
  std::int64_t max_response_length = 24;
  double sentiment_weight = 1.0;
  double fluency_weight = 0.1;
  double length_weight = 0.3;
};

class World {
 public:
  static constexpr std::int64_t kEos = BytePairTokenizer::kEos;
  static constexpr double kSmoothing = 0.1;  // added to every bigram count

  // Throws std::runtime_error naming the corpus or lexicon file when one cannot be read.
  explicit World(const WorldOptions& options);

  const WorldOptions& options() const { return options_; }
  const BytePairTokenizer& tokenizer() const { return tokenizer_; }
  const Vader& vader() const { return vader_; }
  std::int64_t entries() const { return tokens_.size(0); }  // fortunes that give prompts
  // [vocab, vocab]: log P(next = j | previous = i) under the corpus's smoothed bigram counts.
  const at::Tensor& bigram_log_probs() const { return bigram_log_probs_; }
  double target_length() const { return target_length_; }
  at::Tensor weights() const;  // [3]: sentiment, fluency, length

  // Row r's text: its prompt without padding, then its response up to its length.
  std::string text(const Sequences& sequences, std::int64_t row) const;
  at::Tensor sample_prompts(std::int64_t n, at::Generator& generator) const;
  Sequences sample_corpus(std::int64_t n, at::Generator& generator) const;
  at::Tensor attributes(const Sequences& sequences) const;  // [batch, 3]: sentiment, fluency, length

 private:
  struct Draw {
    at::Tensor entries;         // [n] int64: which fortune
    at::Tensor prompt_lengths;  // [n] int64
  };
  Draw draw(std::int64_t n, at::Generator& generator) const;
  // Row r's prompt tokens without padding, then its response's tokens up to its length.
  static std::vector<std::int64_t> row_ids(const Sequences& sequences, std::int64_t row);
  at::Tensor prompts_of(const Draw& draw) const;

  WorldOptions options_;
  BytePairTokenizer tokenizer_;
  Vader vader_;
  at::Tensor tokens_;  // [entries, prompt_length + max_response_length]: each fortune's first tokens, then EOS
  at::Tensor bigram_log_probs_;
  double target_length_ = 0;  // mean corpus response length, EOS included
};

}  // namespace prefopt::sentiment
