// Stage `sft`: supervised fine-tuning of the base policy on the task's corpus (samples of the
// true language), by next-token cross-entropy on the response tokens.
#pragma once

#include <functional>

#include "prefopt/policy.h"

namespace prefopt {

struct SftOptions {
  std::int64_t corpus_size = 4096;
  std::int64_t steps = 300;
  std::int64_t batch_size = 64;
  double learning_rate = 3e-3;
  std::function<void(std::int64_t step, double loss)> progress = {};  // after each step, if set
};

struct SftReport {
  double initial_loss = 0;  // mean response-token NLL on the first batch, before training
  double final_loss = 0;    // mean over the last 10% of steps
};

SftReport train_sft(Policy& policy, const Task& task, const SftOptions& options, at::Generator& generator);

// Mean negative log-likelihood per response token (EOS included), the SFT loss.
torch::Tensor response_nll(Policy& policy, const Sequences& batch);

}  // namespace prefopt
