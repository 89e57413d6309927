#include "pipeline/trial.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <fstream>

#include "config/validate.h"
#include "files.h"
#include "pipeline/checkpoint.h"
#include "pipeline/sft.h"
#include "pipeline/stage_cache.h"
#include "runtime.h"
#include "threads.h"
#include "prefopt/algorithm.h"
#include "prefopt/ensemble.h"

namespace prefopt {
namespace fs = std::filesystem;
using nlohmann::json;

// Bump when a stage's stored format or computation changes: old cache entries stop matching.
// 2: sampling by inverse CDF from up-front uniforms; keys name the device type and dtype.
constexpr const char* kStageVersion = "2";

const std::vector<std::pair<std::string, std::vector<ParamSpec>>>& pipeline_sections() {
  static const std::vector<std::pair<std::string, std::vector<ParamSpec>>> sections = {
      {"policy",
       {ParamSpec::integer("width", 64, "transformer width").min(1),
        ParamSpec::integer("depth", 2, "transformer blocks").min(1),
        ParamSpec::integer("heads", 4, "attention heads; must divide width").min(1)}},
      {"sft",
       {ParamSpec::integer("corpus_size", 4096, "sequences sampled from the task's true language").min(1),
        ParamSpec::integer("steps", 300, "training steps").min(0),
        ParamSpec::integer("batch_size", 64, "sequences per step").min(1),
        ParamSpec::real("learning_rate", 3e-3, "AdamW learning rate").min(0.0)}},
      {"preferences",
       {ParamSpec::integer("pairs", 2000, "labelled pairs for reward-model training").min(1),
        ParamSpec::integer("held_out", 500, "further pairs to measure reward-model accuracy").min(1)}},
      {"reward_models",
       {ParamSpec::integer("members", 3, "reward models in the ensemble (different seeds)").min(1).max(64),
        ParamSpec::boolean("bootstrap", false, "train each member on a bootstrap resample of the pairs")}},
      {"train",
       {ParamSpec::integer("steps", 200, "updates at most: a batch of pairs, or one rollout, each").min(0),
        ParamSpec::integer("samples", 0, "responses sampled, or pairs read, at most; 0: no limit").min(0),
        ParamSpec::integer("eval_every", 50, "evaluate every this many steps, and after the last").min(1),
        ParamSpec::integer("checkpoint_every", 0, "save a checkpoint every this many steps; 0: at every evaluation")
            .min(0)}},
      {"eval",
       {ParamSpec::integer("prompts", 256, "held-out prompts per evaluation").min(1),
        ParamSpec::real("temperature", 1.0, "sampling temperature of every policy").min(1e-6)}},
      {"runtime",
       {ParamSpec::integer("threads", 0,
                           "OpenBLAS threads of the trial (libtorch's intra-op pool gets one); 0: the trial's share of "
                           "the cores")
            .min(0),
        ParamSpec::string("device", "auto", "where the models compute: auto (CUDA when there is one), cpu, cuda, cuda:N"),
        ParamSpec::string("dtype", "float32", "float32, or bfloat16: autocast with fp32 weights and optimizer state")
            .one_of({"float32", "bfloat16"}),
        ParamSpec::boolean("tf32", true, "on CUDA, fp32 matrix products in TF32 (10-bit mantissa inputs)")}},
      {"tracking",
       {ParamSpec::boolean("tensorboard", false, "write TensorBoard event files into the run folder's tensorboard/"),
        ParamSpec::string("mlflow_uri", "", "log the trial as a run on this MLflow tracking server (http://host:port)"),
        ParamSpec::string("experiment", "", "the MLflow experiment; \"\": the sweep's name, else the experiment's")}},
  };
  return sections;
}

namespace {

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Where `section.key` came from (file:line:column, an override), or "the default".
std::string origin_of(const config::Node& root, const std::string& section, const std::string& key) {
  const config::Node* s = root.child(section);
  const config::Node* value = s != nullptr && s->is_table() ? s->child(key) : nullptr;
  return value != nullptr ? value->origin : "the default";
}

const config::Node& section(const config::Node& root, const std::string& name) {
  static const config::Node empty;
  const config::Node* found = root.child(name);
  return found != nullptr ? *found : empty;
}

}  // namespace

Params pipeline_section(const config::Node& root, const std::string& name) {
  for (const auto& [section_name, specs] : pipeline_sections()) {
    if (section_name != name) continue;
    PluginInfo info{.name = name, .version = "-", .description = "", .params = specs};
    auto checked = check_params(info, config::section_params(section(root, name)));
    if (auto* params = std::get_if<Params>(&checked)) return std::move(*params);
    throw ConfigError(fmt::format("[{}]: {}", name, std::get<std::vector<ParamProblem>>(checked).front().message));
  }
  throw std::logic_error("no pipeline section " + name);
}

namespace {

template <class I>
std::unique_ptr<I> create_plugin(const Registry& registry, const config::Node& root) {
  const config::Node& s = section(root, to_string(I::kKind));
  const config::Node* plugin = s.child("plugin");
  if (plugin == nullptr || !plugin->is_string())
    throw ConfigError(fmt::format("the experiment names no {} plugin: add [{}] plugin = \"...\"", to_string(I::kKind),
                                  to_string(I::kKind)));
  return registry.create<I>(std::get<std::string>(plugin->value), config::section_params(s));
}

std::string key_of(const std::vector<std::string>& parts) {
  std::string material = kStageVersion;
  for (const std::string& part : parts) material += "\x1f" + part;
  return stable_hash(material);
}

void write_json(const fs::path& file, const json& value) { write_atomically(file, value.dump(2) + "\n"); }
json read_json(const fs::path& file) {
  std::ifstream in(file);
  return json::parse(in);
}

}  // namespace

Runtime trial_runtime(const config::Node& config) {
  const Params runtime = pipeline_section(config, "runtime");
  return resolve_runtime(runtime.get<std::string>("device"), runtime.get<std::string>("dtype"), runtime.get<bool>("tf32"),
                         origin_of(config, "runtime", "device"));
}

void check_device_setting(const config::Node& config) {
  constexpr std::size_t kAnyNumberOfDevices = std::numeric_limits<std::size_t>::max();
  resolve_device(pipeline_section(config, "runtime").get<std::string>("device"), origin_of(config, "runtime", "device"),
                 kAnyNumberOfDevices);
}

TrialResult run_trial(const config::Node& config, const Registry& registry, const TrialOptions& options) {
  const auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const config::Node* seed_node = config.child("seed");
  const std::int64_t seed = seed_node && std::holds_alternative<std::int64_t>(seed_node->value)
                                ? std::get<std::int64_t>(seed_node->value)
                                : 0;
  const Params policy_params = pipeline_section(config, "policy");
  const Params sft_params = pipeline_section(config, "sft");
  const Params preference_params = pipeline_section(config, "preferences");
  const Params rm_params = pipeline_section(config, "reward_models");
  const Params train_params = pipeline_section(config, "train");
  const Params eval_params = pipeline_section(config, "eval");
  const Runtime runtime = trial_runtime(config);
  const c10::Device device = runtime.device;
  const PrecisionScope precision(runtime);
  log("device: " + runtime.description);
  const ThreadPlan threads = plan_threads(pipeline_section(config, "runtime").get<std::int64_t>("threads"));
  apply_threads(threads);
  log(fmt::format("threads: OpenBLAS {}, libtorch intra-op {}: {}", threads.blas, threads.intra_op, threads.reason));
  const std::string blas = blas_description();
  log("BLAS: " + blas);
  const double temperature = eval_params.get<double>("temperature");

  const auto task = create_plugin<Task>(registry, config);
  const auto annotator = create_plugin<Annotator>(registry, config);
  const auto ensemble = create_plugin<Ensemble>(registry, config);
  const auto algorithm = create_plugin<Algorithm>(registry, config);
  const std::int64_t response_length = task->max_response_length();
  const PolicyOptions shape{.vocab = task->vocab_size(),
                            .context = task->prompt_length() + response_length,
                            .width = policy_params.get<std::int64_t>("width"),
                            .depth = policy_params.get<std::int64_t>("depth"),
                            .heads = policy_params.get<std::int64_t>("heads")};
  const StageCache cache(options.cache_dir);
  json stages;

  // Stage sft: the base policy.
  // Stages computed on another device type or in another precision give other numbers.
  const std::string seed_and_runtime = std::to_string(seed) + "\x1f" + runtime.device_type() + "\x1f" +
                                       runtime.dtype_name() + (runtime.uses_tf32() ? "\x1ftf32" : "");
  const std::string sft_key = key_of({"sft", config::format_inline(section(config, "task")),
                                      config::format_inline(section(config, "policy")),
                                      config::format_inline(section(config, "sft")), seed_and_runtime});
  bool reused = false;
  const fs::path sft_dir = cache.get("sft", sft_key, [&](const fs::path& dir) {
    log("sft: training the base policy");
    torch::manual_seed(static_cast<std::uint64_t>(seed));
    Policy policy(shape);  // initialized on the CPU: the same weights on every device
    policy->to(device);
    at::Generator generator = seeded(static_cast<std::uint64_t>(seed) * 1000 + 1);
    const SftReport report = train_sft(policy, *task,
                                       {.corpus_size = sft_params.get<std::int64_t>("corpus_size"),
                                        .steps = sft_params.get<std::int64_t>("steps"),
                                        .batch_size = sft_params.get<std::int64_t>("batch_size"),
                                        .learning_rate = sft_params.get<double>("learning_rate"),
                                        .progress =
                                            [&](std::int64_t step, double loss) {
                                              if (options.progress)
                                                options.progress(fmt::format("sft: step {}/{}, loss {:.3f}", step,
                                                                             sft_params.get<std::int64_t>("steps"), loss));
                                            }},
                                       generator);
    torch::save(policy, (dir / "policy.pt").string());
    write_json(dir / "report.json", {{"initial_loss", report.initial_loss}, {"final_loss", report.final_loss}});
  }, reused);
  log(fmt::format("sft: {} ({})", reused ? "reused" : "computed", sft_dir.string()));
  stages["sft"] = {{"key", sft_key}, {"reused", reused}, {"report", read_json(sft_dir / "report.json")}};
  Policy sft(shape);
  torch::load(sft, (sft_dir / "policy.pt").string(), device);
  sft->eval();

  // Stage preferences: pairs of SFT samples, scored by gold, labelled by the annotator.
  const std::int64_t pairs = preference_params.get<std::int64_t>("pairs");
  const std::int64_t held_out = preference_params.get<std::int64_t>("held_out");
  const std::string preference_key = key_of({"preferences", sft_key, config::format_inline(section(config, "annotator")),
                                             config::format_inline(section(config, "preferences")), seed_and_runtime});
  const fs::path preference_dir = cache.get("preferences", preference_key, [&](const fs::path& dir) {
    log(fmt::format("preferences: sampling and labelling {} pairs", pairs + held_out));
    at::Generator generator = seeded(static_cast<std::uint64_t>(seed) * 1000 + 2);
    const torch::Tensor prompts = task->sample_prompts(pairs + held_out, generator);
    // Labelled and stored on the CPU, where task and annotator compute.
    const Sequences a = to_device(
        sft->sample(prompts, response_length, {.temperature = temperature}, task->eos_token(), generator), at::kCPU);
    const Sequences b = to_device(
        sft->sample(prompts, response_length, {.temperature = temperature}, task->eos_token(), generator), at::kCPU);
    const PairsToLabel to_label{task->score_attributes(a), task->score_attributes(b), a.lengths, b.lengths,
                                torch::arange(pairs + held_out, torch::kLong), task->gold_weights()};
    const Labels labels = annotator->label(to_label, generator);
    torch::save(std::vector<torch::Tensor>{prompts, a.responses, a.lengths, b.responses, b.lengths, labels.votes,
                                           labels.annotators, labels.prefers_a, labels.keep},
                (dir / "pairs.pt").string());
    const torch::Tensor gold = [&] {
      const FullPrecision full_precision;
      return to_label.gold_a().gt(to_label.gold_b());
    }();
    const torch::Tensor agree = labels.votes.eq(labels.votes.select(1, 0).unsqueeze(1)).all(1);
    write_json(dir / "report.json",
               {{"names", labels.names},
                {"kept", labels.keep.to(torch::kDouble).mean().item<double>()},
                {"label_agreement_with_gold",
                 labels.prefers_a.eq(gold).masked_select(labels.keep).to(torch::kDouble).mean().item<double>()},
                {"vote_agreement_with_gold", labels.votes.eq(gold.unsqueeze(1)).to(torch::kDouble).mean().item<double>()},
                {"annotators_agree", agree.to(torch::kDouble).mean().item<double>()}});
  }, reused);
  log(fmt::format("preferences: {} ({})", reused ? "reused" : "computed", preference_dir.string()));
  const json preference_report = read_json(preference_dir / "report.json");
  stages["preferences"] = {{"key", preference_key}, {"reused", reused}, {"report", preference_report}};
  std::vector<torch::Tensor> stored;
  torch::load(stored, (preference_dir / "pairs.pt").string());
  const PreferenceData all = PreferenceData{{stored[0], stored[1], stored[2]},
                                            {stored[0], stored[3], stored[4]},
                                            {stored[5], stored[6], stored[7], stored[8], preference_report["names"]}}
                                 .to(device);
  const PreferenceData train = all.select(torch::arange(pairs, torch::kLong));
  const PreferenceData test = all.select(torch::arange(pairs, pairs + held_out, torch::kLong));

  // Stage reward_models: the ensemble's members.
  const std::int64_t members = rm_params.get<std::int64_t>("members");
  const std::string rm_key = key_of({"reward_models", preference_key, config::format_inline(section(config, "reward_model")),
                                     config::format_inline(section(config, "reward_models")), seed_and_runtime});
  const fs::path rm_dir = cache.get("reward_models", rm_key, [&](const fs::path& dir) {
    for (std::int64_t m = 0; m < members; ++m) {
      log(fmt::format("reward_models: training member {} of {}", m + 1, members));
      at::Generator generator = seeded(static_cast<std::uint64_t>(seed) * 1000 + 100 + static_cast<std::uint64_t>(m));
      torch::manual_seed(static_cast<std::uint64_t>(seed) * 1000 + 100 + static_cast<std::uint64_t>(m));
      const PreferenceData data =
          rm_params.get<bool>("bootstrap") ? train.select(torch::randint(pairs, {pairs}, generator, torch::kLong)) : train;
      auto model = create_plugin<RewardModel>(registry, config);
      model->fit(sft, data, generator);
      const fs::path member_dir = dir / ("member" + std::to_string(m));
      fs::create_directories(member_dir);
      model->save(member_dir.string());
    }
  }, reused);
  log(fmt::format("reward_models: {} ({})", reused ? "reused" : "computed", rm_dir.string()));
  std::vector<std::unique_ptr<RewardModel>> models;
  const torch::Tensor gold_test = task->gold_reward(test.a).gt(task->gold_reward(test.b));
  json accuracies = json::array();
  for (std::int64_t m = 0; m < members; ++m) {
    models.push_back(create_plugin<RewardModel>(registry, config));
    models.back()->load(sft, (rm_dir / ("member" + std::to_string(m))).string());
    accuracies.push_back({{"gold", preference_accuracy(*models.back(), test, gold_test)},
                          {"labels", preference_accuracy(*models.back(), test, test.labels.prefers_a)},
                          {"annotator_reliability", models.back()->annotator_reliability()}});
  }
  stages["reward_models"] = {{"key", rm_key}, {"reused", reused}, {"held_out_accuracy", accuracies}};

  // Evaluation prompts and the reference policy's answers to them (for normalization, win rate).
  at::Generator eval_generator = seeded(static_cast<std::uint64_t>(seed) * 1000 + 3);
  const torch::Tensor eval_prompts =
      task->sample_prompts(eval_params.get<std::int64_t>("prompts"), eval_generator).to(device);
  const Sequences reference_answers =
      sft->sample(eval_prompts, response_length, {.temperature = temperature}, task->eos_token(), eval_generator);
  for (const auto& model : models) model->normalize(reference_answers);
  const auto member_scores = [&](const Sequences& s) {
    std::vector<torch::Tensor> scores;
    for (const auto& model : models) scores.push_back(model->score(s));
    return torch::stack(scores);
  };
  const torch::Tensor reference_gold = task->gold_reward(reference_answers);
  const std::vector<std::string> attribute_names = task->attribute_names();

  TrialResult result;
  std::ofstream metrics(options.run_dir / "metrics.jsonl");
  const std::int64_t checkpoint_every = train_params.get<std::int64_t>("checkpoint_every");
  const fs::path checkpoint_dir = options.run_dir / "checkpoint";
  FileCheckpoints checkpoints(
      checkpoint_dir, device, checkpoint_every > 0 ? checkpoint_every : train_params.get<std::int64_t>("eval_every"),
      options.stop_requested, result.rows,
      [&] {
        for (const json& row : result.rows) metrics << row.dump() << "\n";
        metrics << std::flush;
      },
      log);
  Policy policy = copy_policy(sft);
  at::Generator training_generator = seeded(static_cast<std::uint64_t>(seed) * 1000 + 4);
  torch::manual_seed(static_cast<std::uint64_t>(seed) * 1000 + 4);  // initializations inside the algorithm
  AlgorithmContext context{
      policy,
      sft,
      *task,
      train,
      [&](const Sequences& s) { return ensemble->combine(member_scores(s)); },
      eval_prompts,
      response_length,
      temperature,
      {.steps = train_params.get<std::int64_t>("steps"),
       .samples = train_params.get<std::int64_t>("samples"),
       .eval_every = train_params.get<std::int64_t>("eval_every")},
      training_generator,
      eval_generator,
      [&](const EvaluationPoint& point) {
        torch::NoGradGuard no_grad;
        const torch::Tensor attributes = task->score_attributes(point.responses);
        const torch::Tensor gold = task->gold_reward(point.responses);
        const torch::Tensor scores = member_scores(point.responses);
        json row = {{"step", point.step}, {"label", point.label}};
        row["gold"] = gold.mean().item<double>();
        row["gold_se"] = gold.std().item<double>() / std::sqrt(static_cast<double>(gold.size(0)));  // standard error
        for (std::size_t i = 0; i < attribute_names.size(); ++i)
          row["gold_" + attribute_names[i]] = attributes.select(1, static_cast<std::int64_t>(i)).mean().item<double>();
        row["proxy"] = ensemble->combine(scores).mean().item<double>();
        row["proxy_members"] = std::vector<double>();
        for (std::int64_t m = 0; m < scores.size(0); ++m) row["proxy_members"].push_back(scores[m].mean().item<double>());
        row["disagreement"] = scores.size(0) > 1 ? scores.std(0, /*unbiased=*/false).mean().item<double>() : 0.0;
        if (point.kl) {
          row["kl"] = *point.kl;
          row["entropy"] = nullptr;  // best-of-n and other non-sampling policies have no log-probs
        } else {
          const torch::Tensor policy_lp = policy->response_log_probs(point.responses, temperature).sum(1);
          const torch::Tensor reference_lp = sft->response_log_probs(point.responses, temperature).sum(1);
          row["kl"] = (policy_lp - reference_lp).mean().item<double>();
          row["entropy"] = -policy_lp.mean().item<double>();
        }
        row["sqrt_kl"] = std::sqrt(std::max(0.0, row["kl"].get<double>()));
        const torch::Tensor wins = gold.gt(reference_gold).to(torch::kDouble) + 0.5 * gold.eq(reference_gold).to(torch::kDouble);
        row["win_rate"] = wins.mean().item<double>();
        row["mean_length"] = point.responses.lengths.to(torch::kDouble).mean().item<double>();
        for (const auto& [name, value] : point.diagnostics) row["algorithm"][name] = value;
        metrics << row.dump() << "\n" << std::flush;
        if (options.evaluated) options.evaluated(row);
        log(fmt::format("eval {}: gold {:.3f}, proxy {:.3f}, KL {:.3f}, win rate {:.3f}", point.label,
                        row["gold"].get<double>(), row["proxy"].get<double>(), row["kl"].get<double>(),
                        row["win_rate"].get<double>()));
        result.rows.push_back(std::move(row));
      },
      [&](const std::string& status) {
        if (options.progress) options.progress(status);
      },
      options.checkpoints ? &checkpoints : nullptr};
  log(fmt::format("algorithm: {}", algorithm->display_name()));
  algorithm->run(context);
  if (result.rows.empty()) throw std::runtime_error(fmt::format("{} produced no evaluation", algorithm->display_name()));

  const auto best = std::max_element(result.rows.begin(), result.rows.end(), [](const json& a, const json& b) {
    return a["gold"].get<double>() < b["gold"].get<double>();
  });
  result.summary = {{"algorithm", algorithm->info()->name},
                    {"final", result.rows.back()},
                    {"best_gold", *best},
                    {"reference_gold", reference_gold.mean().item<double>()},
                    {"stages", stages},
                    {"threads", {{"blas", threads.blas}, {"intra_op", threads.intra_op}, {"blas_library", blas}}},
                    {"runtime", {{"device", device.str()}, {"dtype", runtime.dtype_name()}}},
                    {"seed", seed}};
  write_json(options.run_dir / "summary.json", result.summary);
  fs::remove_all(checkpoint_dir);
  return result;
}

}  // namespace prefopt
