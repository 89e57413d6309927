// `prefopt export`: a run's trained policy as a Hugging Face folder that transformers loads.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "commands.h"
#include "config/node.h"
#include "models/decoder.h"
#include "models/safetensors.h"
#include "pipeline/policy_source.h"
#include "prefopt/error.h"
#include "run_files.h"

namespace prefopt::cli {
namespace {

namespace fs = std::filesystem;
namespace po = boost::program_options;
using nlohmann::json;

// The checkpoint files an exported folder keeps beside config.json: how to tokenize and generate.
constexpr const char* kCompanionFiles[] = {"generation_config.json", "tokenizer.json",        "tokenizer.model",
                                           "tokenizer_config.json",  "special_tokens_map.json", "vocab.json",
                                           "merges.txt",             "added_tokens.json"};

// The checkpoint the run started from; ConfigError when the run cannot be exported.
fs::path source_checkpoint(const fs::path& run_dir) {
  if (!fs::exists(run_dir / run_files::kResolved))
    throw ConfigError(fmt::format("{}: not a run folder (it has no {})", run_dir.string(), run_files::kResolved));
  if (!run_files::finished(run_dir))
    throw ConfigError(fmt::format("{}: the run has not finished (no {}); continue it first (prefopt run ... --out {} "
                                  "--continue)",
                                  run_dir.string(), run_files::kSummary, run_dir.string()));
  const fs::path checkpoint = policy_checkpoint(config::load_toml_file((run_dir / run_files::kResolved).string()));
  if (checkpoint.empty())
    throw ConfigError(fmt::format("{}: the run trained the built-in transformer ([policy] checkpoint is empty), which "
                                  "has no Hugging Face architecture; runs from a checkpoint folder export (docs/models.md)",
                                  run_dir.string()));
  if (!fs::exists(run_dir / run_files::kPolicy))
    throw ConfigError(fmt::format("{}: the run kept no trained weights ({} is missing: it ran with [train] "
                                  "save_policy = false)",
                                  run_dir.string(), run_files::kPolicy));
  if (!fs::exists(checkpoint / "config.json"))
    throw ConfigError(fmt::format("{}: the checkpoint the run started from, {}, has no config.json any more; the "
                                  "export takes its configuration and tokenizer from there",
                                  run_dir.string(), checkpoint.string()));
  return checkpoint;
}

// The trained weights must be the checkpoint architecture's, tensor for tensor.
void check_weights_fit(const models::SafetensorsFile& weights, const fs::path& checkpoint) {
  const models::Decoder shape(models::read_decoder_config(checkpoint), torch::TensorOptions().device(torch::kMeta));
  std::size_t expected = 0;
  for (const auto& item : shape->named_parameters()) {
    ++expected;
    const auto entry = weights.entries().find(item.key());
    if (entry == weights.entries().end())
      throw ConfigError(fmt::format("{} has no tensor {}, which {} needs: the checkpoint folder changed since the run",
                                    weights.path().string(), item.key(), (checkpoint / "config.json").string()));
    if (entry->second.shape != item.value().sizes().vec())
      throw ConfigError(fmt::format("{}: tensor {} has shape [{}], {} needs [{}]: the checkpoint folder changed since "
                                    "the run",
                                    weights.path().string(), item.key(), fmt::join(entry->second.shape, ", "),
                                    (checkpoint / "config.json").string(), fmt::join(item.value().sizes().vec(), ", ")));
  }
  if (weights.entries().size() != expected)
    throw ConfigError(fmt::format("{} holds {} tensors, {} needs {}: the checkpoint folder changed since the run",
                                  weights.path().string(), weights.entries().size(),
                                  (checkpoint / "config.json").string(), expected));
}

// config.json with the dtype the weights are stored in, so transformers loads them as they are.
json exported_config(const fs::path& checkpoint, const models::SafetensorsFile& weights) {
  std::ifstream in(checkpoint / "config.json");
  json config = json::parse(in);
  const std::string stored = weights.entries().begin()->second.dtype;
  const std::string dtype = stored == "BF16" ? "bfloat16" : stored == "F16" ? "float16" : "float32";
  if (config.contains("dtype")) config["dtype"] = dtype;
  if (config.contains("torch_dtype") || !config.contains("dtype")) config["torch_dtype"] = dtype;
  return config;
}

}  // namespace

int export_command(const Args& args) {
  po::options_description options("Options");
  options.add_options()("to", po::value<std::string>()->required(), "the folder to write (new, or empty)")(
      "run", po::value<std::string>()->required(), "run folder");
  po::positional_options_description positional;
  positional.add("run", 1);
  po::variables_map vars;
  if (parse_args(args,
                 "usage: prefopt export RUN_DIR --to DIR\n\n"
                 "Writes the policy a run trained from a Hugging Face checkpoint ([policy] checkpoint) as a\n"
                 "Hugging Face folder: model.safetensors with the trained weights, config.json and the\n"
                 "tokenizer and generation files of the checkpoint it started from. transformers loads it\n"
                 "(AutoModelForCausalLM.from_pretrained(DIR)), and so does [policy] checkpoint.",
                 options, positional, vars))
    return 0;
  const fs::path run_dir = vars["run"].as<std::string>();
  const fs::path to = vars["to"].as<std::string>();
  const fs::path checkpoint = source_checkpoint(run_dir);
  const models::SafetensorsFile weights(run_dir / run_files::kPolicy);
  check_weights_fit(weights, checkpoint);
  if (fs::exists(to) && !(fs::is_directory(to) && fs::is_empty(to)))
    throw ConfigError(fmt::format("--to {}: exists and is not an empty folder; choose a new one", to.string()));

  // Written beside the target and renamed into place: an interrupted export leaves no half folder.
  const fs::path partial = to.string() + ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial);
  std::ofstream(partial / "config.json") << exported_config(checkpoint, weights).dump(2) << '\n';
  for (const char* name : kCompanionFiles)
    if (fs::exists(checkpoint / name)) fs::copy_file(checkpoint / name, partial / name);
  fs::copy_file(run_dir / run_files::kPolicy, partial / "model.safetensors");
  if (fs::exists(to)) fs::remove(to);
  fs::rename(partial, to);

  const json final_row = run_files::read_summary(run_dir)["final"];
  fmt::print("exported {}'s policy ({}, trained from {}; final gold {:.3f}, KL {:.3f}) to {}\n", run_dir.string(),
             weights.metadata().contains("prefopt_model") ? weights.metadata().at("prefopt_model") : "decoder",
             checkpoint.string(), final_row.value("gold", 0.0), final_row.value("kl", 0.0), to.string());
  return 0;
}

}  // namespace prefopt::cli
