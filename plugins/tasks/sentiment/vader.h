// VADER (Hutto & Gilbert 2014), the rule-based sentiment scorer, over its published lexicon: the
// sentiment task's gold judge. The rules follow vaderSentiment 3.3.2 (PyPI) exactly, quirks
// included (its "but" rule rescales the first score equal to each score in turn), because that
// package is the reference the tests compare against: negation within three words, boosters and
// dampeners ("very", "kind of"), ALL-CAPS emphasis beside lower-case words, "least", "no",
// idioms, the "but" shift, and "!" / "?" emphasis. Text is ASCII: the package's emoji step, which
// replaces emoji by their descriptions, has nothing to do on it.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

namespace prefopt::sentiment {

struct Polarity {
  double negative = 0, neutral = 0, positive = 0;  // shares of the text, summing to 1 (all 0 without words)
  double compound = 0;                             // in [-1, 1]: the summed valence, normalized
};

class Vader {
 public:
  using Lexicon = std::unordered_map<std::string, double>;  // lower-case word (or emoticon) -> valence

  // vader_lexicon.txt: "word<TAB>mean valence<TAB>...". Throws std::runtime_error naming the file
  // (and the line of a malformed entry).
  static Vader from_file(const std::filesystem::path& lexicon);
  explicit Vader(Lexicon lexicon) : lexicon_(std::move(lexicon)) {}

  // Unrounded; vaderSentiment rounds compound to 4 decimals and the shares to 3.
  Polarity polarity(std::string_view text) const;
  std::size_t lexicon_size() const { return lexicon_.size(); }

 private:
  Lexicon lexicon_;
};

}  // namespace prefopt::sentiment
