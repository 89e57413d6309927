#include "vader.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace prefopt::sentiment {
namespace {

// The package's constants: the empirically derived increments of Hutto & Gilbert.
constexpr double kBoost = 0.293;        // B_INCR; B_DECR is its negative
constexpr double kCapsBoost = 0.733;    // C_INCR
constexpr double kNegation = -0.74;     // N_SCALAR
constexpr double kNormalizer = 15;      // compound = s / sqrt(s² + 15)

const std::unordered_map<std::string_view, double>& boosters() {
  static const std::unordered_map<std::string_view, double> table = [] {
    std::unordered_map<std::string_view, double> t;
    for (const char* word :
         {"absolutely", "amazingly", "awfully", "completely", "considerable", "considerably", "decidedly", "deeply",
          "effing", "enormous", "enormously", "entirely", "especially", "exceptional", "exceptionally", "extreme",
          "extremely", "fabulously", "flipping", "flippin", "frackin", "fracking", "fricking", "frickin", "frigging",
          "friggin", "fully", "fuckin", "fucking", "fuggin", "fugging", "greatly", "hella", "highly", "hugely",
          "incredible", "incredibly", "intensely", "major", "majorly", "more", "most", "particularly", "purely",
          "quite", "really", "remarkably", "so", "substantially", "thoroughly", "total", "totally", "tremendous",
          "tremendously", "uber", "unbelievably", "unusually", "utter", "utterly", "very"})
      t.emplace(word, kBoost);
    for (const char* word :
         {"almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of", "less", "little",
          "marginal", "marginally", "occasional", "occasionally", "partly", "scarce", "scarcely", "slight",
          "slightly", "somewhat", "sort of", "sorta", "sortof", "sort-of"})
      t.emplace(word, -kBoost);
    return t;
  }();
  return table;
}

bool is_negation(std::string_view lower) {
  static constexpr std::array<std::string_view, 59> kWords = {
      "aint",    "arent",    "cannot",  "cant",     "couldnt",   "darent",   "didnt",    "doesnt",   "ain't",
      "aren't",  "can't",    "couldn't", "daren't", "didn't",    "doesn't",  "dont",     "hadnt",    "hasnt",
      "havent",  "isnt",     "mightnt", "mustnt",   "neither",   "don't",    "hadn't",   "hasn't",   "haven't",
      "isn't",   "mightn't", "mustn't", "neednt",   "needn't",   "never",    "none",     "nope",     "nor",
      "not",     "nothing",  "nowhere", "oughtnt",  "shant",     "shouldnt", "uhuh",     "wasnt",    "werent",
      "oughtn't", "shan't",  "shouldn't", "uh-uh",  "wasn't",    "weren't",  "without",  "wont",     "wouldnt",
      "won't",   "wouldn't", "rarely",  "seldom",   "despite"};
  return std::find(kWords.begin(), kWords.end(), lower) != kWords.end() ||
         lower.find("n't") != std::string_view::npos;
}

const std::unordered_map<std::string_view, double>& special_cases() {
  static const std::unordered_map<std::string_view, double> table = {
      {"the shit", 3},       {"the bomb", 3},   {"bad ass", 1.5},        {"badass", 1.5},
      {"bus stop", 0.0},     {"yeah right", -2}, {"kiss of death", -1.5}, {"to die for", 3},
      {"beating heart", 3.5}};
  return table;
}

// Python's str.isupper() on ASCII: some cased letter, none lower-case.
bool is_upper(std::string_view word) {
  bool upper = false;
  for (const char c : word) {
    if (std::islower(static_cast<unsigned char>(c))) return false;
    upper = upper || std::isupper(static_cast<unsigned char>(c));
  }
  return upper;
}

std::string lower(std::string_view word) {
  std::string out(word);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trailing and leading punctuation off a word, unless that leaves two characters or fewer (an
// emoticon such as ":)" is kept whole).
std::string strip_punctuation(std::string_view token) {
  const auto punctuation = [](char c) { return std::ispunct(static_cast<unsigned char>(c)) != 0; };
  std::size_t begin = 0, end = token.size();
  while (begin < end && punctuation(token[begin])) ++begin;
  while (end > begin && punctuation(token[end - 1])) --end;
  if (end - begin <= 2) return std::string(token);
  return std::string(token.substr(begin, end - begin));
}

std::string join(std::initializer_list<std::string_view> words) {
  std::string out;
  for (const std::string_view word : words) {
    if (!out.empty()) out += ' ';
    out += word;
  }
  return out;
}

// One text's words and the rules that read them; `score(i)` is the valence of word i in context.
class Sentence {
 public:
  Sentence(std::string_view text, const Vader::Lexicon& lexicon) : lexicon_(lexicon) {
    std::size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      std::size_t j = i;
      while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
      if (j > i) words_.push_back(strip_punctuation(text.substr(i, j - i)));
      i = j;
    }
    for (const std::string& word : words_) lower_.push_back(lower(word));
    const auto caps = std::count_if(words_.begin(), words_.end(), [](const std::string& w) { return is_upper(w); });
    caps_differ_ = caps > 0 && caps < static_cast<std::ptrdiff_t>(words_.size());
  }

  std::size_t size() const { return words_.size(); }
  const std::string& lower_word(std::size_t i) const { return lower_[i]; }

  double score(std::size_t i) const {
    const std::size_t n = words_.size();
    if (boosters().contains(lower_[i])) return 0;
    if (i + 1 < n && lower_[i] == "kind" && lower_[i + 1] == "of") return 0;
    const auto entry = lexicon_.find(lower_[i]);
    if (entry == lexicon_.end()) return 0;

    double valence = entry->second;
    if (lower_[i] == "no" && i + 1 != n && known(i + 1)) valence = 0.0;
    if ((i > 0 && lower_[i - 1] == "no") || (i > 1 && lower_[i - 2] == "no") ||
        (i > 2 && lower_[i - 3] == "no" && (lower_[i - 1] == "or" || lower_[i - 1] == "nor")))
      valence = entry->second * kNegation;
    if (is_upper(words_[i]) && caps_differ_) valence += valence > 0 ? kCapsBoost : -kCapsBoost;
    for (std::size_t back = 0; back < 3; ++back) {
      if (i <= back || known(i - back - 1)) continue;
      double boost = booster_scalar(i - back - 1, valence);
      if (back == 1 && boost != 0) boost *= 0.95;
      if (back == 2 && boost != 0) boost *= 0.9;
      valence += boost;
      valence = negation(valence, back, i);
      if (back == 2) valence = idioms(valence, i);
    }
    return least(valence, i);
  }

 private:
  bool known(std::size_t i) const { return lexicon_.contains(lower_[i]); }

  double booster_scalar(std::size_t j, double valence) const {
    const auto entry = boosters().find(lower_[j]);
    if (entry == boosters().end()) return 0;
    double scalar = valence < 0 ? -entry->second : entry->second;
    if (is_upper(words_[j]) && caps_differ_) scalar += valence > 0 ? kCapsBoost : -kCapsBoost;
    return scalar;
  }

  // Negation `back + 1` words before word i; "never so/this" intensifies and "without doubt" is
  // no negation. The three-back test reads as the package's operator precedence does: "so" or
  // "this" just before the word intensifies whatever precedes it.
  double negation(double valence, std::size_t back, std::size_t i) const {
    const auto& w = lower_;
    const auto so_or_this = [](const std::string& word) { return word == "so" || word == "this"; };
    if (back == 0) return is_negation(w[i - 1]) ? valence * kNegation : valence;
    if (back == 1) {
      if (w[i - 2] == "never" && so_or_this(w[i - 1])) return valence * 1.25;
      if (w[i - 2] == "without" && w[i - 1] == "doubt") return valence;
      return is_negation(w[i - 2]) ? valence * kNegation : valence;
    }
    if ((w[i - 3] == "never" && so_or_this(w[i - 2])) || so_or_this(w[i - 1])) return valence * 1.25;
    if (w[i - 3] == "without" && (w[i - 2] == "doubt" || w[i - 1] == "doubt")) return valence;
    return is_negation(w[i - 3]) ? valence * kNegation : valence;
  }

  // Special-case phrases around word i (i >= 3) replace its valence; multi-word boosters before it
  // add to it.
  double idioms(double valence, std::size_t i) const {
    const auto& w = lower_;
    const std::string three_two_one = join({w[i - 3], w[i - 2], w[i - 1]});
    const std::string three_two = join({w[i - 3], w[i - 2]});
    const std::string two_one = join({w[i - 2], w[i - 1]});
    for (const std::string& phrase : {join({w[i - 1], w[i]}), join({w[i - 2], w[i - 1], w[i]}), two_one,
                                      three_two_one, three_two}) {
      if (const auto entry = special_cases().find(phrase); entry != special_cases().end()) {
        valence = entry->second;
        break;
      }
    }
    if (i + 1 < w.size())
      if (const auto entry = special_cases().find(join({w[i], w[i + 1]})); entry != special_cases().end())
        valence = entry->second;
    if (i + 2 < w.size())
      if (const auto entry = special_cases().find(join({w[i], w[i + 1], w[i + 2]})); entry != special_cases().end())
        valence = entry->second;
    for (const std::string& phrase : {three_two_one, three_two, two_one})
      if (const auto entry = boosters().find(phrase); entry != boosters().end()) valence += entry->second;
    return valence;
  }

  // "least" before a word negates it, except in "at least" and "very least".
  double least(double valence, std::size_t i) const {
    if (i > 1 && !known(i - 1) && lower_[i - 1] == "least") {
      if (lower_[i - 2] != "at" && lower_[i - 2] != "very") valence *= kNegation;
    } else if (i > 0 && !known(i - 1) && lower_[i - 1] == "least") {
      valence *= kNegation;
    }
    return valence;
  }

  const Vader::Lexicon& lexicon_;
  std::vector<std::string> words_, lower_;
  bool caps_differ_ = false;  // some words, not all, are ALL CAPS
};

// Scores before the first "but" halve and after it grow by half. As in the package, each pass
// rescales the first score equal to the one at the pass's index, which differs from rescaling
// score k when equal scores sit on both sides of the "but".
void shift_at_but(const Sentence& sentence, std::vector<double>& scores) {
  std::size_t but = 0;
  while (but < sentence.size() && sentence.lower_word(but) != "but") ++but;
  if (but == sentence.size()) return;
  for (std::size_t k = 0; k < scores.size(); ++k) {
    const double score = scores[k];
    const auto first = static_cast<std::size_t>(std::find(scores.begin(), scores.end(), score) - scores.begin());
    if (first < but) scores[first] = score * 0.5;
    if (first > but) scores[first] = score * 1.5;
  }
}

double punctuation_emphasis(std::string_view text) {
  const auto exclamations = std::min<std::ptrdiff_t>(std::count(text.begin(), text.end(), '!'), 4);
  const auto questions = std::count(text.begin(), text.end(), '?');
  const double question_emphasis = questions <= 1 ? 0.0 : questions <= 3 ? static_cast<double>(questions) * 0.18 : 0.96;
  return static_cast<double>(exclamations) * 0.292 + question_emphasis;
}

}  // namespace

Vader Vader::from_file(const std::filesystem::path& lexicon) {
  std::ifstream in(lexicon);
  if (!in) throw std::runtime_error(lexicon.string() + ": cannot read VADER's lexicon");
  Lexicon entries;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const auto tab = line.find('\t', first);
    const auto value_end = tab == std::string::npos ? tab : line.find_first_of("\t\r", tab + 1);
    double value = 0;
    const char* value_begin = tab == std::string::npos ? nullptr : line.data() + tab + 1;
    const char* value_last = value_end == std::string::npos ? line.data() + line.size() : line.data() + value_end;
    if (value_begin == nullptr || std::from_chars(value_begin, value_last, value).ec != std::errc{})
      throw std::runtime_error(lexicon.string() + ":" + std::to_string(number) +
                               ": expected \"word<TAB>valence<TAB>...\", got \"" + line.substr(0, 80) + "\"");
    entries.insert_or_assign(line.substr(first, tab - first), value);
  }
  if (entries.empty()) throw std::runtime_error(lexicon.string() + ": VADER's lexicon is empty");
  return Vader(std::move(entries));
}

Polarity Vader::polarity(std::string_view text) const {
  const Sentence sentence(text, lexicon_);
  if (sentence.size() == 0) return {};
  std::vector<double> scores(sentence.size());
  for (std::size_t i = 0; i < sentence.size(); ++i) scores[i] = sentence.score(i);
  shift_at_but(sentence, scores);

  const double emphasis = punctuation_emphasis(text);
  double sum = 0;
  for (const double s : scores) sum += s;
  if (sum > 0) sum += emphasis;
  if (sum < 0) sum -= emphasis;

  double positive = 0, negative = 0, neutral = 0;
  for (const double s : scores) {
    if (s > 0) positive += s + 1;  // + 1 and − 1 balance the neutral words, counted as 1 each
    if (s < 0) negative += s - 1;
    if (s == 0) neutral += 1;
  }
  if (positive > std::fabs(negative)) positive += emphasis;
  else if (positive < std::fabs(negative)) negative -= emphasis;
  const double total = positive + std::fabs(negative) + neutral;
  return {.negative = std::fabs(negative / total),
          .neutral = neutral / total,
          .positive = std::fabs(positive / total),
          .compound = std::clamp(sum / std::sqrt(sum * sum + kNormalizer), -1.0, 1.0)};
}

}  // namespace prefopt::sentiment
