// Preference datasets: JSON Lines and CSV read by hand-checked rules, each row shape (pairwise,
// conversations, rankings, ratings), votes grouped into pairs, ties, dedup, splits, the tokens
// (left-cut prompts, EOS-ended responses), and bad rows refused with file, line, column and the
// setting to fix.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fmt/format.h>

#include <fstream>

#include "data/preference_dataset.h"
#include "data/records.h"
#include "data/rows.h"
#include "data/text_files.h"
#include "prefopt/error.h"
#include "support.h"

using namespace prefopt;
using namespace prefopt::data;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Characters as tokens: 'a' is 1 ... 'z' is 26, ' ' 27, '.' 28, EOS 0; anything else cannot be
// spelled. Gold: the number of 'g's in the response.
class LetterTask final : public TextTask {
 protected:
  std::int64_t do_vocab_size() const override { return 29; }
  std::int64_t do_eos_token() const override { return 0; }
  std::int64_t do_prompt_length() const override { return 4; }
  std::int64_t do_max_response_length() const override { return 5; }
  std::vector<std::string> do_attribute_names() const override { return {"g"}; }
  at::Tensor do_gold_weights() const override { return torch::ones({1}); }
  at::Tensor do_sample_prompts(std::int64_t, at::Generator&) const override { throw std::logic_error("unused"); }
  Sequences do_sample_corpus(std::int64_t, at::Generator&) const override { throw std::logic_error("unused"); }
  at::Tensor do_score_attributes(const Sequences& s) const override {
    return s.responses.eq(7).logical_and(torch::arange(5).unsqueeze(0).lt(s.lengths.unsqueeze(1))).sum(1, true).to(torch::kFloat);
  }
  std::vector<std::int64_t> do_encode(const std::string& text) const override {
    std::vector<std::int64_t> ids;
    for (const char c : text) {
      if (c >= 'a' && c <= 'z') ids.push_back(c - 'a' + 1);
      else if (c == ' ') ids.push_back(27);
      else if (c == '.') ids.push_back(28);
      else throw std::invalid_argument(std::string("no token for '") + c + "'");
    }
    return ids;
  }
  std::string do_decode(const std::vector<std::int64_t>& ids) const override {
    std::string out;
    for (const std::int64_t id : ids) out += id == 27 ? ' ' : id == 28 ? '.' : static_cast<char>('a' + id - 1);
    return out;
  }
};

fs::path write(const test::TempDir& dir, const std::string& name, const std::string& text) {
  const fs::path file = dir.path() / name;
  std::ofstream(file, std::ios::binary) << text;
  return file;
}

std::vector<std::int64_t> ids(const at::Tensor& row) {
  const at::Tensor t = row.contiguous();
  return {t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + t.numel()};
}

std::string refusal(const DatasetOptions& options) {
  const LetterTask task;
  try {
    read_preference_dataset(options, task);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("the dataset was accepted");
  return "";
}

}  // namespace

TEST_CASE("JSON Lines pairs: votes grouped in either order, ties, dedup, split and tokens", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "pairs.jsonl",
                              R"({"prompt": "say", "chosen": " gg", "rejected": " no", "annotator": "ann", "split": "train"})" "\n"
                              "\n"  // blank lines are skipped
                              R"({"prompt": "say", "chosen": " no", "rejected": " gg", "annotator": "bob"})" "\n"
                              R"({"prompt": "say", "chosen": " gg", "rejected": " no", "annotator": "ann"})" "\n"
                              R"({"prompt": "say", "chosen": " gg", "rejected": " no", "annotator": "cy", "tie": true})" "\n"
                              R"({"prompt": "a long prompt", "chosen": "good and long", "rejected": "bad", "annotator": 7, "split": "test"})" "\n");
  const LetterTask task;
  const DatasetPairs pairs = read_preference_dataset({.file = file}, task);
  REQUIRE(pairs.size() == 2);
  CHECK(pairs.annotators == std::vector<std::string>{"7", "ann", "bob"});
  // Pair 0: ann for " gg" (once: the repeat is a duplicate), bob for " no", cy a tie.
  CHECK(pairs.votes_for_a[0] == std::vector<std::int64_t>{1});
  CHECK(pairs.votes_for_b[0] == std::vector<std::int64_t>{2});
  CHECK(pairs.ties[0] == 1);
  CHECK(pairs.held_out == std::vector<bool>{false, true});
  CHECK(pairs.report["duplicate_judgments"] == 1);
  CHECK(pairs.report["rows"] == 5);
  CHECK(pairs.report["votes"] == 3);
  CHECK(pairs.report["tie_votes"] == 1);
  CHECK(pairs.report["held_out_by"] == "column 'split' = 'test'");
  // "say" right-aligned behind padding; "a long prompt" keeps its last 4 tokens, "ompt".
  CHECK(ids(pairs.a.prompts[0]) == std::vector<std::int64_t>{kPromptPadding, 19, 1, 25});
  CHECK(ids(pairs.a.prompts[1]) == std::vector<std::int64_t>{15, 13, 16, 20});
  CHECK(ids(pairs.a.responses[0]) == std::vector<std::int64_t>{27, 7, 7, 0, 0});
  CHECK(pairs.a.lengths[0].item<std::int64_t>() == 4);
  // "good and long" is cut to 5 tokens, no EOS among them.
  CHECK(ids(pairs.a.responses[1]) == std::vector<std::int64_t>{7, 15, 15, 4, 27});
  CHECK(pairs.a.lengths[1].item<std::int64_t>() == 5);
  CHECK(pairs.report["prompts_cut"] == 1);
  CHECK(pairs.report["responses_cut"] == 1);
  CHECK(task.decode(response_ids(pairs.b, 1, 0)) == "bad");

  SECTION("without dedup the repeated vote counts twice") {
    const DatasetPairs all = read_preference_dataset({.file = file, .dedup = false}, task);
    CHECK(all.votes_for_a[0] == std::vector<std::int64_t>{1, 1});
  }
  SECTION("training examples: one per vote, or one per pair by majority") {
    std::int64_t train = 0;
    const PreferenceData each = dataset_examples(pairs, "each", train);
    CHECK(train == 2);  // pair 0's two votes; pair 1's one vote is held out
    REQUIRE(each.size() == 3);
    CHECK(ids(each.labels.prefers_a.to(torch::kLong)) == std::vector<std::int64_t>{1, 0, 1});
    CHECK(ids(each.labels.annotators.flatten()) == std::vector<std::int64_t>{1, 2, 0});
    const PreferenceData majority = dataset_examples(pairs, "majority", train);
    // Pair 0 is one vote each way: no majority, left out.
    CHECK(train == 0);
    REQUIRE(majority.size() == 1);
    CHECK(majority.labels.names.back() == "majority");
    CHECK(ids(majority.labels.annotators.flatten()) == std::vector<std::int64_t>{0});  // a lone vote keeps its annotator
  }
  SECTION("agreement with gold (the number of g's) and with another labeller") {
    const at::Tensor gold = task.gold_reward(pairs.a).gt(task.gold_reward(pairs.b));
    CHECK(ids(gold.to(torch::kLong)) == std::vector<std::int64_t>{1, 1});
    const Labels other = single_votes(torch::tensor({false, true}), "other");
    const json agreement = human_agreement(pairs, gold, other);
    CHECK(agreement["vote_agreement_with_gold"].get<double>() == Approx(2.0 / 3));
    CHECK(agreement["vote_agreement_with_gold_by_annotator"]["bob"] == 0.0);
    CHECK(agreement["pairs_with_a_majority"] == 1);
    CHECK(agreement["majority_agreement_with_gold"] == 1.0);
    CHECK(agreement["majority_agreement_with_annotator_plugin"] == 1.0);
  }
}

TEST_CASE("conversations: explicit prompts, and the implicit prompt two conversations share", "[data]") {
  test::TempDir dir;
  const fs::path file = write(
      dir, "chat.jsonl",
      R"({"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "go"}], "rejected": "no"})" "\n"
      R"({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "gg"}],)"
      R"( "rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}, {"role": "assistant", "content": "x"}]})" "\n");
  const LetterTask task;
  // Newlines join a conversation's messages: this task has no token for them.
  const std::string problems = refusal({.file = file, .max_bad_rows = 0});
  CHECK_THAT(problems, Catch::Contains("chat.jsonl:2: no token for '\n'"));
  CHECK_THAT(problems, Catch::Contains("1 malformed row ([dataset] max_bad_rows = 0 allows 0)"));
  const DatasetPairs pairs = read_preference_dataset({.file = file, .max_bad_rows = 1}, task);
  REQUIRE(pairs.size() == 1);
  CHECK(task.decode(prompt_ids(pairs.a, 0)) == "hi");
  CHECK(task.decode(response_ids(pairs.a, 0, 0)) == "go");
  CHECK(pairs.report["bad_rows"] == 1);

  const fs::path spaced = write(
      dir, "spaced.jsonl",
      R"({"chosen": [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "gg"}], "rejected": [{"role": "user", "content": "ab"}, {"role": "assistant", "content": "x"}]})" "\n");
  const DatasetPairs implicit = read_preference_dataset({.file = spaced}, task);
  CHECK(task.decode(prompt_ids(implicit.a, 0)) == "ab");
  CHECK(task.decode(response_ids(implicit.a, 0, 0)) == "gg");
  CHECK(task.decode(response_ids(implicit.b, 0, 0)) == "x");
}

TEST_CASE("rankings and ratings become every pair of their responses, equal ones ties", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "ranked.jsonl",
                              R"({"prompt": "p", "responses": ["aa", "bb", "cc"], "ranks": [2, 1, 3]})" "\n"
                              R"({"prompt": "q", "responses": ["aa", "bb"], "ratings": [4.5, 4.5]})" "\n");
  const LetterTask task;
  const DatasetPairs pairs = read_preference_dataset({.file = file, .held_out = 0.0}, task);
  REQUIRE(pairs.size() == 4);
  // Ranks 2, 1, 3: bb > aa, aa > cc, bb > cc; each pair's a is its better response.
  const std::vector<std::pair<std::string, std::string>> expected = {{"bb", "aa"}, {"aa", "cc"}, {"bb", "cc"}, {"aa", "bb"}};
  for (std::int64_t row = 0; row < 4; ++row) {
    CHECK(task.decode(response_ids(pairs.a, row, 0)) == expected[static_cast<std::size_t>(row)].first);
    CHECK(task.decode(response_ids(pairs.b, row, 0)) == expected[static_cast<std::size_t>(row)].second);
  }
  CHECK(pairs.votes_for_a[0].size() == 1);
  CHECK(pairs.ties[3] == 1);
  CHECK(pairs.votes_for_a[3].empty());
}

TEST_CASE("CSV: quoted commas, quotes and newlines, lists as JSON, rows' first lines", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "pairs.csv",
                              "prompt,chosen,rejected,annotator\r\n"
                              "say,\" gg, g\",\" no\",ann\r\n"
                              "\"multi\nline\",gg,no,bob\n"
                              "short,row\n"
                              "say,\" \"\"g\"\"\",\" no\",cy\n");
  const Records records = read_records(file, FileFormat::csv);
  REQUIRE(records.rows.size() == 3);
  CHECK(records.rows[0].line == 2);
  CHECK(records.rows[0].row["chosen"] == " gg, g");
  CHECK(records.rows[1].line == 3);
  CHECK(records.rows[1].row["prompt"] == "multi\nline");
  CHECK(records.rows[2].line == 6);
  CHECK(records.rows[2].row["chosen"] == " \"g\"");
  REQUIRE(records.bad.size() == 1);
  CHECK(records.bad[0].line == 5);
  CHECK(records.bad[0].problem == "2 fields where the header has 4");

  const fs::path ranked = write(dir, "ranked.csv", "prompt,responses,ratings\np,\"[\"\"aa\"\", \"\"bb\"\"]\",\"[1, 2]\"\n");
  const LetterTask task;
  const DatasetPairs pairs = read_preference_dataset({.file = ranked, .held_out = 0.0}, task);
  REQUIRE(pairs.size() == 1);
  CHECK(task.decode(response_ids(pairs.a, 0, 0)) == "bb");

  const fs::path open_quote = write(dir, "open.csv", "prompt,chosen\n\"never closed,x\n");
  CHECK_THROWS_WITH(read_records(open_quote, FileFormat::csv),
                    Catch::Contains("open.csv:2: the file ends inside this row's quoted field"));
  const fs::path array = write(dir, "array.json", "\n[{\"prompt\": \"p\"}]\n");
  CHECK_THROWS_WITH(read_records(array, FileFormat::jsonl),
                    Catch::Contains("array.json:2: a JSON array; prefopt reads JSON Lines, one object a line"));
  CHECK_THROWS_WITH(file_format(dir.path() / "data.parquet", "auto", "[dataset] format"),
                    Catch::Contains("[dataset] format: cannot tell the format of"));
}

TEST_CASE("bad rows: file, line, column and the setting to fix, up to max_bad_rows", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "bad.jsonl",
                              R"({"prompt": "p", "chosen": "a", "rejected": "b"})" "\n"
                              "{not json\n"
                              R"({"promt": "p", "chosen": "a", "rejected": "b"})" "\n"
                              R"(["a list"])" "\n"
                              R"({"prompt": "p", "chosen": "A", "rejected": "b"})" "\n"
                              R"({"prompt": "", "chosen": "a", "rejected": "b"})" "\n"
                              R"({"prompt": "p", "chosen": "a", "rejected": "a"})" "\n"
                              R"({"prompt": "p", "chosen": 3, "rejected": "b"})" "\n"
                              R"({"prompt": "p", "responses": ["a", "b"], "ranks": [1]})" "\n"
                              R"({"prompt": "p", "responses": ["a", "b"]})" "\n");
  const std::string message = refusal({.file = file});
  INFO(message);
  const std::string where = file.string() + ":";
  CHECK_THAT(message, Catch::Contains("9 malformed rows ([dataset] max_bad_rows = 0 allows 0)"));
  CHECK_THAT(message, Catch::Contains(where + "2: not valid JSON"));
  CHECK_THAT(message, Catch::Contains(where + "3: no column 'prompt' ([dataset] prompt); without one, chosen and "
                                               "rejected must be conversations"));
  CHECK_THAT(message, Catch::Contains(where + "4: a JSON array, not an object"));
  CHECK_THAT(message, Catch::Contains(where + "5: no token for 'A'"));
  CHECK_THAT(message, Catch::Contains(where + "6: the prompt is empty"));
  CHECK_THAT(message, Catch::Contains("... and 4 more"));

  const LetterTask task;
  const DatasetPairs pairs = read_preference_dataset({.file = file, .held_out = 0.0, .max_bad_rows = 9}, task);
  CHECK(pairs.size() == 1);
  const auto problems = pairs.report["bad_row_problems"];
  REQUIRE(problems.size() == 9);
  CHECK(problems[5] == where + "7: the two responses are the same text");
  CHECK(problems[6] == where + "8: column 'chosen' ([dataset] chosen) holds a JSON number, not text or a list of "
                               "{\"role\", \"content\"} messages");
  CHECK(problems[7] == where + "9: 'responses' has 2 responses and 'ranks' 1 ranks; both need the same number, at least 2");
  CHECK(problems[8] == where + "10: column 'responses' ([dataset] responses) needs a column 'ranks' ([dataset] ranks) "
                               "or 'ratings' ([dataset] ratings) beside it");

  // A misspelled mapping is found with the row's keys to choose from.
  const fs::path renamed = write(dir, "renamed.jsonl", R"({"question": "p", "good": "a", "bad": "b"})" "\n");
  CHECK_THAT(refusal({.file = renamed, .prompt = "question", .chosen = "god", .rejected = "bad"}),
             Catch::Contains("no column 'god' ([dataset] chosen) (did you mean 'good'?); the row has bad, good, question"));
}

TEST_CASE("without a split column a fixed fraction of the pairs is held out, the same every time", "[data]") {
  test::TempDir dir;
  std::string text;
  for (char c = 'a'; c <= 'z'; ++c)
    for (char d = 'a'; d <= 'j'; ++d) text += fmt::format(R"({{"prompt": "{}{}", "chosen": "g", "rejected": "x"}})" "\n", c, d);
  const fs::path file = write(dir, "many.jsonl", text);
  const LetterTask task;
  const DatasetPairs first = read_preference_dataset({.file = file, .held_out = 0.25}, task);
  const DatasetPairs again = read_preference_dataset({.file = file, .held_out = 0.25}, task);
  CHECK(std::count(first.held_out.begin(), first.held_out.end(), true) == 65);  // 260 pairs × 0.25
  CHECK(first.held_out == again.held_out);
  CHECK(first.report["held_out_by"] == "a fixed random 0.25 of the prompts");
  CHECK_THAT(refusal({.file = write(dir, "empty.jsonl", "\n\n")}), Catch::Contains("no preference pairs in the file"));
}

TEST_CASE("prompt files: distinct prompts split by column or by a fixed fraction, bad rows by line", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "prompts.csv",
                              "prompt,split\n"
                              "say,train\n"
                              "say,train\n"  // a duplicate: counted, not used twice
                              "a long prompt,train\n"
                              "go,test\n"
                              "Go,train\n");
  const LetterTask task;
  REQUIRE_THROWS_WITH(read_prompt_file({.file = file}, task),
                      Catch::Contains(file.string() + ":6: no token for 'G'") &&
                          Catch::Contains("([prompts] max_bad_rows = 0 allows 0)"));
  const PromptFile prompts = read_prompt_file({.file = file, .max_bad_rows = 1}, task);
  REQUIRE(prompts.train.size(0) == 2);
  CHECK(ids(prompts.train[0]) == std::vector<std::int64_t>{kPromptPadding, 19, 1, 25});
  CHECK(ids(prompts.train[1]) == std::vector<std::int64_t>{15, 13, 16, 20});  // its last 4 tokens
  REQUIRE(prompts.held_out.size(0) == 1);
  CHECK(ids(prompts.held_out[0]) == std::vector<std::int64_t>{kPromptPadding, kPromptPadding, 7, 15});
  CHECK(prompts.report["duplicate_prompts"] == 1);
  CHECK(prompts.report["prompts_cut"] == 1);
  CHECK(prompts.report["bad_rows"] == 1);

  const fs::path all_train = write(dir, "train.jsonl", R"({"prompt": "ab", "split": "train"})" "\n");
  CHECK_THROWS_WITH(read_prompt_file({.file = all_train}, task),
                    Catch::Contains("1 training and 0 held-out prompts; both need some"));
  const std::vector<bool> held_out = fixed_held_out(10, 0.3);
  CHECK(held_out == fixed_held_out(10, 0.3));
  CHECK(std::count(held_out.begin(), held_out.end(), true) == 3);
}

TEST_CASE("completion files: each row a prompt and its completion, ended by EOS or cut", "[data]") {
  test::TempDir dir;
  const fs::path file = write(dir, "sft.jsonl",
                              R"({"prompt": "hi", "completion": " go."})" "\n"
                              R"({"prompt": [{"role": "user", "content": "ask"}], "completion": [{"role": "assistant", "content": "a long answer"}]})" "\n"
                              R"({"prompt": "hi", "answer": " go."})" "\n");
  const LetterTask task;
  REQUIRE_THROWS_WITH(read_completion_file({.file = file}, task),
                      Catch::Contains(file.string() + ":3: no column 'completion' ([sft] completion); the row has answer, prompt"));
  const CompletionFile sft = read_completion_file({.file = file, .max_bad_rows = 1}, task);
  REQUIRE(sft.corpus.prompts.size(0) == 2);
  CHECK(task.decode(prompt_ids(sft.corpus, 1)) == "ask");
  CHECK(ids(sft.corpus.responses[0]) == std::vector<std::int64_t>{27, 7, 15, 28, 0});
  CHECK(sft.corpus.lengths[0].item<std::int64_t>() == 5);
  CHECK(task.decode(response_ids(sft.corpus, 1, 0)) == "a lon");
  CHECK(sft.report["completions_cut"] == 1);
  CHECK(sft.report["examples"] == 2);
}

TEST_CASE("splits: a pair's rows agree, and no held-out prompt is trained on", "[data]") {
  test::TempDir dir;
  const LetterTask task;
  const fs::path conflicting = write(dir, "conflict.jsonl",
                                     R"({"prompt": "p", "chosen": "a", "rejected": "b", "split": "train"})" "\n"
                                     R"({"prompt": "p", "chosen": "b", "rejected": "a", "split": "test"})" "\n");
  CHECK_THAT(refusal({.file = conflicting}),
             Catch::Contains("conflict.jsonl:2: split 'test', but line 1 put the same pair in split 'train'"));
  // A ranking row gives three pairs of one prompt: all held out or none, whichever prompts are drawn.
  std::string text;
  for (char c = 'a'; c <= 't'; ++c)
    text += fmt::format(R"({{"prompt": "{}", "responses": ["aa", "bb", "cc"], "ranks": [1, 2, 3]}})" "\n", c);
  const DatasetPairs pairs = read_preference_dataset({.file = write(dir, "ranked.jsonl", text), .held_out = 0.5}, task);
  REQUIRE(pairs.size() == 60);
  for (std::int64_t prompt = 0; prompt < 20; ++prompt) {
    const auto first = static_cast<std::size_t>(3 * prompt);
    CHECK(pairs.held_out[first] == pairs.held_out[first + 1]);
    CHECK(pairs.held_out[first] == pairs.held_out[first + 2]);
  }
  CHECK(std::count(pairs.held_out.begin(), pairs.held_out.end(), true) == 30);
}
