#include "models/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>
#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::models {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---- UTF-8 ---------------------------------------------------------------------------------

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

// The byte length of the UTF-8 character starting with `lead` (valid text assumed).
std::size_t char_length(unsigned char lead) { return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4; }

// Unicode's White_Space property (Rust's char::is_whitespace, which tokenizers strips by).
bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

char32_t code_point(std::string_view c) {
  const auto lead = static_cast<unsigned char>(c[0]);
  if (c.size() == 1) return lead;
  char32_t value = lead & (0xFF >> (c.size() + 1));
  for (std::size_t i = 1; i < c.size(); ++i) value = (value << 6) | (static_cast<unsigned char>(c[i]) & 0x3F);
  return value;
}

// The byte length of the UTF-8 character ending at text's end (valid text assumed).
std::size_t last_char_length(std::string_view text) {
  std::size_t n = 1;
  while (n < text.size() && (static_cast<unsigned char>(text[text.size() - n]) & 0xC0) == 0x80) ++n;
  return n;
}

std::vector<std::string> characters(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = std::min(char_length(static_cast<unsigned char>(text[i])), text.size() - i);
    out.emplace_back(text.substr(i, n));
    i += n;
  }
  return out;
}

// Bytes as text, each invalid UTF-8 sequence replaced by U+FFFD as Rust's from_utf8_lossy does
// (one replacement per maximal invalid prefix of a character).
std::string lossy_utf8(const std::string& bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size();) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    std::size_t need = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (lead < 0x80) need = 0;
    else if (lead >= 0xC2 && lead <= 0xDF) need = 1;
    else if (lead >= 0xE0 && lead <= 0xEF) need = 2, low = lead == 0xE0 ? 0xA0 : 0x80, high = lead == 0xED ? 0x9F : 0xBF;
    else if (lead >= 0xF0 && lead <= 0xF4) need = 3, low = lead == 0xF0 ? 0x90 : 0x80, high = lead == 0xF4 ? 0x8F : 0xBF;
    else {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    std::size_t j = 1;
    for (; j <= need && i + j < bytes.size(); ++j) {
      const auto c = static_cast<unsigned char>(bytes[i + j]);
      if (c < (j == 1 ? low : 0x80) || c > (j == 1 ? high : 0xBF)) break;
    }
    if (j == need + 1) out.append(bytes, i, need + 1);
    else out += "\xEF\xBF\xBD";
    i += j == need + 1 ? need + 1 : j;
  }
  return out;
}

// GPT-2's reversible map of bytes to printable characters: printable Latin-1 bytes map to
// themselves, the others to U+0100 onwards, in byte order.
const std::array<std::string, 256>& byte_characters() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = utf8(printable ? static_cast<char32_t>(b) : next++);
    }
    return t;
  }();
  return table;
}

const std::unordered_map<std::string, unsigned char>& character_bytes() {
  static const std::unordered_map<std::string, unsigned char> table = [] {
    std::unordered_map<std::string, unsigned char> t;
    for (int b = 0; b < 256; ++b) t[byte_characters()[b]] = static_cast<unsigned char>(b);
    return t;
  }();
  return table;
}

std::string to_byte_characters(std::string_view text) {
  std::string out;
  for (const char c : text) out += byte_characters()[static_cast<unsigned char>(c)];
  return out;
}

// ---- Regular expressions (PCRE2, as Unicode-aware as the Oniguruma patterns tokenizers uses) --

class Regex {
 public:
  Regex(const std::string& pattern, bool literal, const std::string& where) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &error, &offset,
                              nullptr));
    if (!code_) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      throw ConfigError(fmt::format("{}: pattern {} does not compile at offset {}: {}", where, json(pattern).dump(),
                                    offset, reinterpret_cast<const char*>(message.data())));
    }
  }
  // [begin, end) of each non-overlapping match, left to right.
  std::vector<std::pair<std::size_t, std::size_t>> matches(std::string_view text) const {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), pcre2_match_data_free);
    std::size_t start = 0;
    while (start <= text.size()) {
      const int found = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                                    PCRE2_NO_UTF_CHECK, data.get(), nullptr);
      if (found < 0) break;
      const PCRE2_SIZE* span = pcre2_get_ovector_pointer(data.get());
      if (span[1] == span[0]) {  // an empty match: skip a character
        if (span[0] >= text.size()) break;
        start = span[0] + char_length(static_cast<unsigned char>(text[span[0]]));
        continue;
      }
      out.emplace_back(span[0], span[1]);
      start = span[1];
    }
    return out;
  }

 private:
  struct Free {
    void operator()(pcre2_code* code) const { pcre2_code_free(code); }
  };
  std::unique_ptr<pcre2_code, Free> code_;
};

// GPT-2's pre-tokenizer pattern (ByteLevel with use_regex).
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

using Pieces = std::vector<std::string>;

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next };

Pieces split(const std::string& text, const Regex& regex, SplitBehavior behavior) {
  Pieces out;
  std::size_t at = 0;
  std::string pending;  // MergedWithNext: a match waiting for what follows
  auto emit = [&](std::string piece) {
    if (!piece.empty()) out.push_back(std::move(piece));
  };
  for (const auto& [begin, end] : regex.matches(text)) {
    const std::string before = text.substr(at, begin - at), match = text.substr(begin, end - begin);
    switch (behavior) {
      case SplitBehavior::isolated: emit(before), emit(match); break;
      case SplitBehavior::removed: emit(before); break;
      case SplitBehavior::merged_with_previous: emit(before + match); break;
      case SplitBehavior::merged_with_next: emit(pending + before), pending = match; break;
    }
    at = end;
  }
  emit(pending + text.substr(at));
  return out;
}

// `text` with every match of `regex` replaced by `content`.
std::string replace_all(const std::string& text, const Regex& regex, const std::string& content) {
  std::string out;
  std::size_t at = 0;
  for (const auto& [begin, end] : regex.matches(text)) out += text.substr(at, begin - at) + content, at = end;
  return out + text.substr(at);
}

// ---- Pipeline components -------------------------------------------------------------------

using Step = std::function<Pieces(const Pieces&)>;  // a pre-tokenizer: pieces in, finer pieces out
using Transform = std::function<std::string(const std::string&)>;  // a normalizer

class Reader {
 public:
  explicit Reader(fs::path file) : file_(std::move(file)) {}
  ConfigError error(const std::string& where, const std::string& what) const {
    return ConfigError(fmt::format("{}: {}: {}", file_.string(), where, what));
  }
  std::string type(const json& component, const std::string& where) const {
    if (!component.is_object() || !component.contains("type") || !component["type"].is_string())
      throw error(where, "has no \"type\"");
    return component["type"].get<std::string>();
  }
  ConfigError unsupported(const std::string& where, const std::string& type, const std::vector<std::string>& known) const {
    return error(where, fmt::format("type '{}' is not supported (supported: {}){}", type, join(known, ", "),
                                    did_you_mean(type, known)));
  }
  // A Split / Replace pattern: {"Regex": "..."} or {"String": "..."}.
  Regex pattern(const json& value, const std::string& where) const {
    if (value.is_object() && value.contains("Regex") && value["Regex"].is_string())
      return Regex(value["Regex"].get<std::string>(), false, fmt::format("{}: {}", file_.string(), where));
    if (value.is_object() && value.contains("String") && value["String"].is_string())
      return Regex(value["String"].get<std::string>(), true, fmt::format("{}: {}", file_.string(), where));
    throw error(where, "pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
  }

 private:
  fs::path file_;
};

std::string icu_normalize(const std::string& text, const icu::Normalizer2* normalizer) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = normalizer->normalize(icu::UnicodeString::fromUTF8(text), status);
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

Transform read_normalizer(const Reader& reader, const json& n, const std::string& where) {
  const std::string type = reader.type(n, where);
  UErrorCode status = U_ZERO_ERROR;
  if (type == "NFC") return [f = icu::Normalizer2::getNFCInstance(status)](const std::string& s) { return icu_normalize(s, f); };
  if (type == "NFD") return [f = icu::Normalizer2::getNFDInstance(status)](const std::string& s) { return icu_normalize(s, f); };
  if (type == "NFKC") return [f = icu::Normalizer2::getNFKCInstance(status)](const std::string& s) { return icu_normalize(s, f); };
  if (type == "NFKD") return [f = icu::Normalizer2::getNFKDInstance(status)](const std::string& s) { return icu_normalize(s, f); };
  if (type == "Lowercase")
    return [](const std::string& s) {
      std::string out;
      icu::UnicodeString::fromUTF8(s).toLower(icu::Locale::getRoot()).toUTF8String(out);
      return out;
    };
  if (type == "Prepend") {
    const std::string prefix = n.value("prepend", "");
    return [prefix](const std::string& s) { return s.empty() ? s : prefix + s; };
  }
  if (type == "Replace") {
    auto regex = std::make_shared<Regex>(reader.pattern(n["pattern"], where));
    const std::string content = n.value("content", "");
    return [regex, content](const std::string& s) { return replace_all(s, *regex, content); };
  }
  if (type == "Sequence") {
    std::vector<Transform> steps;
    for (std::size_t i = 0; i < n.value("normalizers", json::array()).size(); ++i)
      steps.push_back(read_normalizer(reader, n["normalizers"][i], fmt::format("{}.normalizers[{}]", where, i)));
    return [steps](const std::string& s) {
      std::string out = s;
      for (const Transform& step : steps) out = step(out);
      return out;
    };
  }
  throw reader.unsupported(where, type, {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Prepend", "Replace", "Sequence"});
}

// Each piece through `f`, the results concatenated.
Step each(std::function<Pieces(const std::string&)> f) {
  return [f = std::move(f)](const Pieces& pieces) {
    Pieces out;
    for (const std::string& piece : pieces)
      for (std::string& part : f(piece)) out.push_back(std::move(part));
    return out;
  };
}

Step read_pre_tokenizer(const Reader& reader, const json& p, const std::string& where, bool& byte_level) {
  const std::string type = reader.type(p, where);
  if (type == "ByteLevel") {
    byte_level = true;
    const bool prefix = p.value("add_prefix_space", false), use_regex = p.value("use_regex", true);
    auto regex = std::make_shared<Regex>(kGpt2Pattern, false, where);
    return each([=](const std::string& piece) {
      const std::string text = prefix && !piece.starts_with(' ') ? " " + piece : piece;
      Pieces parts = use_regex ? split(text, *regex, SplitBehavior::isolated) : Pieces{text};
      for (std::string& part : parts) part = to_byte_characters(part);
      return parts;
    });
  }
  if (type == "Split") {
    if (p.value("invert", false)) throw reader.error(where, "an inverted Split is not supported");
    static const std::map<std::string, SplitBehavior> kBehaviors = {
        {"Isolated", SplitBehavior::isolated}, {"Removed", SplitBehavior::removed},
        {"MergedWithPrevious", SplitBehavior::merged_with_previous}, {"MergedWithNext", SplitBehavior::merged_with_next}};
    const std::string behavior = p.value("behavior", "");
    if (!kBehaviors.contains(behavior)) {
      std::vector<std::string> known;
      for (const auto& [name, value] : kBehaviors) known.push_back(name);
      throw reader.error(where + ".behavior", fmt::format("'{}' is not supported (supported: {})", behavior, join(known, ", ")));
    }
    auto regex = std::make_shared<Regex>(reader.pattern(p["pattern"], where));
    return each([regex, b = kBehaviors.at(behavior)](const std::string& piece) { return split(piece, *regex, b); });
  }
  if (type == "Digits") {
    auto regex = std::make_shared<Regex>(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+", false, where);
    return each([regex](const std::string& piece) { return split(piece, *regex, SplitBehavior::isolated); });
  }
  if (type == "Sequence") {
    std::vector<Step> steps;
    for (std::size_t i = 0; i < p.value("pretokenizers", json::array()).size(); ++i)
      steps.push_back(read_pre_tokenizer(reader, p["pretokenizers"][i], fmt::format("{}.pretokenizers[{}]", where, i), byte_level));
    return [steps](const Pieces& pieces) {
      Pieces out = pieces;
      for (const Step& step : steps) out = step(out);
      return out;
    };
  }
  throw reader.unsupported(where, type, {"ByteLevel", "Split", "Digits", "Sequence"});
}

}  // namespace

// ---- The tokenizer ---------------------------------------------------------------------------

struct Tokenizer::Impl {
  struct Added {
    std::string content;
    std::int64_t id;
    bool special, normalized, lstrip, rstrip;
  };
  struct Merge {
    std::int64_t rank, id;
  };

  std::unordered_map<std::string, std::int64_t> vocab;
  std::unordered_map<std::int64_t, std::string> tokens;  // id -> token, the added ones included
  std::unordered_map<std::uint64_t, Merge> merges;         // (left id << 32 | right id) -> rank, merged id
  std::vector<Added> added;
  std::optional<std::int64_t> unk;
  bool byte_fallback = false, ignore_merges = false, byte_level = false;
  Transform normalizer;
  Step pre_tokenizer;
  std::vector<std::vector<std::int64_t>> prefix_ids, suffix_ids;  // post-processor: around the sequence
  std::function<std::string(const std::vector<std::string>&)> decoder;
  mutable std::unordered_map<std::string, std::vector<std::int64_t>> cache;

  static std::uint64_t pair(std::int64_t a, std::int64_t b) {
    return (static_cast<std::uint64_t>(a) << 32) | static_cast<std::uint32_t>(b);
  }

  // BPE of one pre-tokenized word: its characters, merged by rank, lowest first, leftmost first.
  void bpe(const std::string& word, std::vector<std::int64_t>& out) const {
    if (const auto hit = cache.find(word); hit != cache.end()) {
      out.insert(out.end(), hit->second.begin(), hit->second.end());
      return;
    }
    std::vector<std::int64_t> symbols;
    if (const auto whole = vocab.find(word); ignore_merges && whole != vocab.end()) {
      symbols.push_back(whole->second);
    } else {
      for (const std::string& c : characters(word)) {
        if (const auto it = vocab.find(c); it != vocab.end()) {
          symbols.push_back(it->second);
        } else if (byte_fallback) {
          for (const char byte : c) symbols.push_back(vocab.at(fmt::format("<0x{:02X}>", static_cast<unsigned char>(byte))));
        } else if (unk) {
          symbols.push_back(*unk);
        }  // else dropped, as tokenizers drops it
      }
      while (symbols.size() > 1) {
        std::size_t best = symbols.size();
        Merge chosen{std::numeric_limits<std::int64_t>::max(), 0};
        for (std::size_t i = 0; i + 1 < symbols.size(); ++i)
          if (const auto m = merges.find(pair(symbols[i], symbols[i + 1])); m != merges.end() && m->second.rank < chosen.rank)
            chosen = m->second, best = i;
        if (best == symbols.size()) break;
        symbols[best] = chosen.id;
        symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
      }
    }
    out.insert(out.end(), symbols.begin(), symbols.end());
    cache.emplace(word, std::move(symbols));
  }

  // Splits `text` on the added tokens with `normalized` equal to `want`: (segment, id) in order,
  // id -1 for a segment of ordinary text. Leftmost match first, the longest at a position.
  std::vector<std::pair<std::string, std::int64_t>> split_added(const std::string& text, bool want) const {
    std::vector<std::pair<std::string, std::int64_t>> out;
    std::size_t at = 0;
    std::string segment;
    while (at < text.size()) {
      std::size_t best_position = std::string::npos;
      const Added* best = nullptr;
      for (const Added& token : added) {
        if (token.normalized != want || token.content.empty()) continue;
        const std::size_t found = text.find(token.content, at);
        if (found == std::string::npos) continue;
        if (found < best_position || (found == best_position && token.content.size() > best->content.size()))
          best_position = found, best = &token;
      }
      if (best == nullptr) break;
      std::string before = text.substr(at, best_position - at);
      std::size_t after = best_position + best->content.size();
      if (best->lstrip)
        while (!before.empty() && is_whitespace(code_point(std::string_view(before).substr(before.size() - last_char_length(before)))))
          before.resize(before.size() - last_char_length(before));
      if (best->rstrip)
        while (after < text.size()) {
          const std::size_t n = std::min(char_length(static_cast<unsigned char>(text[after])), text.size() - after);
          if (!is_whitespace(code_point(std::string_view(text).substr(after, n)))) break;
          after += n;
        }
      if (!before.empty()) out.emplace_back(before, -1);
      out.emplace_back(best->content, best->id);
      at = after;
    }
    if (at < text.size()) out.emplace_back(text.substr(at), -1);
    return out;
  }
};

Tokenizer::Tokenizer(const fs::path& file) : impl_(std::make_unique<Impl>()) {
  const Reader reader(file);
  std::ifstream in(file);
  if (!in) throw ConfigError(fmt::format("{}: cannot read it", file.string()));
  const json root = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object() || !root.contains("model")) throw ConfigError(fmt::format("{}: not a tokenizer.json", file.string()));
  Impl& t = *impl_;

  const json& model = root["model"];
  const std::string model_type = model.value("type", "BPE");
  if (model_type != "BPE") throw reader.unsupported("model", model_type, {"BPE"});
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && !model[key].is_null() && model[key] != "")
      throw reader.error(fmt::format("model.{}", key), "is not supported");
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    throw reader.error("model.dropout", "BPE dropout is not supported");
  if (!model.contains("vocab") || !model["vocab"].is_object()) throw reader.error("model.vocab", "is missing");
  for (const auto& [token, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > 0xFFFFFFFF)
      throw reader.error("model.vocab", fmt::format("token {} has id {}", json(token).dump(), id.dump()));
    t.vocab[token] = id.get<std::int64_t>();
    t.tokens[id.get<std::int64_t>()] = token;
  }
  t.byte_fallback = model.value("byte_fallback", false);
  t.ignore_merges = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto it = t.vocab.find(model["unk_token"].get<std::string>());
    if (it == t.vocab.end()) throw reader.error("model.unk_token", "is not in the vocabulary");
    t.unk = it->second;
  }
  const json merges = model.value("merges", json::array());
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {  // "a b" (tokenizers before 0.20)
      const std::string text = m.get<std::string>();
      const std::size_t space = text.find(' ', 1);
      if (space == std::string::npos) throw reader.error(fmt::format("model.merges[{}]", rank), "is not \"left right\"");
      left = text.substr(0, space), right = text.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>(), right = m[1].get<std::string>();
    } else {
      throw reader.error(fmt::format("model.merges[{}]", rank), "is neither \"left right\" nor [left, right]");
    }
    const auto a = t.vocab.find(left), b = t.vocab.find(right), merged = t.vocab.find(left + right);
    if (a == t.vocab.end() || b == t.vocab.end() || merged == t.vocab.end())
      throw reader.error(fmt::format("model.merges[{}]", rank),
                         fmt::format("merges {} and {}, which are not both in the vocabulary with their merge",
                                     json(left).dump(), json(right).dump()));
    t.merges.try_emplace(Impl::pair(a->second, b->second), Impl::Merge{static_cast<std::int64_t>(rank), merged->second});
  }

  for (std::size_t i = 0; i < root.value("added_tokens", json::array()).size(); ++i) {
    const json& a = root["added_tokens"][i];
    const std::string where = fmt::format("added_tokens[{}]", i);
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string())
      throw reader.error(where, "needs an integer id and a string content");
    if (a.value("single_word", false)) throw reader.error(where, "single_word added tokens are not supported");
    Impl::Added token{a["content"].get<std::string>(), a["id"].get<std::int64_t>(), a.value("special", false),
                      a.value("normalized", false), a.value("lstrip", false), a.value("rstrip", false)};
    t.tokens[token.id] = token.content;
    t.added.push_back(std::move(token));
  }

  if (root.contains("normalizer") && !root["normalizer"].is_null())
    t.normalizer = read_normalizer(reader, root["normalizer"], "normalizer");
  if (root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null())
    t.pre_tokenizer = read_pre_tokenizer(reader, root["pre_tokenizer"], "pre_tokenizer", t.byte_level);

  if (root.contains("post_processor") && !root["post_processor"].is_null()) {
    const json& p = root["post_processor"];
    const std::string type = reader.type(p, "post_processor");
    auto special = [&](const json& pair, const std::string& where) {  // ["[CLS]", 101]
      if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer())
        throw reader.error(where, "is not [token, id]");
      return std::vector<std::int64_t>{pair[1].get<std::int64_t>()};
    };
    if (type == "TemplateProcessing") {
      bool seen_sequence = false;
      for (const json& item : p.value("single", json::array())) {
        if (item.contains("Sequence")) {
          seen_sequence = true;
          continue;
        }
        const std::string id = item.contains("SpecialToken") ? item["SpecialToken"].value("id", "") : "";
        const json& specials = p.value("special_tokens", json::object());
        if (!specials.contains(id) || !specials[id].contains("ids"))
          throw reader.error("post_processor.single", fmt::format("names special token '{}' that special_tokens lacks", id));
        (seen_sequence ? t.suffix_ids : t.prefix_ids).push_back(specials[id]["ids"].get<std::vector<std::int64_t>>());
      }
    } else if (type == "BertProcessing" || type == "RobertaProcessing") {
      t.prefix_ids.push_back(special(p["cls"], "post_processor.cls"));
      t.suffix_ids.push_back(special(p["sep"], "post_processor.sep"));
    } else if (type != "ByteLevel") {  // ByteLevel only moves offsets
      throw reader.unsupported("post_processor", type, {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel"});
    }
  }

  // Decoders: each maps the list of token strings to a new list; the text is their concatenation.
  using Decode = std::function<std::vector<std::string>(std::vector<std::string>)>;
  std::function<Decode(const json&, const std::string&)> read_decoder = [&](const json& d, const std::string& where) -> Decode {
    const std::string type = reader.type(d, where);
    if (type == "ByteLevel")
      return [](std::vector<std::string> parts) {
        std::string bytes;
        for (const std::string& part : parts) {
          std::string mapped;
          bool all = true;
          for (const std::string& c : characters(part)) {
            const auto it = character_bytes().find(c);
            if (it == character_bytes().end()) {
              all = false;
              break;
            }
            mapped += static_cast<char>(it->second);
          }
          bytes += all ? mapped : part;
        }
        return std::vector<std::string>{lossy_utf8(bytes)};
      };
    if (type == "ByteFallback")
      return [](std::vector<std::string> parts) {
        std::vector<std::string> out;
        std::string bytes;
        for (const std::string& part : parts) {
          if (part.size() == 6 && part.starts_with("<0x") && part.ends_with(">")) {
            bytes += static_cast<char>(std::stoi(part.substr(3, 2), nullptr, 16));
            continue;
          }
          if (!bytes.empty()) out.push_back(lossy_utf8(bytes)), bytes.clear();
          out.push_back(part);
        }
        if (!bytes.empty()) out.push_back(lossy_utf8(bytes));
        return out;
      };
    if (type == "Fuse")
      return [](std::vector<std::string> parts) {
        std::string all;
        for (const std::string& part : parts) all += part;
        return std::vector<std::string>{all};
      };
    if (type == "Replace") {
      auto regex = std::make_shared<Regex>(reader.pattern(d["pattern"], where));
      const std::string content = d.value("content", "");
      return [regex, content](std::vector<std::string> parts) {
        for (std::string& s : parts) s = replace_all(s, *regex, content);
        return parts;
      };
    }
    if (type == "Strip") {
      const std::string content = d.value("content", " ");
      const int start = d.value("start", 0), stop = d.value("stop", 0);
      return [content, start, stop](std::vector<std::string> parts) {
        for (std::string& s : parts) {
          for (int i = 0; i < start && s.starts_with(content); ++i) s.erase(0, content.size());
          for (int i = 0; i < stop && s.ends_with(content); ++i) s.erase(s.size() - content.size());
        }
        return parts;
      };
    }
    if (type == "Sequence") {
      std::vector<Decode> steps;
      for (std::size_t i = 0; i < d.value("decoders", json::array()).size(); ++i)
        steps.push_back(read_decoder(d["decoders"][i], fmt::format("{}.decoders[{}]", where, i)));
      return [steps](std::vector<std::string> parts) {
        for (const Decode& step : steps) parts = step(std::move(parts));
        return parts;
      };
    }
    throw reader.unsupported(where, type, {"ByteLevel", "ByteFallback", "Fuse", "Replace", "Strip", "Sequence"});
  };
  const Decode decode = root.contains("decoder") && !root["decoder"].is_null()
                            ? read_decoder(root["decoder"], "decoder")
                            : Decode([](std::vector<std::string> parts) { return parts; });
  t.decoder = [decode](const std::vector<std::string>& parts) {
    std::string text;
    for (const std::string& part : decode(parts)) text += part;
    return text;
  };
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<std::int64_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& t = *impl_;
  if (const std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
    throw ConfigError(fmt::format("the text is not UTF-8 (byte {})", bad));

  std::vector<std::int64_t> ids;
  if (add_special_tokens)
    for (const auto& group : t.prefix_ids) ids.insert(ids.end(), group.begin(), group.end());
  for (const auto& [raw, raw_id] : t.split_added(std::string(text), false)) {
    if (raw_id >= 0) {
      ids.push_back(raw_id);
      continue;
    }
    const std::string normalized = t.normalizer ? t.normalizer(raw) : raw;
    for (const auto& [segment, id] : t.split_added(normalized, true)) {
      if (id >= 0) {
        ids.push_back(id);
        continue;
      }
      const Pieces words = t.pre_tokenizer ? t.pre_tokenizer(Pieces{segment}) : Pieces{segment};
      for (const std::string& word : words) t.bpe(word, ids);
    }
  }
  if (add_special_tokens)
    for (const auto& group : t.suffix_ids) ids.insert(ids.end(), group.begin(), group.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<std::int64_t>& ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;

  std::vector<std::string> parts;
  for (const std::int64_t id : ids) {
    const auto it = t.tokens.find(id);
    if (it == t.tokens.end()) continue;  // as tokenizers does: a model's vocabulary may be padded past the tokenizer's
    const auto added = std::find_if(t.added.begin(), t.added.end(), [&](const Impl::Added& a) { return a.id == id; });
    if (skip_special_tokens && added != t.added.end() && added->special) continue;
    parts.push_back(it->second);
  }
  return t.decoder(parts);
}

std::int64_t Tokenizer::vocab_size() const {
  std::int64_t largest = -1;
  for (const auto& [id, token] : impl_->tokens) largest = std::max(largest, id);
  return largest + 1;
}

std::optional<std::int64_t> Tokenizer::token_id(const std::string& token) const {

  for (const Impl::Added& a : impl_->added)
    if (a.content == token) return a.id;
  if (const auto it = impl_->vocab.find(token); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::string Tokenizer::describe() const {
  return fmt::format("{}BPE{}, {} tokens, {} added", impl_->byte_level ? "byte-level " : "",
                     impl_->byte_fallback ? " with byte fallback" : "", impl_->vocab.size(), impl_->added.size());
}

std::optional<Tokenizer> find_tokenizer(const fs::path& folder) {
  if (!fs::exists(folder / "tokenizer.json")) return std::nullopt;
  return Tokenizer(folder / "tokenizer.json");
}

}  // namespace prefopt::models
