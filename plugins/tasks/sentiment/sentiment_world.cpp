#include "sentiment_world.h"

#include <cmath>
#include <stdexcept>

namespace prefopt::sentiment {

World::World(const WorldOptions& options) : options_(options), vader_(Vader::from_file(options.lexicon)) {
  const std::vector<std::string> texts = read_fortunes(options.corpus);
  tokenizer_ = BytePairTokenizer::train(texts, options.vocab);

  const std::int64_t vocab = tokenizer_.vocab_size();
  const std::int64_t width = options.prompt_length + options.max_response_length;
  at::Tensor counts = at::zeros({vocab, vocab}, at::kDouble);
  auto count = counts.accessor<double, 2>();
  // A fortune gives prompts when it is longer than the longest prompt and, after the shortest,
  // ends (EOS included) within the response.
  const std::int64_t shortest_prompt = options.min_prompt_length > 0 ? options.min_prompt_length : options.prompt_length;
  const std::int64_t longest_entry = shortest_prompt + options.max_response_length - 1;
  std::vector<std::int64_t> kept;
  double total_length = 0;
  for (const std::string& text : texts) {
    std::vector<std::int64_t> ids = tokenizer_.encode(text);
    for (std::size_t t = 1; t < ids.size(); ++t) count[ids[t - 1]][ids[t]] += 1;
    count[ids.back()][kEos] += 1;
    const auto length = static_cast<std::int64_t>(ids.size());
    if (length <= options.prompt_length || length > longest_entry) continue;
    // Prompts of every length from the shortest to the longest are equally likely.
    total_length += static_cast<double>(length + 1) - static_cast<double>(shortest_prompt + options.prompt_length) / 2;
    ids.resize(static_cast<std::size_t>(width), kEos);
    kept.insert(kept.end(), ids.begin(), ids.end());
  }
  if (kept.empty())
    throw std::runtime_error(options.corpus.string() + ": no fortune has " + std::to_string(options.prompt_length + 1) +
                             " to " + std::to_string(longest_entry) +
                             " tokens, as a prompt and a response that ends need (task.prompt_length, "
                             "task.min_prompt_length, task.max_response_length)");
  const auto rows = static_cast<std::int64_t>(kept.size()) / width;
  tokens_ = at::tensor(kept, at::kLong).view({rows, width});
  target_length_ = total_length / static_cast<double>(rows);
  const at::Tensor smoothed = counts + kSmoothing;
  bigram_log_probs_ = (smoothed / smoothed.sum(1, true)).log().to(at::kFloat);
}

at::Tensor World::weights() const {
  return at::tensor({options_.sentiment_weight, options_.fluency_weight, options_.length_weight}, at::kFloat);
}

World::Draw World::draw(std::int64_t n, at::Generator& generator) const {
  Draw d;
  d.entries = at::randint(entries(), {n}, generator, at::kLong);
  d.prompt_lengths = options_.min_prompt_length == 0
                         ? at::full({n}, options_.prompt_length, at::kLong)
                         : at::randint(options_.min_prompt_length, options_.prompt_length + 1, {n}, generator, at::kLong);
  return d;
}

at::Tensor World::prompts_of(const Draw& draw) const {
  const std::int64_t n = draw.entries.size(0), width = options_.prompt_length;
  at::Tensor prompts = at::full({n, width}, kPromptPadding, at::kLong);
  auto out = prompts.accessor<std::int64_t, 2>();
  const auto tokens = tokens_.accessor<std::int64_t, 2>();
  const auto entry = draw.entries.accessor<std::int64_t, 1>();
  const auto length = draw.prompt_lengths.accessor<std::int64_t, 1>();
  for (std::int64_t row = 0; row < n; ++row)
    for (std::int64_t t = 0; t < length[row]; ++t) out[row][width - length[row] + t] = tokens[entry[row]][t];
  return prompts;
}

at::Tensor World::sample_prompts(std::int64_t n, at::Generator& generator) const {
  return prompts_of(draw(n, generator));
}

Sequences World::sample_corpus(std::int64_t n, at::Generator& generator) const {
  const Draw d = draw(n, generator);
  const std::int64_t width = options_.max_response_length;
  at::Tensor responses = at::empty({n, width}, at::kLong);
  auto out = responses.accessor<std::int64_t, 2>();
  const auto tokens = tokens_.accessor<std::int64_t, 2>();
  const auto entry = d.entries.accessor<std::int64_t, 1>();
  const auto length = d.prompt_lengths.accessor<std::int64_t, 1>();
  for (std::int64_t row = 0; row < n; ++row)
    for (std::int64_t t = 0; t < width; ++t) out[row][t] = tokens[entry[row]][length[row] + t];
  return {prompts_of(d), responses, response_lengths(responses, kEos)};
}

std::vector<std::int64_t> World::row_ids(const Sequences& sequences, std::int64_t row) {
  const auto prompt = sequences.prompts.accessor<std::int64_t, 2>()[row];
  const auto response = sequences.responses.accessor<std::int64_t, 2>()[row];
  std::vector<std::int64_t> ids;
  for (std::int64_t t = 0; t < prompt.size(0); ++t)
    if (prompt[t] != kPromptPadding) ids.push_back(prompt[t]);
  const std::int64_t length = sequences.lengths.accessor<std::int64_t, 1>()[row];
  for (std::int64_t t = 0; t < length; ++t) ids.push_back(response[t]);
  return ids;
}

std::string World::text(const Sequences& sequences, std::int64_t row) const {
  return tokenizer_.decode(row_ids(sequences, row));
}

at::Tensor World::attributes(const Sequences& sequences) const {
  const std::int64_t n = sequences.responses.size(0);
  at::Tensor result = at::empty({n, 3}, at::kFloat);
  auto out = result.accessor<float, 2>();
  const auto lengths = sequences.lengths.accessor<std::int64_t, 1>();
  const auto log_prob = bigram_log_probs_.accessor<float, 2>();
  for (std::int64_t row = 0; row < n; ++row) {
    const std::vector<std::int64_t> ids = row_ids(sequences, row);
    // The prompt's last column is never padding, so a response always follows a prompt token.
    const auto first = ids.size() - static_cast<std::size_t>(lengths[row]);
    double fluency = 0;
    for (std::size_t t = first; t < ids.size(); ++t) fluency += log_prob[ids[t - 1]][ids[t]];
    out[row][0] = static_cast<float>(vader_.polarity(tokenizer_.decode(ids)).compound);
    out[row][1] = static_cast<float>(fluency / static_cast<double>(lengths[row]));
    out[row][2] = static_cast<float>(-std::fabs(static_cast<double>(lengths[row]) - target_length_) / target_length_);
  }
  return result;
}

}  // namespace prefopt::sentiment
