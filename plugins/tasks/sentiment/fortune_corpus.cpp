#include "fortune_corpus.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>

namespace prefopt::sentiment {
namespace {

// One entry as a single line of ASCII words, or "" when it is left out.
std::string normalize_entry(std::string_view raw) {
  std::string text;
  std::size_t letters = 0, visible = 0;
  bool pending_space = false;
  for (const char c : raw) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isspace(byte)) {
      pending_space = !text.empty();
      continue;
    }
    if (byte >= 0x80 || std::iscntrl(byte)) return "";
    if (pending_space) text += ' ';
    pending_space = false;
    text += c;
    ++visible;
    letters += std::isalpha(byte) ? 1 : 0;
  }
  if (visible == 0 || static_cast<double>(letters) < 0.6 * static_cast<double>(visible)) return "";
  return text;
}

void read_fortune_file(const std::filesystem::path& file, std::vector<std::string>& entries) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot read this fortune file");
  std::string entry, line;
  const auto finish = [&] {
    if (std::string text = normalize_entry(entry); !text.empty()) entries.push_back(std::move(text));
    entry.clear();
  };
  while (std::getline(in, line)) {
    if (line == "%") {
      finish();
      continue;
    }
    entry += line;
    entry += '\n';
  }
  finish();
}

enum class CharClass { space, word, digit, other };
CharClass char_class(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (c == ' ') return CharClass::space;
  if (std::isalpha(byte) || c == '\'') return CharClass::word;
  if (std::isdigit(byte)) return CharClass::digit;
  return CharClass::other;
}

constexpr std::uint64_t pair_key(std::int64_t left, std::int64_t right) {
  return static_cast<std::uint64_t>(left) << 32 | static_cast<std::uint64_t>(right);
}

// Replaces each left-to-right occurrence of (left, right) in `symbols` by `merged`.
void merge_pair(std::vector<std::int32_t>& symbols, std::int32_t left, std::int32_t right, std::int32_t merged) {
  std::size_t out = 0;
  for (std::size_t k = 0; k < symbols.size(); ++k) {
    if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
      symbols[out++] = merged;
      ++k;
    } else {
      symbols[out++] = symbols[k];
    }
  }
  symbols.resize(out);
}

}  // namespace

std::vector<std::string> read_fortunes(const std::filesystem::path& path) {
  std::vector<std::string> entries;
  if (std::filesystem::is_directory(path)) {
    std::vector<std::filesystem::path> files;
    for (const auto& item : std::filesystem::directory_iterator(path))
      if (item.is_regular_file() && item.path().filename().string().find('.') == std::string::npos)
        files.push_back(item.path());
    std::sort(files.begin(), files.end());
    for (const auto& file : files) read_fortune_file(file, entries);
  } else if (std::filesystem::exists(path)) {
    read_fortune_file(path, entries);
  } else {
    throw std::runtime_error(path.string() + ": no such fortune file or folder");
  }
  if (entries.empty())
    throw std::runtime_error(path.string() + ": no fortune entries of plain ASCII text (entries end at a line \"%\")");
  return entries;
}

std::vector<std::string_view> pre_tokenize(std::string_view text) {
  std::vector<std::string_view> chunks;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = begin + (text[begin] == ' ' ? 1 : 0);
    if (end < text.size() && char_class(text[end]) != CharClass::space) {
      const CharClass kind = char_class(text[end]);
      while (end < text.size() && char_class(text[end]) == kind) ++end;
    }
    chunks.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return chunks;
}

BytePairTokenizer BytePairTokenizer::train(const std::vector<std::string>& texts, std::int64_t vocab) {
  std::map<std::string, std::int64_t, std::less<>> chunk_counts;
  for (const std::string& text : texts)
    for (const std::string_view chunk : pre_tokenize(text)) ++chunk_counts[std::string(chunk)];

  BytePairTokenizer tokenizer;
  tokenizer.tokens_.emplace_back();  // EOS
  std::array<bool, 256> seen{};
  for (const auto& [chunk, count] : chunk_counts)
    for (const char c : chunk) seen[static_cast<unsigned char>(c)] = true;
  for (std::size_t byte = 0; byte < seen.size(); ++byte) {
    if (!seen[byte]) continue;
    tokenizer.char_ids_[byte] = static_cast<std::int32_t>(tokenizer.tokens_.size());
    tokenizer.tokens_.emplace_back(1, static_cast<char>(byte));
  }
  if (vocab < tokenizer.vocab_size())
    throw std::invalid_argument("a vocabulary of " + std::to_string(vocab) + " tokens cannot hold EOS and the " +
                                std::to_string(tokenizer.vocab_size() - 1) + " characters of the text");

  std::vector<std::vector<std::int32_t>> words;
  std::vector<std::int64_t> frequency;
  for (const auto& [chunk, count] : chunk_counts) {
    std::vector<std::int32_t>& symbols = words.emplace_back();
    for (const char c : chunk) symbols.push_back(tokenizer.char_ids_[static_cast<unsigned char>(c)]);
    frequency.push_back(count);
  }
  std::unordered_map<std::uint64_t, std::int64_t> pair_counts;
  const auto count_pairs = [&](const std::vector<std::int32_t>& symbols, std::int64_t weight) {
    for (std::size_t k = 0; k + 1 < symbols.size(); ++k) pair_counts[pair_key(symbols[k], symbols[k + 1])] += weight;
  };
  for (std::size_t w = 0; w < words.size(); ++w) count_pairs(words[w], frequency[w]);

  while (tokenizer.vocab_size() < vocab) {
    std::uint64_t best = 0;
    std::int64_t best_count = 0;
    for (auto it = pair_counts.begin(); it != pair_counts.end();) {
      if (it->second == 0) {
        it = pair_counts.erase(it);
        continue;
      }
      if (it->second > best_count || (it->second == best_count && it->first < best)) {
        best = it->first;
        best_count = it->second;
      }
      ++it;
    }
    if (best_count < 2) break;
    const auto left = static_cast<std::int32_t>(best >> 32);
    const auto right = static_cast<std::int32_t>(best & 0xffffffffu);
    const auto merged = static_cast<std::int32_t>(tokenizer.vocab_size());
    tokenizer.tokens_.push_back(tokenizer.tokens_[static_cast<std::size_t>(left)] +
                                tokenizer.tokens_[static_cast<std::size_t>(right)]);
    tokenizer.merges_.emplace(best, merged);
    for (std::size_t w = 0; w < words.size(); ++w) {
      std::vector<std::int32_t>& symbols = words[w];
      bool holds = false;
      for (std::size_t k = 0; k + 1 < symbols.size() && !holds; ++k) holds = symbols[k] == left && symbols[k + 1] == right;
      if (!holds) continue;
      count_pairs(symbols, -frequency[w]);
      merge_pair(symbols, left, right, merged);
      count_pairs(symbols, frequency[w]);
    }
  }
  return tokenizer;
}

std::vector<std::int64_t> BytePairTokenizer::encode_chunk(std::string_view chunk) const {
  std::vector<std::int32_t> symbols;
  for (const char c : chunk) {
    const auto byte = static_cast<unsigned char>(c);
    if (char_ids_[byte] == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", byte);
      throw std::invalid_argument(std::string("the tokenizer never saw the character ") +
                                  (byte >= 0x20 && byte < 0x7f ? std::string{'\'', c, '\''} : std::string("byte ") + hex) +
                                  " in training (it knows the fortunes' printable ASCII)");
    }
    symbols.push_back(char_ids_[byte]);
  }
  // Merges in the order training learned them: the earliest-learned pair present, each time.
  while (symbols.size() > 1) {
    std::size_t at = symbols.size();
    std::int64_t first_merge = vocab_size();
    for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
      const auto merge = merges_.find(pair_key(symbols[k], symbols[k + 1]));
      if (merge != merges_.end() && merge->second < first_merge) {
        first_merge = merge->second;
        at = k;
      }
    }
    if (at == symbols.size()) break;
    merge_pair(symbols, symbols[at], symbols[at + 1], static_cast<std::int32_t>(first_merge));
  }
  return {symbols.begin(), symbols.end()};
}

std::vector<std::int64_t> BytePairTokenizer::encode(std::string_view text) const {
  std::vector<std::int64_t> ids;
  for (const std::string_view chunk : pre_tokenize(text)) {
    const std::vector<std::int64_t> part = encode_chunk(chunk);
    ids.insert(ids.end(), part.begin(), part.end());
  }
  return ids;
}

std::string BytePairTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string text;
  for (const std::int64_t id : ids) text += token_text(id);
  return text;
}

}  // namespace prefopt::sentiment
