#include "pipeline/sft.h"

#include <torch/torch.h>

#include <algorithm>

namespace prefopt {

torch::Tensor response_nll(Policy& policy, const Sequences& batch) {
  const torch::Tensor log_probs = policy->response_log_probs(batch, /*temperature=*/1.0);
  return -log_probs.sum() / response_mask(batch).sum();
}

SftReport train_sft(Policy& policy, const Task& task, const SftOptions& options, at::Generator& generator) {
  const Sequences corpus = to_device(task.sample_corpus(options.corpus_size, generator), policy->device());
  torch::optim::AdamW optimizer(policy->parameters(), torch::optim::AdamWOptions(options.learning_rate).weight_decay(0.0));
  policy->train();
  SftReport report;
  const std::int64_t tail = std::max<std::int64_t>(1, options.steps / 10);
  double tail_sum = 0;
  for (std::int64_t step = 0; step < options.steps; ++step) {
    const Sequences batch =
        select_rows(corpus, torch::randint(options.corpus_size, {options.batch_size}, generator, torch::kLong));
    const torch::Tensor loss = response_nll(policy, batch);
    if (step == 0) report.initial_loss = loss.item<double>();
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step >= options.steps - tail) tail_sum += loss.item<double>();
    if (options.progress) options.progress(step + 1, loss.item<double>());
  }
  report.final_loss = tail_sum / static_cast<double>(std::min(tail, options.steps));
  policy->eval();
  return report;
}

}  // namespace prefopt
