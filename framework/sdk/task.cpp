#include "prefopt/task.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "runtime.h"

namespace prefopt {

Task::~Task() = default;

Sequences select_rows(const Sequences& s, const at::Tensor& rows_anywhere) {
  const at::Tensor rows = rows_anywhere.to(s.responses.device());
  return {s.prompts.index_select(0, rows), s.responses.index_select(0, rows), s.lengths.index_select(0, rows)};
}

Sequences to_device(const Sequences& s, c10::Device device) {
  return {s.prompts.to(device), s.responses.to(device), s.lengths.to(device)};
}

at::Tensor response_lengths(const at::Tensor& responses, std::int64_t eos) {
  const std::int64_t width = responses.size(1);
  const at::Tensor is_eos = responses.eq(eos);
  // The index of the first EOS, or `width` when there is none.
  const at::Tensor positions = at::arange(width, responses.options()).expand_as(responses);
  const at::Tensor first = at::where(is_eos, positions, at::full_like(positions, width)).amin(1);
  return at::clamp_max(first + 1, width);
}

namespace {
void check(bool ok, const Plugin& plugin, const std::string& what) {
  if (!ok) throw PluginError(fmt::format("{} broke the task contract: {}", plugin.display_name(), what));
}
}  // namespace

at::Tensor Task::gold_weights() const {
  at::Tensor weights = guarded([&] { return do_gold_weights(); });
  check(weights.dim() == 1 && weights.size(0) == static_cast<std::int64_t>(attribute_names().size()), *this,
        "gold_weights must have one weight per attribute");
  return weights.to(at::kFloat);
}

at::Tensor Task::sample_prompts(std::int64_t n, at::Generator& generator) const {
  at::Tensor prompts = guarded([&] { return do_sample_prompts(n, generator); });
  check(prompts.dim() == 2 && prompts.size(0) == n && prompts.size(1) == prompt_length() &&
            prompts.scalar_type() == at::kLong,
        *this, fmt::format("sample_prompts must return [{}, {}] int64", n, prompt_length()));
  check(n == 0 || prompt_length() == 0 || prompts.select(1, prompt_length() - 1).ge(0).all().item<bool>(), *this,
        "a prompt must end with a token: padding (kPromptPadding) goes on the left");
  check(n == 0 || prompts.ge(kPromptPadding).all().item<bool>(), *this, "prompts hold token ids >= 0 and kPromptPadding");
  return prompts;
}

Sequences Task::sample_corpus(std::int64_t n, at::Generator& generator) const {
  Sequences corpus = guarded([&] { return do_sample_corpus(n, generator); });
  check(corpus.prompts.dim() == 2 && corpus.prompts.size(0) == n && corpus.responses.dim() == 2 &&
            corpus.responses.size(0) == n && corpus.responses.size(1) == max_response_length() &&
            corpus.lengths.dim() == 1 && corpus.lengths.size(0) == n,
        *this, fmt::format("sample_corpus must return {} prompts and responses of width {}", n, max_response_length()));
  return corpus;
}

at::Tensor Task::score_attributes(const Sequences& sequences) const {
  const FullPrecision full_precision;
  const Sequences on_cpu = to_device(sequences, at::kCPU);
  at::Tensor scores = guarded([&] { return do_score_attributes(on_cpu); });
  check(scores.dim() == 2 && scores.size(0) == sequences.responses.size(0) &&
            scores.size(1) == static_cast<std::int64_t>(attribute_names().size()),
        *this, "score_attributes must return [batch, attributes]");
  return scores.to(at::kFloat).to(sequences.responses.device());
}

TextTask::~TextTask() = default;

std::vector<std::int64_t> TextTask::encode(const std::string& text) const {
  std::vector<std::int64_t> ids;
  std::string unspellable;
  guarded([&] {
    try {
      ids = do_encode(text);
    } catch (const std::invalid_argument& e) {
      unspellable = e.what();
    }
  });
  if (!unspellable.empty()) throw std::invalid_argument(unspellable);
  const std::int64_t vocab = vocab_size();
  const std::int64_t eos = eos_token();
  for (const std::int64_t id : ids)
    check(id >= 0 && id < vocab && id != eos, *this,
          fmt::format("encode returned token {}; tokens of text are in [0, {}) and not EOS ({})", id, vocab, eos));
  return ids;
}

const TextTask* as_text_task(const Task& task) { return dynamic_cast<const TextTask*>(&task); }

std::vector<std::int64_t> prompt_ids(const Sequences& sequences, std::int64_t row) {
  const at::Tensor prompt = sequences.prompts[row].to(at::kCPU);
  const at::Tensor real = prompt.masked_select(prompt.ne(kPromptPadding)).contiguous();
  return {real.data_ptr<std::int64_t>(), real.data_ptr<std::int64_t>() + real.numel()};
}

std::vector<std::int64_t> response_ids(const Sequences& sequences, std::int64_t row, std::int64_t eos) {
  const at::Tensor response = sequences.responses[row].to(at::kCPU).contiguous();
  const std::int64_t length = sequences.lengths[row].item<std::int64_t>();
  const std::int64_t* ids = response.data_ptr<std::int64_t>();
  std::vector<std::int64_t> out(ids, ids + length);
  if (!out.empty() && out.back() == eos) out.pop_back();
  return out;
}

at::Tensor Task::gold_reward(const Sequences& sequences) const {
  const FullPrecision full_precision;
  const at::Tensor attributes = score_attributes(sequences);
  return attributes.matmul(gold_weights().to(attributes.device()));
}

}  // namespace prefopt
