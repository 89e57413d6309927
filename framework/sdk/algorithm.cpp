#include "prefopt/algorithm.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>

namespace prefopt {

Algorithm::~Algorithm() = default;

Checkpoints::~Checkpoints() = default;

void TrainingState::add(const std::string& name, std::function<void(torch::serialize::OutputArchive&)> save,
                        std::function<void(torch::serialize::InputArchive&)> load) {
  entries_.push_back({name, std::move(save), std::move(load)});
}

void TrainingState::add(const std::string& name, torch::nn::Module& module) {
  add(
      name,
      [&module, name](torch::serialize::OutputArchive& archive) {
        torch::serialize::OutputArchive part;
        module.save(part);
        archive.write(name, part);
      },
      [&module, name](torch::serialize::InputArchive& archive) {
        torch::serialize::InputArchive part;
        archive.read(name, part);
        module.load(part);
      });
}

void TrainingState::add(const std::string& name, torch::optim::Optimizer& optimizer) {
  add(
      name,
      [&optimizer, name](torch::serialize::OutputArchive& archive) {
        torch::serialize::OutputArchive part;
        optimizer.save(part);
        archive.write(name, part);
      },
      [&optimizer, name](torch::serialize::InputArchive& archive) {
        torch::serialize::InputArchive part;
        archive.read(name, part);
        optimizer.load(part);
      });
}

void TrainingState::add(const std::string& name, at::Tensor& tensor) {
  add(
      name,
      [&tensor, name](torch::serialize::OutputArchive& archive) {
        archive.write(name + ".defined", c10::IValue(tensor.defined()));
        if (tensor.defined()) archive.write(name, tensor.detach().cpu());
      },
      [&tensor, name](torch::serialize::InputArchive& archive) {
        c10::IValue defined;
        archive.read(name + ".defined", defined);
        if (!defined.toBool()) {
          tensor = at::Tensor();
          return;
        }
        at::Tensor loaded;
        archive.read(name, loaded);
        tensor = tensor.defined() ? loaded.to(tensor.device()) : loaded;
      });
}

void TrainingState::add(const std::string& name, std::int64_t& value) {
  add(
      name, [&value, name](torch::serialize::OutputArchive& archive) { archive.write(name, c10::IValue(value)); },
      [&value, name](torch::serialize::InputArchive& archive) {
        c10::IValue loaded;
        archive.read(name, loaded);
        value = loaded.toInt();
      });
}

void TrainingState::add(const std::string& name, double& value) {
  add(
      name, [&value, name](torch::serialize::OutputArchive& archive) { archive.write(name, c10::IValue(value)); },
      [&value, name](torch::serialize::InputArchive& archive) {
        c10::IValue loaded;
        archive.read(name, loaded);
        value = loaded.toDouble();
      });
}

void TrainingState::add(const std::string& name, at::Generator& generator) {
  add(
      name, [&generator, name](torch::serialize::OutputArchive& archive) { archive.write(name, generator.get_state()); },
      [&generator, name](torch::serialize::InputArchive& archive) {
        at::Tensor loaded;
        archive.read(name, loaded);
        generator.set_state(loaded.cpu());  // a generator's state is a CPU byte tensor
      });
}

void TrainingState::save(torch::serialize::OutputArchive& archive) const {
  for (const Entry& entry : entries_) entry.save(archive);
}

void TrainingState::load(torch::serialize::InputArchive& archive) {
  for (Entry& entry : entries_) {
    try {
      entry.load(archive);
    } catch (const c10::Error& e) {
      throw std::runtime_error(fmt::format("the checkpoint lacks '{}' or holds it in another shape: {}", entry.name,
                                           e.what_without_backtrace()));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(fmt::format("the checkpoint's '{}' is unreadable: {}", entry.name, e.what()));
    }
  }
}

namespace {

void run_training(AlgorithmContext& context, const std::string& name, const TrainingState* trainer_state,
                  const std::function<StepReport(std::int64_t step)>& step) {
  const TrainingBudget& budget = context.budget;
  std::map<std::string, double> sums;
  std::int64_t steps_since_evaluation = 0;
  std::int64_t samples = 0;
  std::int64_t done = 0;
  const auto evaluate = [&](std::int64_t at_step) {
    Sequences responses = context.policy->sample(context.evaluation_prompts, context.response_length,
                                                 {.temperature = context.temperature}, context.task.eos_token(),
                                                 context.evaluation_generator);
    std::map<std::string, double> diagnostics;
    for (const auto& [key, sum] : sums) diagnostics[key] = sum / static_cast<double>(steps_since_evaluation);
    diagnostics["samples"] = static_cast<double>(samples);
    context.evaluate({.step = at_step,
                      .label = fmt::format("step {}", at_step),
                      .responses = std::move(responses),
                      .kl = std::nullopt,  // the evaluation estimates it from the responses
                      .kl_se = std::nullopt,
                      .diagnostics = std::move(diagnostics)});
    sums.clear();
    steps_since_evaluation = 0;
  };

  Checkpoints* const checkpoints = context.checkpoints;
  at::Generator default_generator = at::detail::getDefaultCPUGenerator();  // initializations, dropout
  // The trainer's state plus this loop's own (references to locals here: a copy, not the caller's).
  std::optional<TrainingState> own_state;
  if (trainer_state != nullptr) own_state = *trainer_state;
  TrainingState* const state = own_state ? &*own_state : nullptr;
  if (checkpoints != nullptr && state != nullptr) {
    state->add("train.policy", *context.policy);
    state->add("train.step", done);
    state->add("train.samples", samples);
    state->add("train.steps_since_evaluation", steps_since_evaluation);
    // Names and values apart: JSON has no NaN, and a diverging run's loss may be one.
    state->add(
        "train.sums",
        [&](torch::serialize::OutputArchive& archive) {
          std::vector<std::string> names;
          std::vector<double> values;
          for (const auto& [name, sum] : sums) names.push_back(name), values.push_back(sum);
          archive.write("train.sums.names", c10::IValue(nlohmann::json(names).dump()));
          archive.write("train.sums.values", torch::tensor(values, torch::kDouble));
        },
        [&](torch::serialize::InputArchive& archive) {
          c10::IValue names;
          at::Tensor values;
          archive.read("train.sums.names", names);
          archive.read("train.sums.values", values);
          const auto keys = nlohmann::json::parse(names.toStringRef()).get<std::vector<std::string>>();
          sums.clear();
          for (std::size_t i = 0; i < keys.size(); ++i) sums[keys[i]] = values[static_cast<std::int64_t>(i)].item<double>();
        });
    state->add("train.generator", context.generator);
    state->add("train.evaluation_generator", context.evaluation_generator);
    state->add("train.default_generator", default_generator);
  }
  // A trainer without state has nothing to save: it runs on (stopping would only restart it from
  // scratch, and a requeued Slurm task would then loop), until whoever asked kills it.
  const auto stop_if_requested = [&] {
    if (checkpoints == nullptr || state == nullptr || !checkpoints->stop_requested()) return;
    checkpoints->save(*state, done);
    throw Stopped(fmt::format("{}: stopped at step {} of {}; checkpoint saved", name, done, budget.steps));
  };

  const bool resumed = checkpoints != nullptr && state != nullptr && checkpoints->load(*state);
  if (!resumed) evaluate(0);
  stop_if_requested();
  while (done < budget.steps && (budget.samples <= 0 || samples < budget.samples)) {
    const StepReport report = step(++done);
    samples += report.samples;
    for (const auto& [key, value] : report.diagnostics) sums[key] += value;
    ++steps_since_evaluation;
    if (context.progress) context.progress(fmt::format("{}: step {}/{}", name, done, budget.steps));
    if (done % budget.eval_every == 0) evaluate(done);
    stop_if_requested();
    if (checkpoints != nullptr && state != nullptr && checkpoints->every() > 0 && done % checkpoints->every() == 0)
      checkpoints->save(*state, done);
  }
  if (steps_since_evaluation > 0) evaluate(done);
}

}  // namespace

void train(AlgorithmContext& context, const std::string& name, const TrainingState& state,
           const std::function<StepReport(std::int64_t step)>& step) {
  run_training(context, name, &state, step);
}

void train(AlgorithmContext& context, const std::string& name,
           const std::function<StepReport(std::int64_t step)>& step) {
  run_training(context, name, nullptr, step);
}

ChosenRejected ChosenRejected::select(const at::Tensor& rows) const {
  return {select_rows(chosen, rows), select_rows(rejected, rows)};
}

ChosenRejected chosen_and_rejected(const PreferenceData& data) {
  const PreferenceData kept = data.select(data.labels.keep.nonzero().squeeze(1));
  const at::Tensor a_wins = kept.labels.prefers_a;
  const auto pick = [](const at::Tensor& condition, const Sequences& yes, const Sequences& no) {
    const at::Tensor rows = condition.unsqueeze(1);
    return Sequences{yes.prompts, torch::where(rows, yes.responses, no.responses),
                     torch::where(condition, yes.lengths, no.lengths)};
  };
  return {pick(a_wins, kept.a, kept.b), pick(a_wins, kept.b, kept.a)};
}

SequenceLogProbs sequence_log_probs(Policy& policy, const Sequences& sequences, double temperature) {
  const at::Tensor sum = policy->response_log_probs(sequences, temperature).sum(1);
  return {sum, sum / sequences.lengths.to(sum.device()).to(sum.scalar_type())};
}

double apply_gradients(torch::optim::Optimizer& optimizer, const at::Tensor& loss, double max_grad_norm) {
  optimizer.zero_grad();
  loss.backward();
  std::vector<at::Tensor> parameters;
  for (const auto& group : optimizer.param_groups())
    for (const auto& parameter : group.params()) parameters.push_back(parameter);
  const double norm = torch::nn::utils::clip_grad_norm_(
      parameters, max_grad_norm > 0 ? max_grad_norm : std::numeric_limits<double>::infinity());
  optimizer.step();
  return norm;
}

std::vector<ParamSpec> pair_training_params(double learning_rate) {
  return {ParamSpec::integer("batch_size", 64, "preference pairs per step").min(1),
          ParamSpec::real("learning_rate", learning_rate, "AdamW learning rate").min(0.0),
          ParamSpec::real("max_grad_norm", 1.0, "clip the gradient's global norm to this; 0: no clipping").min(0.0)};
}

PairTrainingOptions pair_training_options(const Params& params, bool reference) {
  return {.batch_size = params.get<std::int64_t>("batch_size"),
          .learning_rate = params.get<double>("learning_rate"),
          .max_grad_norm = params.get<double>("max_grad_norm"),
          .reference = reference};
}

std::vector<ParamSpec> rollout_params(const RolloutOptions& defaults, std::int64_t min_per_prompt) {
  return {ParamSpec::integer("prompts", defaults.prompts, "fresh prompts per rollout").min(1),
          ParamSpec::integer("per_prompt", defaults.per_prompt, "responses sampled per prompt")
              .min(static_cast<double>(min_per_prompt)),
          ParamSpec::boolean("eos_trick", defaults.eos_trick, "score a response that never ends (no EOS) no_eos_score"),
          ParamSpec::real("no_eos_score", defaults.no_eos_score,
                          "the score of a response without EOS, in normalized proxy units")};
}

RolloutOptions rollout_options(const Params& params) {
  return {.prompts = params.get<std::int64_t>("prompts"),
          .per_prompt = params.get<std::int64_t>("per_prompt"),
          .eos_trick = params.get<bool>("eos_trick"),
          .no_eos_score = params.get<double>("no_eos_score")};
}

void train_on_pairs(AlgorithmContext& context, const std::string& name, const PairTrainingOptions& options,
                    const PairLoss& loss) {
  const ChosenRejected data = chosen_and_rejected(context.preferences);
  const std::int64_t n = data.size();
  if (n == 0) throw std::invalid_argument(name + ": no kept preference pairs to learn from");
  const std::int64_t batch_size = std::min(options.batch_size, n);
  // The reference never changes: its log-probs for every pair are computed once.
  SequenceLogProbs reference_chosen, reference_rejected;
  if (options.reference) {
    torch::NoGradGuard no_grad;
    reference_chosen = sequence_log_probs(context.reference, data.chosen, context.temperature);
    reference_rejected = sequence_log_probs(context.reference, data.rejected, context.temperature);
  }
  const auto rows_of = [](const SequenceLogProbs& all, const at::Tensor& rows) {
    if (!all.sum.defined()) return SequenceLogProbs{};
    return SequenceLogProbs{all.sum.index_select(0, rows), all.average.index_select(0, rows)};
  };

  torch::optim::AdamW optimizer(context.policy->parameters(), torch::optim::AdamWOptions(options.learning_rate));
  at::Tensor order;  // this pass's order of the pairs, from `next` on still to come
  std::int64_t next = n;
  TrainingState state;
  state.add("pairs.optimizer", optimizer);
  state.add("pairs.order", order);
  state.add("pairs.next", next);
  train(context, name, state, [&](std::int64_t) {
    if (next + batch_size > n) {
      order = torch::randperm(n, context.generator, torch::kLong);
      next = 0;
    }
    const at::Tensor rows = order.narrow(0, next, batch_size).to(context.policy->device());
    next += batch_size;
    PairBatch batch{data.select(rows), {}, {}, rows_of(reference_chosen, rows), rows_of(reference_rejected, rows)};
    // Chosen and rejected in one forward pass.
    const Sequences both{torch::cat({batch.pairs.chosen.prompts, batch.pairs.rejected.prompts}),
                         torch::cat({batch.pairs.chosen.responses, batch.pairs.rejected.responses}),
                         torch::cat({batch.pairs.chosen.lengths, batch.pairs.rejected.lengths})};
    const SequenceLogProbs policy = sequence_log_probs(context.policy, both, context.temperature);
    batch.chosen = {policy.sum.narrow(0, 0, batch_size), policy.average.narrow(0, 0, batch_size)};
    batch.rejected = {policy.sum.narrow(0, batch_size, batch_size), policy.average.narrow(0, batch_size, batch_size)};
    StepReport report{.samples = batch_size, .diagnostics = {}};
    const at::Tensor value = loss(batch, report.diagnostics).mean();
    report.diagnostics["loss"] = value.item<double>();
    report.diagnostics["grad_norm"] = apply_gradients(optimizer, value, options.max_grad_norm);
    return report;
  });
}

Rollout roll_out(AlgorithmContext& context, const RolloutOptions& options) {
  torch::NoGradGuard no_grad;
  const at::Tensor prompts =
      context.task.sample_prompts(options.prompts, context.generator).repeat_interleave(options.per_prompt, 0);
  Rollout rollout;
  rollout.samples = context.policy->sample(prompts, context.response_length, {.temperature = context.temperature},
                                           context.task.eos_token(), context.generator);
  rollout.mask = response_mask(rollout.samples);
  rollout.log_probs = context.policy->response_log_probs(rollout.samples, context.temperature);
  rollout.reference_log_probs = context.reference->response_log_probs(rollout.samples, context.temperature);
  rollout.has_eos = rollout.samples.responses.eq(context.task.eos_token()).any(1);
  rollout.scores = context.proxy_reward(rollout.samples).to(rollout.log_probs.device());
  if (options.eos_trick)
    rollout.scores = torch::where(rollout.has_eos, rollout.scores, torch::full_like(rollout.scores, options.no_eos_score));
  return rollout;
}

GroupExtremes group_extremes(const at::Tensor& scores, std::int64_t group_size) {
  if (scores.dim() != 1)
    throw std::invalid_argument(
        fmt::format("group_extremes: expected one score per row ([n]), got {} dimensions", scores.dim()));
  if (group_size < 1 || scores.size(0) % group_size != 0)
    throw std::invalid_argument(
        fmt::format("group_extremes: {} scores do not split into groups of {}", scores.size(0), group_size));
  const at::Tensor grouped = scores.reshape({-1, group_size});
  const at::Tensor first = torch::arange(grouped.size(0), scores.options().dtype(torch::kLong)) * group_size;
  return {.best = grouped.argmax(1) + first, .worst = grouped.argmin(1) + first};
}

}  // namespace prefopt
