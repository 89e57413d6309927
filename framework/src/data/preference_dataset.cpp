#include "data/preference_dataset.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>

#include "data/rows.h"
#include "files.h"
#include "pipeline/agreement.h"
#include "prefopt/error.h"

namespace prefopt::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One annotator's verdict on two responses to a prompt.
struct Judgment {
  std::string prompt, better, worse;
  bool tie = false;
  std::string annotator, split;
  std::int64_t line = 0;
};

// Reads one row's cells through the [dataset] mapping.
class RowReader : public Cells {
 public:
  RowReader(const DatasetOptions& options, const Record& record)
      : Cells(record.row, "[dataset]"), options_(options), record_(record) {}

  // The row's judgments: one for a pairwise row, one per two responses of a ranked or rated row.
  std::vector<Judgment> judgments() const {
    const std::string annotator = label(options_.annotator, "annotator");
    const std::string split = label(options_.split, "split");
    const auto judged = [&](std::string prompt, std::string better, std::string worse, bool tie) {
      return Judgment{std::move(prompt), std::move(better), std::move(worse), tie, annotator, split, record_.line};
    };
    if (has(options_.chosen) || !has(options_.responses)) {
      const bool tie = flag(options_.tie, "tie");
      if (has(options_.prompt)) {
        return {judged(text(options_.prompt, "prompt"), text(options_.chosen, "chosen"),
                       text(options_.rejected, "rejected"), tie)};
      }
      return {implicit_prompt(tie, judged)};
    }
    return ranked(judged);
  }

 private:
  // Whole conversations: the prompt is what they share, the responses what follows.
  template <class Judged>
  Judgment implicit_prompt(bool tie, const Judged& judged) const {
    const auto chosen = conversation(cell(options_.chosen, "chosen"));
    const auto rejected = conversation(cell(options_.rejected, "rejected"));
    if (!chosen || !rejected)
      throw RowProblem(fmt::format("no column '{}' ([dataset] prompt); without one, chosen and rejected must be "
                                   "conversations that share their first messages, and here they are not",
                                   options_.prompt));
    std::size_t shared = 0;
    while (shared < chosen->size() && shared < rejected->size() && (*chosen)[shared] == (*rejected)[shared]) ++shared;
    if (shared == 0) throw RowProblem("chosen and rejected share no first message to be the prompt");
    if (shared == chosen->size() || shared == rejected->size())
      throw RowProblem("chosen or rejected has no message beyond the shared prompt");
    return judged(text_of(std::vector<Message>(chosen->begin(), chosen->begin() + shared)), text_of(*chosen, shared),
                  text_of(*rejected, shared), tie);
  }

  template <class Judged>
  std::vector<Judgment> ranked(const Judged& judged) const {
    const bool by_rank = has(options_.ranks);
    const std::string& column = by_rank ? options_.ranks : options_.ratings;
    const std::string setting = by_rank ? "ranks" : "ratings";
    if (!by_rank && !has(options_.ratings))
      throw RowProblem(fmt::format("column '{}' ([dataset] responses) needs a column '{}' ([dataset] ranks) or '{}' "
                                   "([dataset] ratings) beside it",
                                   options_.responses, options_.ranks, options_.ratings));
    const json responses = list(options_.responses, "responses");
    const json scores = list(column, setting);
    if (responses.size() != scores.size() || responses.size() < 2)
      throw RowProblem(fmt::format("'{}' has {} responses and '{}' {} {}; both need the same number, at least 2",
                                   options_.responses, responses.size(), column, scores.size(), setting));
    std::vector<std::string> texts;
    std::vector<double> merit;
    for (std::size_t i = 0; i < responses.size(); ++i) {
      if (auto messages = conversation(responses[i])) texts.push_back(text_of(*messages));
      else if (responses[i].is_string()) texts.push_back(responses[i].get<std::string>());
      else throw RowProblem(fmt::format("response {} of '{}' is not text", i + 1, options_.responses));
      if (!scores[i].is_number()) throw RowProblem(fmt::format("'{}' holds {}, not a number", column, scores[i].dump()));
      merit.push_back(by_rank ? -scores[i].get<double>() : scores[i].get<double>());
    }
    const std::string prompt = text(options_.prompt, "prompt");
    std::vector<Judgment> out;
    for (std::size_t i = 0; i < texts.size(); ++i)
      for (std::size_t j = i + 1; j < texts.size(); ++j) {
        const bool i_better = merit[i] >= merit[j];
        out.push_back(judged(prompt, i_better ? texts[i] : texts[j], i_better ? texts[j] : texts[i], merit[i] == merit[j]));
      }
    return out;
  }

  const DatasetOptions& options_;
  const Record& record_;
};

using Ids = std::vector<std::int64_t>;

// Judgments of one prompt and two responses, in tokens: texts that differ only where the task's
// tokenizer does not (whitespace, for the sentiment task) are the same pair.
struct Pair {
  Ids prompt, a, b;
  std::vector<std::string> votes_a, votes_b;  // annotators
  std::int64_t ties = 0;
  std::string split;
  std::int64_t line = 0;  // of its first judgment
};

}  // namespace

DatasetPairs read_preference_dataset(const DatasetOptions& options, const TextTask& task) {
  const fs::path& file = options.file;
  Records records = read_records(file, file_format(file, options.format, "[dataset] format"));
  std::vector<BadRow> bad = std::move(records.bad);
  Encoder encode(task);
  std::int64_t duplicates = 0;
  std::vector<Pair> pairs;
  std::map<std::tuple<Ids, Ids, Ids>, std::size_t> pair_of;  // (prompt, a, b) -> index
  std::set<std::tuple<Ids, Ids, Ids, bool, std::string>> seen;  // judgments, for dedup
  for (const Record& record : records.rows) {
    std::vector<Judgment> judgments;
    try {
      judgments = RowReader(options, record).judgments();
      for (const Judgment& j : judgments) {
        if (encode(j.prompt).empty()) throw RowProblem("the prompt is empty");
        if (encode(j.better) == encode(j.worse)) throw RowProblem("the two responses are the same text");
        auto same = pair_of.find({encode(j.prompt), encode(j.worse), encode(j.better)});
        if (same == pair_of.end()) same = pair_of.find({encode(j.prompt), encode(j.better), encode(j.worse)});
        if (same != pair_of.end() && !j.split.empty() && !pairs[same->second].split.empty() &&
            pairs[same->second].split != j.split)
          throw RowProblem(fmt::format("split '{}', but line {} put the same pair in split '{}'", j.split,
                                       pairs[same->second].line, pairs[same->second].split));
      }
    } catch (const RowProblem& e) {
      bad.push_back({record.line, e.what()});
      continue;
    } catch (const std::invalid_argument& e) {  // text the task cannot spell
      bad.push_back({record.line, e.what()});
      continue;
    }
    for (Judgment& j : judgments) {
      const Ids &prompt = encode(j.prompt), &better = encode(j.better), &worse = encode(j.worse);
      if (options.dedup && !seen.emplace(prompt, better, worse, j.tie, j.annotator).second) {
        ++duplicates;
        continue;
      }
      auto found = pair_of.find({prompt, worse, better});
      const bool swapped = found != pair_of.end();
      if (!swapped) found = pair_of.find({prompt, better, worse});
      if (found == pair_of.end()) {
        found = pair_of.emplace(std::tuple{prompt, better, worse}, pairs.size()).first;
        pairs.push_back({prompt, better, worse, {}, {}, 0, j.split, j.line});
      }
      Pair& pair = pairs[found->second];
      if (pair.split.empty()) pair.split = j.split;  // a row without a split takes its pair's
      if (j.tie) ++pair.ties;
      else (swapped ? pair.votes_b : pair.votes_a).push_back(j.annotator);
    }
  }

  refuse_bad_rows(file, bad, options.max_bad_rows, "[dataset] max_bad_rows");
  if (pairs.empty()) throw ConfigError(fmt::format("{}: no preference pairs in the file", file.string()));

  // Held out by prompt, so no held-out prompt is trained on: by the split column (a pair's rows
  // agree on it, checked above), or a fixed random fraction of the distinct prompts.
  std::vector<const Pair*> firsts;  // each distinct prompt's first pair, in file order
  std::set<Ids> listed;
  for (const Pair& pair : pairs)
    if (listed.insert(pair.prompt).second) firsts.push_back(&pair);
  std::vector<std::string> splits;
  for (const Pair* pair : firsts) splits.push_back(pair->split);
  const bool has_split = has_column(records, options.split);
  const std::vector<bool> flags = held_out_flags(splits, has_split, options.held_out_split, options.held_out);
  std::map<Ids, bool> prompt_held_out;
  for (std::size_t i = 0; i < firsts.size(); ++i) prompt_held_out.emplace(firsts[i]->prompt, flags[i]);

  // Tokens: the prompt's last prompt_length tokens, left-padded; each response and EOS, cut to
  // max_response_length.
  const std::int64_t n = static_cast<std::int64_t>(pairs.size());
  const std::int64_t prompt_width = task.prompt_length();
  const std::int64_t response_width = task.max_response_length();
  const std::int64_t eos = task.eos_token();
  at::Tensor prompts = at::full({n, prompt_width}, kPromptPadding, at::kLong);
  at::Tensor responses_a = at::full({n, response_width}, eos, at::kLong);
  at::Tensor responses_b = at::full({n, response_width}, eos, at::kLong);
  std::int64_t cut_prompts = 0, cut_responses = 0;
  DatasetPairs out;
  std::map<std::string, std::int64_t> annotator_index;
  for (const Pair& pair : pairs)
    for (const auto* votes : {&pair.votes_a, &pair.votes_b})
      for (const std::string& name : *votes) annotator_index.emplace(name.empty() ? "dataset" : name, 0);
  for (auto& [name, index] : annotator_index) {
    index = static_cast<std::int64_t>(out.annotators.size());
    out.annotators.push_back(name);
  }
  if (out.annotators.empty()) out.annotators.push_back("dataset");
  const auto indices = [&](const std::vector<std::string>& names) {
    std::vector<std::int64_t> ids;
    for (const std::string& name : names) ids.push_back(annotator_index.at(name.empty() ? "dataset" : name));
    return ids;
  };
  std::int64_t votes = 0, ties = 0, identical = 0;
  for (std::int64_t row = 0; row < n; ++row) {
    const Pair& pair = pairs[static_cast<std::size_t>(row)];
    cut_prompts += put_prompt(prompts, row, pair.prompt);
    cut_responses += put_response(responses_a, row, pair.a);
    cut_responses += put_response(responses_b, row, pair.b);
    const bool same = responses_a[row].equal(responses_b[row]);
    identical += same;
    // Two texts the cut makes the same tokens are no preference at all: every vote becomes a tie.
    out.votes_for_a.push_back(same ? std::vector<std::int64_t>{} : indices(pair.votes_a));
    out.votes_for_b.push_back(same ? std::vector<std::int64_t>{} : indices(pair.votes_b));
    out.ties.push_back(pair.ties + (same ? static_cast<std::int64_t>(pair.votes_a.size() + pair.votes_b.size()) : 0));
    out.held_out.push_back(prompt_held_out.at(pair.prompt));
    votes += static_cast<std::int64_t>(out.votes_for_a.back().size() + out.votes_for_b.back().size());
    ties += out.ties.back();
  }
  out.a = {prompts, responses_a, response_lengths(responses_a, eos)};
  out.b = {prompts, responses_b, response_lengths(responses_b, eos)};

  // Inter-annotator agreement over the pairs with two votes or more (Krippendorff's alpha copes
  // with pairs of different vote counts).
  at::Tensor counts = at::zeros({n, 2}, at::kDouble);
  for (std::int64_t row = 0; row < n; ++row) {
    counts[row][0] = static_cast<double>(out.votes_for_a[static_cast<std::size_t>(row)].size());
    counts[row][1] = static_cast<double>(out.votes_for_b[static_cast<std::size_t>(row)].size());
  }
  const std::int64_t held = std::count(out.held_out.begin(), out.held_out.end(), true);
  out.report = {{"file", file.string()},
                {"rows", records.total},
                {"bad_rows", bad.size()},
                {"bad_row_problems", bad_row_list(file, bad)},
                {"duplicate_judgments", duplicates},
                {"pairs", n},
                {"held_out_pairs", held},
                {"held_out_by", has_split ? fmt::format("column '{}' = '{}'", options.split, options.held_out_split)
                                          : fmt::format("a fixed random {} of the prompts", options.held_out)},
                {"votes", votes},
                {"tie_votes", ties},
                {"identical_after_cut", identical},
                {"prompts_cut", cut_prompts},
                {"responses_cut", cut_responses},
                {"annotators", out.annotators.size()},
                {"krippendorff_alpha", finite_or_null(krippendorff_alpha_nominal(counts))}};
  return out;
}

json human_agreement(const DatasetPairs& pairs, const at::Tensor& gold_prefers_a, const Labels& simulated) {
  const at::Tensor gold = gold_prefers_a.to(at::kCPU);
  const at::Tensor plugin = simulated.prefers_a.to(at::kCPU);
  const at::Tensor plugin_keep = simulated.keep.to(at::kCPU);
  std::vector<std::int64_t> agree(pairs.annotators.size()), cast(pairs.annotators.size());
  std::int64_t majorities = 0, majority_gold = 0, compared = 0, majority_plugin = 0;
  for (std::int64_t row = 0; row < pairs.size(); ++row) {
    const auto r = static_cast<std::size_t>(row);
    const bool gold_a = gold[row].item<bool>();
    const auto count = [&](const std::vector<std::int64_t>& voters, bool agrees) {
      for (const std::int64_t who : voters) {
        agree[static_cast<std::size_t>(who)] += agrees;
        ++cast[static_cast<std::size_t>(who)];
      }
    };
    count(pairs.votes_for_a[r], gold_a);
    count(pairs.votes_for_b[r], !gold_a);
    const auto for_a = pairs.votes_for_a[r].size(), for_b = pairs.votes_for_b[r].size();
    if (for_a == for_b) continue;
    ++majorities;
    majority_gold += (for_a > for_b) == gold_a;
    if (!plugin_keep[row].item<bool>()) continue;
    ++compared;
    majority_plugin += (for_a > for_b) == plugin[row].item<bool>();
  }
  const auto ratio = [](std::int64_t part, std::int64_t whole) {
    return whole > 0 ? json(static_cast<double>(part) / static_cast<double>(whole)) : json(nullptr);
  };
  json by_annotator = json::object();
  for (std::size_t i = 0; i < pairs.annotators.size(); ++i)
    if (cast[i] > 0) by_annotator[pairs.annotators[i]] = ratio(agree[i], cast[i]);
  return {{"vote_agreement_with_gold", ratio(std::reduce(agree.begin(), agree.end()), std::reduce(cast.begin(), cast.end()))},
          {"vote_agreement_with_gold_by_annotator", by_annotator},
          {"pairs_with_a_majority", majorities},
          {"majority_agreement_with_gold", ratio(majority_gold, majorities)},
          {"majority_agreement_with_annotator_plugin", ratio(majority_plugin, compared)}};
}

PreferenceData dataset_examples(const DatasetPairs& pairs, const std::string& votes, std::int64_t& train_size) {
  std::vector<std::int64_t> rows, annotators, prefers_a;
  for (const bool held_out : {false, true}) {
    for (std::int64_t row = 0; row < pairs.size(); ++row) {
      const auto r = static_cast<std::size_t>(row);
      if (pairs.held_out[r] != held_out) continue;
      const auto& for_a = pairs.votes_for_a[r];
      const auto& for_b = pairs.votes_for_b[r];
      if (votes == "majority") {
        if (for_a.size() == for_b.size()) continue;
        rows.push_back(row);
        prefers_a.push_back(for_a.size() > for_b.size());
        // A lone vote keeps its annotator (crowd_bt learns from it); a majority of several is "majority".
        const auto& winners = for_a.size() > for_b.size() ? for_a : for_b;
        annotators.push_back(winners.size() == 1 ? winners.front() : static_cast<std::int64_t>(pairs.annotators.size()));
        continue;
      }
      for (const auto* side : {&for_a, &for_b})
        for (const std::int64_t annotator : *side) {
          rows.push_back(row);
          prefers_a.push_back(side == &for_a);
          annotators.push_back(annotator);
        }
    }
    if (!held_out) train_size = static_cast<std::int64_t>(rows.size());
  }
  std::vector<std::string> names = pairs.annotators;
  if (votes == "majority") names.push_back("majority");
  const auto n = static_cast<std::int64_t>(rows.size());
  const at::Tensor index = at::tensor(rows, at::kLong);
  const at::Tensor label = at::tensor(prefers_a, at::kLong).to(at::kBool);
  return {select_rows(pairs.a, index),
          select_rows(pairs.b, index),
          {label.unsqueeze(1), at::tensor(annotators, at::kLong).reshape({n, 1}), label, at::ones({n}, at::kBool),
           std::move(names)}};
}

PreferenceData relabelled_examples(const DatasetPairs& pairs, const Labels& labels, std::int64_t& train_size) {
  std::vector<std::int64_t> order;
  for (const bool held_out : {false, true}) {
    for (std::int64_t row = 0; row < pairs.size(); ++row)
      if (pairs.held_out[static_cast<std::size_t>(row)] == held_out) order.push_back(row);
    if (!held_out) train_size = static_cast<std::int64_t>(order.size());
  }
  return PreferenceData{pairs.a, pairs.b, labels}.select(at::tensor(order, at::kLong));
}

}  // namespace prefopt::data
