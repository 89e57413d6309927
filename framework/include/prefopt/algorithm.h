// Algorithm plugins optimize the policy — against the ensemble's proxy reward (RLHF: PPO, RLOO,
// GRPO), directly on the preference pairs (DPO and its kin), or by inference-time selection
// (best-of-n). Each hands what it produced to the shared evaluation through the context, so every
// algorithm is measured the same way: gold reward beside proxy reward, KL to the reference.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "prefopt/reward_model.h"

namespace prefopt {

// Responses the algorithm's current policy gives to the evaluation prompts.
struct EvaluationPoint {
  std::int64_t step = 0;     // training steps (or, for best-of-n, the index of n) so far
  std::string label;         // "step 100", "n = 16"
  Sequences responses;       // to AlgorithmContext::evaluation_prompts
  // KL(pi || pi_ref) when the algorithm knows it (best-of-n estimates its own, with kl_se);
  // left empty, the evaluation estimates it from the responses' log-probs.
  std::optional<double> kl;
  std::optional<double> kl_se;  // kl's standard error, when kl is an estimate
  std::map<std::string, double> diagnostics;  // the algorithm's own numbers (loss, clip fraction, ...)
};

// What a trainer may spend, the same for every algorithm of a comparison ([train] section).
struct TrainingBudget {
  std::int64_t steps = 200;      // updates (one batch of pairs, or one rollout, each) at most
  std::int64_t samples = 0;      // responses sampled, or preference pairs read, at most; 0: no limit
  std::int64_t eval_every = 50;  // evaluate every this many steps, and after the last one
};

// What a trainer keeps from one step to the next besides the policy: its optimizers, other
// models, counters, random generators. Registered with `train`, it goes into the trial's
// checkpoints and comes back on resume, so a stopped trial continues exactly where it stopped
// and ends with the metrics of an uninterrupted run. Holds references: everything registered
// must outlive the `train` call.
class PREFOPT_API TrainingState {
 public:
  void add(const std::string& name, torch::nn::Module& module);
  void add(const std::string& name, torch::optim::Optimizer& optimizer);
  void add(const std::string& name, at::Tensor& tensor);  // may be undefined
  void add(const std::string& name, std::int64_t& value);
  void add(const std::string& name, double& value);
  void add(const std::string& name, at::Generator& generator);
  // Anything else, through its own save and load.
  void add(const std::string& name, std::function<void(torch::serialize::OutputArchive&)> save,
           std::function<void(torch::serialize::InputArchive&)> load);

  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);  // throws when an entry is missing

 private:
  struct Entry {
    std::string name;
    std::function<void(torch::serialize::OutputArchive&)> save;
    std::function<void(torch::serialize::InputArchive&)> load;
  };
  std::vector<Entry> entries_;
};

// Where a trial's checkpoints go, given by the pipeline to `train`.
class PREFOPT_API Checkpoints {
 public:
  virtual ~Checkpoints();
  virtual std::int64_t every() const = 0;   // steps between periodic checkpoints; 0: none
  virtual bool stop_requested() const = 0;  // a signal asked the trial to save and stop
  // Loads the last checkpoint into `state`; false when there is none.
  virtual bool load(TrainingState& state) = 0;
  virtual void save(const TrainingState& state, std::int64_t step) = 0;
};

// The policies, the reward models behind proxy_reward, the preference pairs and the evaluation
// prompts live on the trial's device (`policy->device()`, from `[runtime] device`); the
// generators are CPU generators, so move what you draw with them (an index permutation, say)
// before indexing device tensors: select_rows and PreferenceData::select do it for you.
struct AlgorithmContext {
  Policy policy;                 // starts as a copy of the SFT policy; trainable
  Policy reference;              // the frozen SFT policy
  const Task& task;
  const PreferenceData& preferences;  // the reward models' training pairs
  std::function<at::Tensor(const Sequences&)> proxy_reward;  // [batch]: the ensemble's combined score
  at::Tensor evaluation_prompts;                             // [prompts, prompt_length]
  std::int64_t response_length;
  double temperature;  // sampling temperature, also for recomputed log-probs
  TrainingBudget budget;
  at::Generator& generator;             // for training: prompts, samples, minibatch order
  at::Generator& evaluation_generator;  // for the responses handed to `evaluate`
  std::function<void(const EvaluationPoint&)> evaluate;  // the shared evaluation: call as you go
  std::function<void(const std::string&)> progress;      // a status line ("dpo: step 12/200")
  Checkpoints* checkpoints = nullptr;                    // null: the trial keeps no checkpoints
};

// What one training step reports to `train`.
struct StepReport {
  std::int64_t samples = 0;                   // responses sampled or pairs read by this step
  std::map<std::string, double> diagnostics;  // averaged over the steps between evaluations
};

// The loop every trainer shares: evaluates the untrained policy (step 0), calls `step(1)`,
// `step(2)`, ... until the budget's steps or samples are spent, and evaluates the policy's
// samples every `eval_every` steps and after the last step, with the diagnostics' means since the
// previous evaluation.
//
// With context.checkpoints, it saves `state` with the policy, its own counters and the random
// generators every `every()` steps, and when a stop is requested saves them and throws Stopped;
// it first resumes from the last checkpoint when there is one. `state` must hold everything
// `step` carries over from one call to the next.
PREFOPT_API void train(AlgorithmContext& context, const std::string& name, const TrainingState& state,
                       const std::function<StepReport(std::int64_t step)>& step);

// The same for a trainer that declares no state: it is never checkpointed and ignores stop
// requests (it has nothing to save); a trial killed during it starts over.
PREFOPT_API void train(AlgorithmContext& context, const std::string& name,
                       const std::function<StepReport(std::int64_t step)>& step);

// The kept pairs of `data` as (chosen, rejected) responses, by the aggregated label.
struct ChosenRejected {
  Sequences chosen;
  Sequences rejected;
  std::int64_t size() const { return chosen.responses.size(0); }
  PREFOPT_API ChosenRejected select(const at::Tensor& rows) const;
};
PREFOPT_API ChosenRejected chosen_and_rejected(const PreferenceData& data);

// Sequence log-probs [batch] (sum over response tokens) and per-token averages [batch].
struct SequenceLogProbs {
  at::Tensor sum;
  at::Tensor average;
};
PREFOPT_API SequenceLogProbs sequence_log_probs(Policy& policy, const Sequences& sequences, double temperature);

// zero_grad, backward, clip the gradients' global norm to `max_grad_norm` (0: no clipping),
// step. Returns the norm before clipping.
PREFOPT_API double apply_gradients(torch::optim::Optimizer& optimizer, const at::Tensor& loss, double max_grad_norm);

// ---- Learning from the preference pairs (DPO, ORPO, SimPO, KTO) ----------------------------

struct PairTrainingOptions {
  std::int64_t batch_size = 64;  // pairs per step
  double learning_rate = 1e-3;   // AdamW
  double max_grad_norm = 1.0;
  bool reference = true;  // compute the reference policy's log-probs (reference-free losses skip it)
};

// A minibatch of kept pairs with the policy's log-probs (differentiable) and the reference's.
struct PairBatch {
  ChosenRejected pairs;
  SequenceLogProbs chosen;
  SequenceLogProbs rejected;
  SequenceLogProbs reference_chosen;    // undefined tensors when options.reference is false
  SequenceLogProbs reference_rejected;
};

// The parameters every pair learner declares (batch_size, learning_rate, max_grad_norm), and the
// options they give.
PREFOPT_API std::vector<ParamSpec> pair_training_params(double learning_rate);
PREFOPT_API PairTrainingOptions pair_training_options(const Params& params, bool reference);

// The loss of a batch ([batch] or scalar; its mean is minimized); may add diagnostics.
using PairLoss = std::function<at::Tensor(const PairBatch&, std::map<std::string, double>& diagnostics)>;

// Trains context.policy on shuffled minibatches of the kept preference pairs (reshuffled every
// pass) within context.budget, through `train`, checkpointed. Reports "loss" and "grad_norm".
PREFOPT_API void train_on_pairs(AlgorithmContext& context, const std::string& name, const PairTrainingOptions& options,
                                const PairLoss& loss);

// ---- Learning from the proxy reward (PPO, RLOO, GRPO) --------------------------------------

struct RolloutOptions {
  std::int64_t prompts = 64;     // fresh prompts per rollout
  std::int64_t per_prompt = 1;   // responses per prompt, adjacent in the rollout
  bool eos_trick = true;         // a response without EOS gets `no_eos_score` instead of its proxy score
  double no_eos_score = -2.0;
};

// The parameters every reward learner declares (prompts, per_prompt, eos_trick, no_eos_score),
// with `defaults` as their defaults and per_prompt at least `min_per_prompt`, and the options
// they give. Find them by name, not position.
PREFOPT_API std::vector<ParamSpec> rollout_params(const RolloutOptions& defaults, std::int64_t min_per_prompt);
PREFOPT_API RolloutOptions rollout_options(const Params& params);

struct Rollout {
  Sequences samples;               // [prompts * per_prompt] responses of the policy
  at::Tensor mask;                 // [n, width] float: 1 on response tokens
  at::Tensor log_probs;            // [n, width] the policy's, at sampling time (no gradient)
  at::Tensor reference_log_probs;  // [n, width]
  at::Tensor scores;               // [n] the proxy reward (or no_eos_score)
  at::Tensor has_eos;              // [n] bool
};

// Samples fresh prompts and the policy's responses to them, at context.temperature, and scores
// them; log-probs for policy and reference are computed at the same temperature.
PREFOPT_API Rollout roll_out(AlgorithmContext& context, const RolloutOptions& options);

// The best and the worst row of each group of `group_size` adjacent rows of `scores` ([n], n a
// multiple of group_size; a rollout's responses to one prompt are adjacent): [n / group_size]
// row indices each, for select_rows. Ties go to the earlier row; a NaN score is both its group's
// best and worst (argmax and argmin both pick it). Best-of-k selection (RAFT,
// rejection sampling) takes `best`; best-against-worst preference pairs take both. Since 2.1.
struct GroupExtremes {
  at::Tensor best;
  at::Tensor worst;
};
PREFOPT_API GroupExtremes group_extremes(const at::Tensor& scores, std::int64_t group_size);

class PREFOPT_API Algorithm : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::algorithm;
  ~Algorithm() override;
  PluginKind kind() const final { return kKind; }

  void run(AlgorithmContext& context) const { guarded([&] { do_run(context); }); }

 protected:
  virtual void do_run(AlgorithmContext& context) const = 0;
};

}  // namespace prefopt
