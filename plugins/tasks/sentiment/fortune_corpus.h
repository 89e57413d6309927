// The sentiment task's text: fortune(6) cookie files (Debian's `fortunes` package) read into plain
// ASCII entries, and a byte-pair tokenizer trained on them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace prefopt::sentiment {

// The entries of a fortune file (entries separated by lines holding just "%"), or of every such
// file in a folder (names without a '.', in name order: the .dat and .u8 files beside them are
// indexes). Each entry's whitespace runs become one space. Entries with a non-ASCII or control
// byte, or with fewer than 60% letters among their visible characters (ASCII art, tables), are
// left out. Throws std::runtime_error naming the path when it holds no entry.
std::vector<std::string> read_fortunes(const std::filesystem::path& path);

// Byte-pair encoding over characters, trained deterministically: text is cut into chunks (a
// space with the run of letters and apostrophes, digits, or other characters after it, as
// GPT-2's pre-tokenizer does), and merges never cross a chunk. Token 0 is EOS (the empty
// string), tokens 1..A the characters seen in training in byte order, and the merges follow in
// the order they were learned: the most frequent adjacent pair, ties to the smaller ids.
class BytePairTokenizer {
 public:
  static constexpr std::int64_t kEos = 0;

  // Merges until `vocab` tokens (EOS and characters included) or until no pair occurs twice.
  // std::invalid_argument when `vocab` cannot hold EOS and the characters.
  static BytePairTokenizer train(const std::vector<std::string>& texts, std::int64_t vocab);

  std::int64_t vocab_size() const { return static_cast<std::int64_t>(tokens_.size()); }
  const std::string& token_text(std::int64_t id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  // std::invalid_argument for a character the tokenizer never saw.
  std::vector<std::int64_t> encode(std::string_view text) const;
  std::string decode(const std::vector<std::int64_t>& ids) const;

 private:
  std::vector<std::int64_t> encode_chunk(std::string_view chunk) const;

  std::vector<std::string> tokens_;
  std::array<std::int32_t, 256> char_ids_{};  // a character's token, 0 (EOS) for one never seen
  std::unordered_map<std::uint64_t, std::int64_t> merges_;  // (left << 32 | right) -> merged id, in learned order
};

// The chunks merges stay within: " hello", "," and " 42" in "hello, 42" are "hello", ",", " 42".
std::vector<std::string_view> pre_tokenize(std::string_view text);

}  // namespace prefopt::sentiment
