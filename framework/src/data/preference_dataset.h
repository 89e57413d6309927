// A preference dataset of text (JSON Lines or CSV) read into the task's tokens: human labels as
// the preferences stage's source (`[preferences] source = "dataset"`, docs/data.md).
//
// A row is one judgment, in one of three shapes, its columns named by [dataset]:
//   pairwise   prompt, chosen, rejected           (tie = true: the two were judged equal)
//   ranking    prompt, responses, ranks           (1 = best; equal ranks are ties)
//   ratings    prompt, responses, ratings         (higher is better; equal ratings are ties)
// with, optionally, annotator (who judged) and split (held_out_split marks held-out rows). A text
// is a string or a conversation, a list of {"role", "content"} messages; a conversation's text is
// its messages' contents joined by newlines. Without a prompt column, chosen and rejected are
// whole conversations and the prompt is the messages they share (TRL's implicit prompt).
//
// Judgments of the same prompt and the same two responses (in either order) are one pair with
// several votes. A pair's response a is the first row's chosen (or its better response).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/records.h"
#include "prefopt/reward_model.h"
#include "prefopt/task.h"

namespace prefopt::data {

struct DatasetOptions {
  std::filesystem::path file;
  std::string format = "auto";  // auto, jsonl, csv
  std::string prompt = "prompt", chosen = "chosen", rejected = "rejected";
  std::string responses = "responses", ranks = "ranks", ratings = "ratings";
  std::string annotator = "annotator", tie = "tie", split = "split";  // optional columns
  std::string held_out_split = "test";
  double held_out = 0.1;  // without a split column: this fraction of the pairs, at random (fixed seed)
  std::string votes = "each";  // each: every vote is a training example; majority: one per pair
  bool dedup = true;           // the same judgment (prompt, responses, verdict, annotator) counts once
  std::int64_t max_bad_rows = 0;
};

// A dataset's pairs in tokens, the votes still per pair.
struct DatasetPairs {
  Sequences a, b;                     // [pairs, ...]
  std::vector<std::vector<std::int64_t>> votes_for_a, votes_for_b;  // annotator indices, per pair
  std::vector<std::int64_t> ties;     // tie votes per pair
  std::vector<bool> held_out;         // per pair
  std::vector<std::string> annotators;
  nlohmann::json report;              // what was read: rows, bad rows, duplicates, truncations, ...

  std::int64_t size() const { return static_cast<std::int64_t>(held_out.size()); }
};

// Reads and tokenizes the dataset. A ConfigError naming the file and line (the first few, and
// how many) when more than max_bad_rows rows are malformed; each problem names the column and
// the [dataset] setting that maps it, with a did-you-mean among the row's keys.
DatasetPairs read_preference_dataset(const DatasetOptions& options, const TextTask& task);

// How the file's votes agree with the gold judge (`gold_prefers_a`, per pair) and with the
// annotator plugin's labels of the same pairs: per vote, per annotator, and for each pair's
// majority (pairs with one).
nlohmann::json human_agreement(const DatasetPairs& pairs, const at::Tensor& gold_prefers_a, const Labels& simulated);

// The training examples and labels of `pairs` as PreferenceData: the training pairs first, then
// the held-out ones (their count in `train_size`). With votes "each", one example per vote (a
// pair with 7 votes for a and 3 for b is trained on as a 0.7 soft label); with "majority", one
// per pair, labelled by its majority, pairs without one (ties) left out.
PreferenceData dataset_examples(const DatasetPairs& pairs, const std::string& votes, std::int64_t& train_size);
// The pairs with `labels` (another labeller's, one label set per pair) instead of their votes,
// ordered likewise.
PreferenceData relabelled_examples(const DatasetPairs& pairs, const Labels& labels, std::int64_t& train_size);

}  // namespace prefopt::data
