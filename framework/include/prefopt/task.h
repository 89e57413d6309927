// Task plugins define the world an experiment runs in: a token language, the prompts, a corpus
// for supervised fine-tuning, and the gold reward — the simulated "true human preference" that
// every result is measured against, so overoptimization of the proxy reward is visible.
//
// The gold reward is a weighted sum of named attributes (say valence, coherence, length), exposed
// separately so simulated annotators can weigh them differently: real disagreement, not noise.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "prefopt/plugin.h"

namespace prefopt {

// Fills the left of a prompt shorter than its batch's width: prompts of different lengths are
// right-aligned, so every prompt's last token is in the last column and every response starts at
// the same position. Models never see it: the policy masks it out of attention and counts
// positions from each prompt's first real token, so a prompt gets the same numbers however much
// padding its batch gives it. Since 3.0.
constexpr std::int64_t kPromptPadding = -1;

// Prompts and responses as token ids. A response ends at its first EOS token (included in its
// length); tokens after it are padding and carry no meaning.
struct Sequences {
  at::Tensor prompts;    // [batch, prompt_length] int64, left-padded with kPromptPadding
  at::Tensor responses;  // [batch, max_response_length] int64
  at::Tensor lengths;    // [batch] int64: tokens up to and including the first EOS, or the full width
};

// The sequences at `rows` (a minibatch, a split, a resample), on the sequences' device wherever
// `rows` is.
PREFOPT_API Sequences select_rows(const Sequences& sequences, const at::Tensor& rows);

// The same sequences on `device` (no copy when they are there already).
PREFOPT_API Sequences to_device(const Sequences& sequences, c10::Device device);

// The length of each response: up to and including its first `eos`, or the full width.
PREFOPT_API at::Tensor response_lengths(const at::Tensor& responses, std::int64_t eos);

// A task computes on the CPU, in full precision: its prompts and corpus are CPU tensors (drawn
// from CPU generators), and score_attributes / gold_reward hand the plugin CPU copies of the
// sequences, with bfloat16 autocast off, and return the results on the sequences' own device.
class PREFOPT_API Task : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::task;
  ~Task() override;
  PluginKind kind() const final { return kKind; }

  std::int64_t vocab_size() const { return guarded([&] { return do_vocab_size(); }); }
  std::int64_t eos_token() const { return guarded([&] { return do_eos_token(); }); }
  std::int64_t prompt_length() const { return guarded([&] { return do_prompt_length(); }); }
  std::int64_t max_response_length() const { return guarded([&] { return do_max_response_length(); }); }
  // Names of the gold reward's attributes, in the order of score_attributes' columns.
  std::vector<std::string> attribute_names() const { return guarded([&] { return do_attribute_names(); }); }
  // [attributes] float: gold reward = score_attributes(s) · gold_weights().
  at::Tensor gold_weights() const;

  // [n, prompt_length] prompts from the task's prompt distribution; shorter ones left-padded with
  // kPromptPadding (never the last column).
  at::Tensor sample_prompts(std::int64_t n, at::Generator& generator) const;
  // n prompts with responses sampled from the true language: the supervised fine-tuning corpus.
  Sequences sample_corpus(std::int64_t n, at::Generator& generator) const;
  // [batch, attributes] float: each attribute of each (prompt, response).
  at::Tensor score_attributes(const Sequences& sequences) const;
  // [batch] float: the gold reward.
  at::Tensor gold_reward(const Sequences& sequences) const;

 protected:
  virtual std::int64_t do_vocab_size() const = 0;
  virtual std::int64_t do_eos_token() const = 0;
  virtual std::int64_t do_prompt_length() const = 0;
  virtual std::int64_t do_max_response_length() const = 0;
  virtual std::vector<std::string> do_attribute_names() const = 0;
  virtual at::Tensor do_gold_weights() const = 0;
  virtual at::Tensor do_sample_prompts(std::int64_t n, at::Generator& generator) const = 0;
  virtual Sequences do_sample_corpus(std::int64_t n, at::Generator& generator) const = 0;
  virtual at::Tensor do_score_attributes(const Sequences& sequences) const = 0;
};

// A task whose tokens spell text: datasets of text are encoded with it (docs/data.md), and its
// prompts and responses can be read. Since 3.1.
class PREFOPT_API TextTask : public Task {
 public:
  ~TextTask() override;

  // The token ids of `text` (no EOS, no padding), each in [0, vocab_size()) and none EOS. Text the
  // task cannot spell (a character its tokenizer never saw) is the caller's problem, not the
  // plugin's: std::invalid_argument, with the plugin's reason.
  std::vector<std::int64_t> encode(const std::string& text) const;
  // The text of token ids, as encode would have read it.
  std::string decode(const std::vector<std::int64_t>& ids) const { return guarded([&] { return do_decode(ids); }); }

 protected:
  // Throws std::invalid_argument for text the task cannot spell.
  virtual std::vector<std::int64_t> do_encode(const std::string& text) const = 0;
  virtual std::string do_decode(const std::vector<std::int64_t>& ids) const = 0;
};

// `task`'s text interface, or null when its tokens are not text. TextTask's type information
// lives once, in libprefopt, so the cast holds across plugin libraries. Since 3.1.
PREFOPT_API const TextTask* as_text_task(const Task& task);

// Row `row` of `sequences` as token ids: its prompt without padding, or its response up to and
// excluding EOS. Since 3.1.
PREFOPT_API std::vector<std::int64_t> prompt_ids(const Sequences& sequences, std::int64_t row);
PREFOPT_API std::vector<std::int64_t> response_ids(const Sequences& sequences, std::int64_t row, std::int64_t eos);

}  // namespace prefopt
