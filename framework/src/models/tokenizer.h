// Hugging Face tokenizers (`tokenizer.json`) with a BPE model: the byte-level BPE of GPT-2,
// GPT-NeoX, Llama 3 and Qwen2, and BPE with byte fallback. Encodes as the `tokenizers` library
// does: added tokens split out first, then the normalizer, the pre-tokenizer, BPE merges by rank,
// and the post-processor's special tokens; decodes back to text.
//
//   Tokenizer tokenizer(folder / "tokenizer.json");
//   std::vector<std::int64_t> ids = tokenizer.encode("Hello world", /*add_special_tokens=*/true);
//   std::string text = tokenizer.decode(ids, /*skip_special_tokens=*/false);
//
// A component it does not implement (a WordPiece or Unigram model, a Metaspace pre-tokenizer, a
// Split that inverts, ...) is refused when the file is read, naming it. Not thread-safe: encode
// caches the BPE of each word it has seen.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefopt::models {

class Tokenizer {
 public:
  // Throws ConfigError naming the file and the key for what it cannot read or does not support.
  explicit Tokenizer(const std::filesystem::path& tokenizer_json);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Throws ConfigError for text that is not UTF-8.
  std::vector<std::int64_t> encode(std::string_view text, bool add_special_tokens) const;
  // Ids the tokenizer does not know (a model's padded vocabulary rows) decode to nothing.
  std::string decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const;

  std::int64_t vocab_size() const;  // the model's vocabulary and the added tokens
  std::optional<std::int64_t> token_id(const std::string& token) const;
  std::string describe() const;     // "byte-level BPE, 50257 tokens, 1 added"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The tokenizer of a checkpoint folder: its tokenizer.json, or none. (SentencePiece tokenizer.model
// files are not read: Debian's libsentencepiece exports the protobuf-lite it embeds, which collides
// with the libprotobuf that Debian's libtorch loads, and the process crashes as it starts.)
std::optional<Tokenizer> find_tokenizer(const std::filesystem::path& folder);

}  // namespace prefopt::models
