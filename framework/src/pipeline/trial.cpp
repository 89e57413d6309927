#include "pipeline/trial.h"

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <fstream>

#include "config/validate.h"
#include "files.h"
#include "run_files.h"
#include "data/preference_dataset.h"
#include "data/text_files.h"
#include "pipeline/agreement.h"
#include "pipeline/checkpoint.h"
#include "pipeline/evaluator.h"
#include "pipeline/policy_source.h"
#include "pipeline/preference_file.h"
#include "pipeline/sft.h"
#include "pipeline/stage_cache.h"
#include "pipeline/stages.h"
#include "runtime.h"
#include "text.h"
#include "threads.h"
#include "prefopt/algorithm.h"
#include "prefopt/ensemble.h"
#include "prefopt/serialize.h"

namespace prefopt {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

at::Generator seeded(std::uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// Where `section.key` came from (file:line:column, an override), or "the default".
std::string origin_of(const config::Node& root, const std::string& section, const std::string& key) {
  const config::Node* s = root.child(section);
  const config::Node* value = s != nullptr && s->is_table() ? s->child(key) : nullptr;
  return value != nullptr ? value->origin : "the default";
}

template <class I>
std::unique_ptr<I> create_plugin(const Registry& registry, const config::Node& config) {
  const config::Node& section = plugin_section(config, I::kKind);
  return registry.create<I>(plugin_name(section), config::section_params(section));
}

void write_json(const fs::path& file, const json& value) { write_atomically(file, value.dump(2) + "\n"); }
// Why an evaluation row shows a diverged run: gold, proxy or KL, or a training diagnostic (the
// loss), not finite. A policy whose weights went to NaN still samples (argmax of NaN logits), so
// without this check it would end "finished" with a gold reward and a KL of null.
std::optional<std::string> divergence(const json& row, const std::string& algorithm) {
  std::vector<std::string> bad;
  for (const char* key : {"gold", "proxy", "kl"})
    if (row.contains(key) && row[key].is_number() && !std::isfinite(row[key].get<double>())) bad.push_back(key);
  if (row.contains("algorithm"))
    for (const auto& [key, value] : row["algorithm"].items())
      if (value.is_number() && !std::isfinite(value.get<double>())) bad.push_back("algorithm." + key);
  if (bad.empty()) return std::nullopt;
  return fmt::format("{} diverged by step {}: {} not finite at its evaluation; a smaller learning rate (or gradient "
                     "clipping) usually prevents it",
                     algorithm, row.value("step", std::int64_t{0}), join(bad, ", "));
}

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

void check_policy_setting(const config::Node& config, const Registry& registry) {
  if (policy_checkpoint(config).empty()) return;  // the built-in's shape is checked as the trial starts
  PolicySource(config, *create_plugin<Task>(registry, config));
}

void check_data_settings(const config::Node& config, const Registry& registry) {
  const bool from_dataset = pipeline_section(config, "preferences").get<std::string>("source") == "dataset";
  if (from_dataset) {
    const std::string source = origin_of(config, "preferences", "source");
    for (const char* key : {"pairs", "held_out"})
      if (origin_of(config, "preferences", key) != "the default")
        throw ConfigError(fmt::format("{}: [preferences] {} counts simulated pairs, but {} sets source = \"dataset\": "
                                      "the file's pairs are used, and [dataset] held_out or split chooses the held-out "
                                      "ones; remove it",
                                      origin_of(config, "preferences", key), key, source));
    if (pipeline_section(config, "dataset").get<std::string>("path").empty())
      throw ConfigError(fmt::format("{} sets [preferences] source = \"dataset\", but no [dataset] path names the file",
                                    source));
  }
  const std::vector<DataFileSetting> files = data_files_in_use(config);
  for (const DataFileSetting& file : files) {
    std::error_code error;
    if (!fs::is_regular_file(file.path, error))
      throw ConfigError(fmt::format("{}: [{}] {}: no file {}", origin_of(config, file.section, file.key), file.section,
                                    file.key, file.path));
  }
  if (files.empty()) return;
  const auto task = create_plugin<Task>(registry, config);
  if (as_text_task(*task) == nullptr)
    throw ConfigError(fmt::format("{} ([{}] {}): a data file of text needs a task whose tokens are text (such as "
                                  "sentiment); {} speaks tokens of its own",
                                  origin_of(config, files.front().section, files.front().key), files.front().section,
                                  files.front().key, task->display_name()));
}

namespace {

// The experiment's text task with the data files' prompts and corpus where they are given:
// prompts drawn with replacement from `prompts`, the SFT corpus from `corpus`; all else, text
// included, the task's own.
class DataTask final : public TextTask {
 public:
  DataTask(const TextTask& task, at::Tensor prompts, std::optional<Sequences> corpus = std::nullopt)
      : task_(task), prompts_(std::move(prompts)), corpus_(std::move(corpus)) {}

 protected:
  std::int64_t do_vocab_size() const override { return task_.vocab_size(); }
  std::int64_t do_eos_token() const override { return task_.eos_token(); }
  std::int64_t do_prompt_length() const override { return task_.prompt_length(); }
  std::int64_t do_max_response_length() const override { return task_.max_response_length(); }
  std::vector<std::string> do_attribute_names() const override { return task_.attribute_names(); }
  at::Tensor do_gold_weights() const override { return task_.gold_weights(); }
  at::Tensor do_sample_prompts(std::int64_t n, at::Generator& generator) const override {
    if (!prompts_.defined()) return task_.sample_prompts(n, generator);
    return prompts_.index_select(0, at::randint(prompts_.size(0), {n}, generator, at::kLong));
  }
  // Every row of the file as evenly as n allows: shuffled passes over it.
  Sequences do_sample_corpus(std::int64_t n, at::Generator& generator) const override {
    if (!corpus_) return task_.sample_corpus(n, generator);
    const std::int64_t rows = corpus_->prompts.size(0);
    std::vector<at::Tensor> passes;
    for (std::int64_t drawn = 0; drawn < n; drawn += rows) passes.push_back(at::randperm(rows, generator, at::kLong));
    return select_rows(*corpus_, at::cat(passes).narrow(0, 0, n));
  }
  at::Tensor do_score_attributes(const Sequences& sequences) const override { return task_.score_attributes(sequences); }
  std::vector<std::int64_t> do_encode(const std::string& text) const override { return task_.encode(text); }
  std::string do_decode(const std::vector<std::int64_t>& ids) const override { return task_.decode(ids); }

 private:
  const TextTask& task_;
  at::Tensor prompts_;               // [prompts, prompt_length] on the CPU, or undefined: the task's
  std::optional<Sequences> corpus_;  // or the task's
};

// The [prompts] and [sft] data files, read in the task's tokens.
struct DataFiles {
  std::optional<data::PromptFile> prompts;
  std::optional<data::CompletionFile> corpus;

  json report() const {
    json out = json::object();
    if (prompts) out["prompts"] = prompts->report;
    if (corpus) out["sft"] = corpus->report;
    return out;
  }
};

// `text` is the task's text interface, which check_data_settings made sure of.
DataFiles read_data_files(const config::Node& config, const TextTask* text,
                          const std::function<void(const std::string&)>& log) {
  DataFiles out;
  if (data_files_in_use(config).empty()) return out;
  if (text == nullptr) throw std::logic_error("check_data_settings lets only text tasks read data files");
  const Params prompts = pipeline_section(config, "prompts");
  const Params sft = pipeline_section(config, "sft");
  if (!prompts.get<std::string>("path").empty()) {
    out.prompts = data::read_prompt_file({.file = prompts.get<std::string>("path"),
                                          .format = prompts.get<std::string>("format"),
                                          .prompt = prompts.get<std::string>("prompt"),
                                          .split = prompts.get<std::string>("split"),
                                          .held_out_split = prompts.get<std::string>("held_out_split"),
                                          .held_out = prompts.get<double>("held_out"),
                                          .max_bad_rows = prompts.get<std::int64_t>("max_bad_rows")},
                                         *text);
    log(fmt::format("prompts: {} for training, {} held out, from {}", out.prompts->train.size(0),
                    out.prompts->held_out.size(0), prompts.get<std::string>("path")));
  }
  if (!sft.get<std::string>("data").empty()) {
    out.corpus = data::read_completion_file({.file = sft.get<std::string>("data"),
                                             .format = sft.get<std::string>("format"),
                                             .prompt = sft.get<std::string>("prompt"),
                                             .completion = sft.get<std::string>("completion"),
                                             .max_bad_rows = sft.get<std::int64_t>("max_bad_rows")},
                                            *text);
    log(fmt::format("sft: {} prompts and completions from {}", out.corpus->corpus.prompts.size(0),
                    sft.get<std::string>("data")));
  }
  return out;
}

// What the stages of one trial share.
struct TrialSetup {
  const config::Node& config;
  const Registry& registry;
  const TrialOptions& options;
  std::int64_t seed;
  Runtime runtime;
  const Task& task;      // the plugin's, with the data files' prompts and corpus
  const TextTask* text;  // the plugin's text interface, or null
  PolicySource policy;
  StageCache cache;

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }
  void progress(const std::string& status) const {
    if (options.progress) options.progress(status);
  }
  // The seed of one random stream of the trial: every stage draws from its own.
  std::uint64_t stream(std::uint64_t index) const { return static_cast<std::uint64_t>(seed) * 1000 + index; }
};

// A cached stage as summary.json records it.
struct StageRecord {
  std::string key;
  bool reused = false;
  fs::path dir;
  json report;              // the stage's report.json
  std::string corruption;   // why a cached entry was computed again, if it was

  json summary() const {
    json out = {{"key", key}, {"reused", reused}, {"report", report}};
    if (!corruption.empty()) out["recomputed_corrupt_entry"] = corruption;
    return out;
  }
};

// The stage's cache folder, computed by `compute(folder, settings)` (which returns the stage's
// report) unless another trial already did. The folder also gets inputs.txt: what the key covers.
StageRecord cached_stage(const TrialSetup& setup, const StageInputs& stage, const StageKey& key,
                         const std::function<json(const fs::path&, const StageSettings&)>& compute) {
  StageRecord record;
  record.key = key.key;
  const StageEntry entry = setup.cache.get(stage.name, key.key, [&](const fs::path& dir) {
    write_atomically(dir / "inputs.txt", key.material);
    write_json(dir / "report.json", compute(dir, StageSettings(stage, setup.config, setup.registry)));
  });
  record.dir = entry.dir;
  record.reused = entry.reused;
  record.corruption = entry.corruption;
  if (!entry.corruption.empty())
    setup.log(fmt::format("{}: the cached entry failed its checksums ({}); computed it again", stage.name,
                          entry.corruption));
  setup.log(fmt::format("{}: {} ({})", stage.name, record.reused ? "reused" : "computed", record.dir.string()));
  record.report = read_json(record.dir / "report.json");
  return record;
}

// Stage sft: the base policy, trained on the task's language.
Policy sft_stage(const TrialSetup& setup, const StageKey& key, StageRecord& record) {
  record = cached_stage(setup, kSftStage, key, [&](const fs::path& dir, const StageSettings& settings) {
    torch::manual_seed(static_cast<std::uint64_t>(setup.seed));
    Policy policy = setup.policy.create();  // initialized on the CPU: the same weights on every device
    setup.log("sft: training the base policy from " + policy->model().describe());
    policy->to(setup.runtime.device);
    at::Generator generator = seeded(setup.stream(1));
    const std::int64_t steps = settings.get<std::int64_t>("sft", "steps");
    const SftReport report = train_sft(policy, setup.task,
                                       {.corpus_size = settings.get<std::int64_t>("sft", "corpus_size"),
                                        .steps = steps,
                                        .batch_size = settings.get<std::int64_t>("sft", "batch_size"),
                                        .learning_rate = settings.get<double>("sft", "learning_rate"),
                                        .progress =
                                            [&](std::int64_t step, double loss) {
                                              setup.progress(fmt::format("sft: step {}/{}, loss {:.3f}", step, steps, loss));
                                            }},
                                       generator);
    save_to_file(policy, (dir / "policy.pt").string());
    return json{{"initial_loss", report.initial_loss}, {"final_loss", report.final_loss}};
  });
  Policy sft = setup.policy.create(/*weights=*/false);
  torch::load(sft, (record.dir / "policy.pt").string(), setup.runtime.device);
  sft->eval();
  return sft;
}

// [pairs] bool: where the gold judge prefers response a.
at::Tensor gold_prefers_a(const PairsToLabel& pairs) {
  const FullPrecision full_precision;
  return pairs.gold_a().gt(pairs.gold_b());
}

// The pairs of [dataset], labelled by their annotators and, for comparison, by the annotator
// plugin (AlpacaFarm's agreement check): training pairs first, then the held-out ones.
json dataset_preferences(const TrialSetup& setup, const StageSettings& settings, const Annotator& annotator,
                         const fs::path& dir) {
  const auto text = [&](const char* key) { return settings.get<std::string>("dataset", key); };
  const data::DatasetOptions options{.file = text("path"),
                                     .format = text("format"),
                                     .prompt = text("prompt"),
                                     .chosen = text("chosen"),
                                     .rejected = text("rejected"),
                                     .responses = text("responses"),
                                     .ranks = text("ranks"),
                                     .ratings = text("ratings"),
                                     .annotator = text("annotator"),
                                     .tie = text("tie"),
                                     .split = text("split"),
                                     .held_out_split = text("held_out_split"),
                                     .held_out = settings.get<double>("dataset", "held_out"),
                                     .votes = text("votes"),
                                     .dedup = settings.get<bool>("dataset", "dedup"),
                                     .max_bad_rows = settings.get<std::int64_t>("dataset", "max_bad_rows")};
  const TextTask* task = setup.text;
  if (task == nullptr) throw std::logic_error("check_data_settings lets only text tasks read a dataset");
  setup.log("preferences: reading " + options.file.string());
  const data::DatasetPairs pairs = data::read_preference_dataset(options, *task);
  json report = pairs.report;
  setup.log(fmt::format("preferences: {} pairs ({} held out) from {} rows: {} votes, {} ties, {} bad rows skipped",
                        pairs.size(), report["held_out_pairs"].get<std::int64_t>(), report["rows"].get<std::int64_t>(),
                        report["votes"].get<std::int64_t>(), report["tie_votes"].get<std::int64_t>(),
                        report["bad_rows"].get<std::int64_t>()));

  at::Generator generator = seeded(setup.stream(2));
  const at::Tensor prompt_ids = std::get<1>(at::unique_dim(pairs.a.prompts, 0, /*sorted=*/true, /*return_inverse=*/true));
  const PairsToLabel to_label{setup.task.score_attributes(pairs.a), setup.task.score_attributes(pairs.b),
                              pairs.a.lengths, pairs.b.lengths, prompt_ids, setup.task.gold_weights()};
  const Labels simulated = annotator.label(to_label, generator);
  const at::Tensor gold = gold_prefers_a(to_label);
  report["human"] = data::human_agreement(pairs, gold, simulated);
  report["annotator"] = agreement_report(simulated, gold);

  std::int64_t train_examples = 0;
  const PreferenceData examples = text("labels") == "human"
                                      ? data::dataset_examples(pairs, options.votes, train_examples)
                                      : data::relabelled_examples(pairs, simulated, train_examples);
  if (train_examples == 0 || train_examples == examples.size())
    throw ConfigError(fmt::format("{}: {} training and {} held-out examples; both need some ([dataset] held_out or "
                                  "split chooses the held-out pairs)",
                                  options.file.string(), train_examples, examples.size() - train_examples));
  report["labels"] = text("labels");
  report["train_examples"] = train_examples;
  report["held_out_examples"] = examples.size() - train_examples;
  save_preferences(examples, dir / "pairs.pt");
  return report;
}

// Stage preferences: pairs of SFT samples at the evaluation temperature, labelled by the
// annotator from their gold attributes; or the pairs of a dataset.
PreferenceData preferences_stage(const TrialSetup& setup, const StageKey& key, Policy& sft, const Annotator& annotator,
                                 StageRecord& record) {
  record = cached_stage(setup, kPreferencesStage, key, [&](const fs::path& dir, const StageSettings& settings) {
    if (settings.get<std::string>("preferences", "source") == "dataset")
      return dataset_preferences(setup, settings, annotator, dir);
    const std::int64_t pairs = settings.get<std::int64_t>("preferences", "pairs");
    const std::int64_t count = pairs + settings.get<std::int64_t>("preferences", "held_out");
    const double temperature = settings.get<double>("eval", "temperature");
    setup.log(fmt::format("preferences: sampling and labelling {} pairs", count));
    at::Generator generator = seeded(setup.stream(2));
    const Task& task = setup.task;
    const std::int64_t length = task.max_response_length();
    const torch::Tensor prompts = task.sample_prompts(count, generator);
    // Labelled and stored on the CPU, where task and annotator compute.
    const Sequences a = to_device(sft->sample(prompts, length, {.temperature = temperature}, task.eos_token(), generator), at::kCPU);
    const Sequences b = to_device(sft->sample(prompts, length, {.temperature = temperature}, task.eos_token(), generator), at::kCPU);
    const PairsToLabel to_label{task.score_attributes(a), task.score_attributes(b), a.lengths, b.lengths,
                                torch::arange(count, torch::kLong), task.gold_weights()};
    const Labels labels = annotator.label(to_label, generator);
    save_preferences({a, b, labels}, dir / "pairs.pt");
    json report = agreement_report(labels, gold_prefers_a(to_label));
    report["train_examples"] = pairs;
    return report;
  });
  return load_preferences(record.dir / "pairs.pt").to(setup.runtime.device);
}

// Stage reward_models: the ensemble's members, each from its own seed (and, with bootstrap, its
// own resample of the training pairs).
std::vector<std::unique_ptr<RewardModel>> reward_models_stage(const TrialSetup& setup, const StageKey& key, Policy& sft,
                                                              const PreferenceData& train, StageRecord& record) {
  record = cached_stage(setup, kRewardModelsStage, key, [&](const fs::path& dir, const StageSettings& settings) {
    const std::int64_t count = settings.get<std::int64_t>("reward_models", "members");
    for (std::int64_t m = 0; m < count; ++m) {
      setup.log(fmt::format("reward_models: training member {} of {}", m + 1, count));
      const std::uint64_t stream = setup.stream(100 + static_cast<std::uint64_t>(m));
      at::Generator generator = seeded(stream);
      torch::manual_seed(stream);
      const std::int64_t pairs = train.size();
      const PreferenceData data = settings.get<bool>("reward_models", "bootstrap")
                                      ? train.select(torch::randint(pairs, {pairs}, generator, torch::kLong))
                                      : train;
      auto model = create_plugin<RewardModel>(setup.registry, setup.config);
      model->fit(sft, data, generator);
      const fs::path member_dir = dir / ("member" + std::to_string(m));
      fs::create_directories(member_dir);
      model->save(member_dir.string());
    }
    return json{{"members", count}};
  });
  const auto members = record.report.at("members").get<std::int64_t>();
  std::vector<std::unique_ptr<RewardModel>> models;
  for (std::int64_t m = 0; m < members; ++m) {
    models.push_back(create_plugin<RewardModel>(setup.registry, setup.config));
    models.back()->load(sft, (record.dir / ("member" + std::to_string(m))).string());
  }
  return models;
}

// Answers of the trained and the reference policy to the first evaluation prompts, with their gold
// and proxy rewards and each reward model's score: what the numbers are about, for a reader (as
// text, for a text task), and the sequences a reward model's export must score alike. Responses
// are given through their EOS, as the models read them.
void write_samples(const fs::path& file, const TextTask* text, const Task& task, const Evaluator& evaluator,
                   Policy& policy, Policy& reference, const torch::Tensor& prompts, double temperature,
                   std::uint64_t seed) {
  constexpr std::int64_t kSamples = 16;
  const torch::Tensor some = prompts.narrow(0, 0, std::min<std::int64_t>(kSamples, prompts.size(0)));
  at::Generator generator = seeded(seed);
  const std::int64_t eos = task.eos_token();
  const auto answer = [&](Policy& by) {
    return by->sample(some, task.max_response_length(), {.temperature = temperature}, eos, generator);
  };
  const auto as_vector = [](const torch::Tensor& values) {
    const torch::Tensor cpu = values.to(at::kCPU, at::kDouble).contiguous();
    return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
  };
  json rows = json::array();
  for (std::int64_t row = 0; row < some.size(0); ++row) rows.push_back(json::object());
  const auto describe = [&](const std::string& who, const Sequences& answers) {
    const torch::Tensor gold = task.gold_reward(answers).cpu(), members = evaluator.member_scores(answers).cpu();
    const torch::Tensor proxy = evaluator.proxy_reward(answers).cpu();
    for (std::int64_t row = 0; row < some.size(0); ++row) {
      json& out = rows[static_cast<std::size_t>(row)];
      const torch::Tensor response =
          answers.responses[row].narrow(0, 0, answers.lengths[row].item<std::int64_t>()).to(at::kCPU).contiguous();
      if (text != nullptr) {
        out["prompt"] = text->decode(prompt_ids(answers, row));
        out[who] = text->decode(response_ids(answers, row, eos));
      }
      out["prompt_ids"] = prompt_ids(answers, row);
      out[who + "_ids"] = std::vector<std::int64_t>(response.data_ptr<std::int64_t>(),
                                                    response.data_ptr<std::int64_t>() + response.numel());
      out[who + "_gold"] = gold[row].item<double>();
      out[who + "_proxy"] = proxy[row].item<double>();
      out[who + "_members"] = as_vector(members.select(1, row));
    }
  };
  describe("policy", answer(policy));
  describe("reference", answer(reference));
  std::string lines;
  for (const json& row : rows) lines += row.dump() + "\n";
  write_atomically(file, lines);
}

// The members whose score is one network, for `prefopt export`; a reward-model plugin built
// before SDK 3.2 has no network to give, and its members are not kept.
void save_reward_models(const std::vector<std::unique_ptr<RewardModel>>& members, const fs::path& run_dir) {
  for (std::size_t m = 0; m < members.size(); ++m)
    if (const NetworkRewardModel* model = as_network_reward_model(*members[m]))
      save_reward_model(*model, run_dir / run_files::reward_model_file(static_cast<std::int64_t>(m)));
}

// Each member's accuracy on the held-out pairs, against gold and against the labels.
json held_out_accuracy(const std::vector<std::unique_ptr<RewardModel>>& models, const Task& task,
                       const PreferenceData& test) {
  const torch::Tensor gold = task.gold_reward(test.a).gt(task.gold_reward(test.b));
  json accuracies = json::array();
  for (const auto& model : models)
    accuracies.push_back({{"gold", preference_accuracy(*model, test, gold)},
                          {"labels", preference_accuracy(*model, test, test.labels.prefers_a)},
                          {"annotator_reliability", model->annotator_reliability()}});
  return accuracies;
}

}  // namespace

TrialResult run_trial(const config::Node& config, const Registry& registry, const TrialOptions& options) {
  const auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  const std::int64_t seed = trial_seed(config);
  const Params preference_params = pipeline_section(config, "preferences");
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
  const TextTask* text = as_text_task(*task);
  const DataFiles files = read_data_files(config, text, log);
  // What the stages, the algorithm and the evaluation see: a DataTask over the plugin's text task
  // where data files or a dataset give prompts or a corpus, else the plugin's task itself.
  std::optional<DataTask> stage_world, training_world, evaluation_world;
  const auto world = [&](std::optional<DataTask>& slot, torch::Tensor prompts,
                         std::optional<Sequences> corpus) -> const Task& {
    if (!prompts.defined() && !corpus) return *task;
    slot.emplace(*text, std::move(prompts), std::move(corpus));  // text: checked by check_data_settings
    return *slot;
  };
  const TrialSetup setup{.config = config,
                         .registry = registry,
                         .options = options,
                         .seed = seed,
                         .runtime = runtime,
                         .task = world(stage_world, files.prompts ? files.prompts->train : torch::Tensor(),
                                       files.corpus ? std::optional(files.corpus->corpus) : std::nullopt),
                         .text = text,
                         .policy = PolicySource(config, *task),
                         .cache = StageCache(options.cache_dir)};
  const TrialStageKeys keys = trial_stage_keys(config, registry, seed, runtime);

  StageRecord sft_record, preference_record, reward_model_record;
  Policy sft = sft_stage(setup, keys.sft, sft_record);
  const PreferenceData all = preferences_stage(setup, keys.preferences, sft, *annotator, preference_record);
  const auto training = preference_record.report.at("train_examples").get<std::int64_t>();
  const PreferenceData train = all.select(torch::arange(training, torch::kLong));
  const PreferenceData test = all.select(torch::arange(training, all.size(), torch::kLong));
  // The prompts to train and evaluate on: a prompt file's splits; else a dataset's, its training
  // pairs' and its held-out pairs'; else the task's.
  const bool from_dataset = preference_params.get<std::string>("source") == "dataset";
  const auto unique_prompts = [](const PreferenceData& pairs) {
    return std::get<0>(at::unique_dim(pairs.a.prompts.to(at::kCPU), 0));
  };
  const Task& training_task = world(training_world,
                                    files.prompts ? files.prompts->train
                                    : from_dataset ? unique_prompts(train)
                                                   : torch::Tensor(),
                                    std::nullopt);
  const Task& evaluation_task = world(evaluation_world,
                                      files.prompts ? files.prompts->held_out
                                      : from_dataset ? unique_prompts(test)
                                                     : torch::Tensor(),
                                      std::nullopt);
  auto models = reward_models_stage(setup, keys.reward_models, sft, train, reward_model_record);
  json stages = {{"sft", sft_record.summary()}, {"preferences", preference_record.summary()}};
  stages["reward_models"] = {{"key", reward_model_record.key},
                             {"reused", reward_model_record.reused},
                             {"held_out_accuracy", held_out_accuracy(models, *task, test)}};

  // Evaluation prompts and the reference policy's answers to them (for normalization, win rate).
  at::Generator eval_generator = seeded(setup.stream(3));
  const torch::Tensor eval_prompts =
      evaluation_task.sample_prompts(eval_params.get<std::int64_t>("prompts"), eval_generator).to(device);
  Sequences reference_answers =
      sft->sample(eval_prompts, response_length, {.temperature = temperature}, task->eos_token(), eval_generator);
  Policy policy = copy_policy(sft);
  Evaluator evaluator(*task, std::move(models), *ensemble, policy, sft, std::move(reference_answers), temperature);

  TrialResult result;
  run_files::MetricsWriter metrics(options.run_dir);
  const std::int64_t checkpoint_every = train_params.get<std::int64_t>("checkpoint_every");
  const fs::path checkpoint_dir = options.run_dir / "checkpoint";
  // Why the trial ends before its budget: "pruned" (the search's rule) or "diverged".
  std::optional<std::pair<std::string, std::string>> ended;
  FileCheckpoints checkpoints(
      checkpoint_dir, device, checkpoint_every > 0 ? checkpoint_every : train_params.get<std::int64_t>("eval_every"),
      [&] { return ended.has_value() || (options.stop_requested && options.stop_requested()); }, result.rows,
      [&] {
        for (const json& row : result.rows) metrics.append(row);
      },
      log);
  at::Generator training_generator = seeded(setup.stream(4));
  torch::manual_seed(setup.stream(4));  // initializations inside the algorithm
  AlgorithmContext context{
      .policy = policy,
      .reference = sft,
      .task = training_task,
      .preferences = train,
      .proxy_reward = [&](const Sequences& s) { return evaluator.proxy_reward(s); },
      .evaluation_prompts = eval_prompts,
      .response_length = response_length,
      .temperature = temperature,
      .budget = {.steps = train_params.get<std::int64_t>("steps"),
                 .samples = train_params.get<std::int64_t>("samples"),
                 .eval_every = train_params.get<std::int64_t>("eval_every")},
      .generator = training_generator,
      .evaluation_generator = eval_generator,
      .evaluate =
          [&](const EvaluationPoint& point) {
            json row = evaluator.row(point);
            metrics.append(row);
            if (options.evaluated) options.evaluated(row);
            log(fmt::format("eval {}: gold {:.3f}, proxy {:.3f}, KL {:.3f}, win rate {:.3f}", point.label,
                            row["gold"].get<double>(), row["proxy"].get<double>(), row["kl"].get<double>(),
                            row["win_rate"].get<double>()));
            result.rows.push_back(std::move(row));
            if (ended) return;
            if (const auto reason = divergence(result.rows.back(), algorithm->info()->name))
              ended = {"diverged", *reason};
            else if (const auto why = options.prune ? options.prune(result.rows) : std::nullopt)
              ended = {"pruned", *why};
            if (ended) log(ended->second);
          },
      .progress = [&](const std::string& status) { setup.progress(status); },
      .checkpoints = options.checkpoints ? &checkpoints : nullptr};
  log(fmt::format("algorithm: {}", algorithm->display_name()));
  bool stopped_early = false;
  try {
    algorithm->run(context);
  } catch (const Stopped&) {
    if (!ended || (options.stop_requested && options.stop_requested())) throw;
    stopped_early = true;
  }
  if (ended && !stopped_early) log(fmt::format("{} keeps no training state to stop at; it ran to the end", algorithm->display_name()));
  if (result.rows.empty()) throw std::runtime_error(fmt::format("{} produced no evaluation", algorithm->display_name()));

  const auto best = std::max_element(result.rows.begin(), result.rows.end(), [](const json& a, const json& b) {
    return a["gold"].get<double>() < b["gold"].get<double>();
  });
  result.summary = {{"algorithm", algorithm->info()->name},
                    {"final", result.rows.back()},
                    {"best_gold", *best},
                    {"reference_gold", evaluator.reference_gold()},
                    {"stages", stages},
                    {"data", files.report()},
                    {"threads", {{"blas", threads.blas}, {"intra_op", threads.intra_op}, {"blas_library", blas}}},
                    {"runtime", {{"device", device.str()}, {"dtype", runtime.dtype_name()}}},
                    {"seed", seed}};
  // A pruned trial that could not stop completed its budget; a diverged one diverged all the same.
  if (ended && (stopped_early || ended->first == "diverged")) result.summary[ended->first] = ended->second;
  if (train_params.get<bool>("save_policy")) save_policy(*policy, options.run_dir / run_files::kPolicy);
  if (train_params.get<bool>("save_reward_models") && !policy_checkpoint(config).empty())
    save_reward_models(evaluator.members(), options.run_dir);
  write_samples(options.run_dir / run_files::kSamples, setup.text, *task, evaluator, policy, sft, eval_prompts,
                temperature, setup.stream(5));
  run_files::write_summary(options.run_dir, result.summary);
  fs::remove_all(checkpoint_dir);
  return result;
}

}  // namespace prefopt
