#include "config/override.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <random>
#include <set>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::config {
namespace {

// One parsed element: a value, null, or a sweep (functions such as range() return sweeps).
using Item = OverrideValue;

constexpr std::string_view kUnquotedChars = "/-\\+.$%*@?|";
constexpr std::string_view kEscapable = "\\()[]{}:=, \t";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_id_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || static_cast<unsigned char>(c) >= 0x80;
}
bool is_id_char(char c) { return is_id_start(c) || is_digit(c) || c == '-'; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Fisher-Yates with mt19937_64 draws, so the order is the same with every standard library.
template <class T>
void seeded_shuffle(std::vector<T>& items, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng() % i]);
}

// Primitive tokens, after Hydra's lexer (OverrideLexer.g4, value mode).
enum class TokenType { whitespace, escape, interpolation, id, integer, floating, boolean, null, other };

struct Token {
  TokenType type;
  std::string text;  // escapes already resolved
};

class Parser {
 public:
  Parser(std::string_view full, std::size_t value_offset)
      : full_(full), text_(full.substr(value_offset)), offset_(value_offset) {}

  Item parse_value() {
    // Nothing after '=' but whitespace is the empty string, as in Hydra (`key= ` sets "").
    if (text_.find_first_not_of(" \t") == std::string_view::npos) return Node{std::string(), origin()};
    Item first = parse_element(",");
    skip_whitespace();
    if (at_end()) return first;
    if (peek() != ',') fail_trailing();
    Sweep sweep;
    sweep.values.push_back(as_node(std::move(first), "a sweep element"));
    while (!at_end() && peek() == ',') {
      ++pos_;
      sweep.values.push_back(as_node(parse_element(","), "a sweep element"));
      skip_whitespace();
    }
    if (!at_end()) fail_trailing();
    return sweep;
  }

 private:
  [[noreturn]] void fail(std::size_t at, const std::string& message) const {
    const std::size_t column = offset_ + std::min(at, text_.size());
    throw ConfigError(fmt::format("invalid override '{}': {}\n  {}\n  {}^", full_, message, full_,
                                  std::string(column, ' ')));
  }

  // Input left after a complete value. An unterminated quote is a lexer error, as in Hydra.
  [[noreturn]] void fail_trailing() {
    const char c = peek();
    if ((c == '\'' || c == '"') && text_.find(c, pos_ + 1) == std::string_view::npos)
      fail(pos_, fmt::format("token recognition error at: '{}'", c));
    fail(pos_, fmt::format("extraneous input '{}' expecting <EOF>", text_.substr(pos_)));
  }

  std::string origin() const { return "override '" + std::string(full_) + "'"; }
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }

  Node as_node(Item item, std::string_view what) const {
    if (auto* node = std::get_if<Node>(&item)) return std::move(*node);
    if (std::holds_alternative<Null>(item))
      fail(pos_, fmt::format("null cannot be {}: TOML has no null", what));
    fail(pos_, fmt::format("a sweep cannot be {}", what));
  }

  // element := list | dict | quoted | function | primitive. `stops` end an unquoted primitive.
  // Containers and function calls nest; a bound keeps a hostile override from exhausting the
  // stack (found by the override fuzzer).
  static constexpr int kMaxNesting = 64;
  struct Nesting {
    explicit Nesting(Parser& parser) : parser(parser) {
      if (++parser.depth_ > kMaxNesting)
        parser.fail(parser.pos_, fmt::format("values nest deeper than {} levels", kMaxNesting));
    }
    ~Nesting() { --parser.depth_; }
    Parser& parser;
  };

  Item parse_element(std::string_view stops) {
    const Nesting nesting(*this);
    const std::size_t before_whitespace = pos_;
    skip_whitespace();
    const std::size_t start = pos_;
    if (at_end() && start == before_whitespace) fail(pos_, no_viable_alternative(start));
    const char c = peek();
    if (c == '[') return parse_list();
    if (c == '{') return parse_dict();
    if (c == '\'' || c == '"') {
      Node quoted{parse_quoted(), origin()};
      skip_whitespace();
      if (!at_end() && stops.find(peek()) == std::string_view::npos && !is_closer(peek()))
        fail(pos_, fmt::format("extraneous input '{}'", text_.substr(pos_)));
      return quoted;
    }
    if (is_id_start(c)) {
      std::size_t end = pos_;
      while (end < text_.size() && is_id_char(text_[end])) ++end;
      std::size_t paren = end;
      while (paren < text_.size() && (text_[paren] == ' ' || text_[paren] == '\t')) ++paren;
      if (paren < text_.size() && text_[paren] == '(') {
        const std::string name(text_.substr(pos_, end - pos_));
        pos_ = paren + 1;
        return parse_function(name, start);
      }
    }
    pos_ = before_whitespace;  // the primitive lexer strips outer whitespace itself
    return parse_primitive(stops, start);
  }

  static bool is_closer(char c) { return c == ']' || c == '}' || c == ')'; }

  std::string no_viable_alternative(std::size_t start) const {
    std::size_t from = start > 0 ? start - 1 : 0;
    return fmt::format("no viable alternative at input '{}'", text_.substr(from, pos_ - from + 1));
  }

  // Hydra's quoted strings: a backslash escapes only the enclosing quote and the backslashes
  // right before one, so 'a\\' is a\ and 'it\'s' is it's; other backslashes are kept as written.
  std::string parse_quoted() {
    const char quote = peek();
    const std::size_t start = pos_++;
    std::string out;
    while (!at_end()) {
      const char c = text_[pos_++];
      if (c == quote) return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      std::size_t run = 1;
      while (peek() == '\\') ++run, ++pos_;
      if (peek() != quote) {
        out.append(run, '\\');
        continue;
      }
      out.append(run / 2, '\\');
      if (run % 2 == 1) out += quote, ++pos_;  // an escaped quote; an even run leaves the closing one
    }
    fail(start, fmt::format("token recognition error at: '{}'", quote));
  }

  Item parse_list() {
    const std::size_t start = pos_++;
    Array items;
    skip_whitespace();
    if (at_end()) fail(start, "no viable alternative at input '['");
    if (peek() == ']') {
      ++pos_;
      return Node{std::move(items), origin()};
    }
    while (true) {
      items.push_back(as_node(parse_element(",]"), "inside a list"));
      skip_whitespace();
      if (at_end()) fail(pos_, "missing ']' at '<EOF>'");
      if (peek() == ']') break;
      if (peek() != ',') fail(pos_, fmt::format("extraneous input '{}' expecting {{',', ']'}}", peek()));
      ++pos_;
    }
    ++pos_;
    return Node{std::move(items), origin()};
  }

  Item parse_dict() {
    const std::size_t start = pos_++;
    Table entries;
    skip_whitespace();
    if (at_end()) fail(start, "no viable alternative at input '{'");
    if (peek() == '}') {
      ++pos_;
      return Node{std::move(entries), origin()};
    }
    while (true) {
      skip_whitespace();
      if (peek() == '\'' || peek() == '"')
        fail(pos_, "quoted dict keys are illegal: write {key: value}");
      const std::size_t key_start = pos_;
      std::vector<Token> tokens = lex_primitive(":,}", /*allow_colon=*/false);
      trim(tokens);
      if (tokens.empty()) fail(key_start, "missing dict key");
      std::string key;
      for (const Token& token : tokens) {
        if (token.type == TokenType::interpolation) fail(key_start, "interpolations are not allowed in dict keys");
        key += token.text;
      }
      skip_whitespace();
      if (peek() != ':') fail(pos_, fmt::format("missing ':' after dict key '{}'", key));
      ++pos_;
      Node value = as_node(parse_element(",}"), "a dict value");
      // A repeated key keeps its first place and its last value, as a Python dict does in Hydra.
      const auto repeated = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; });
      if (repeated != entries.end())
        repeated->second = std::move(value);
      else
        entries.emplace_back(std::move(key), std::move(value));
      skip_whitespace();
      if (at_end()) fail(pos_, "missing '}' at '<EOF>'");
      if (peek() == '}') break;
      if (peek() != ',') fail(pos_, fmt::format("extraneous input '{}' expecting {{',', '}}'}}", peek()));
      ++pos_;
    }
    ++pos_;
    return Node{std::move(entries), origin()};
  }

  // Longest-match lexing as ANTLR does; on equal length the typed token wins over an ID.
  static std::size_t match_digits(std::string_view s, std::size_t i) {  // DIGIT ('_'? DIGIT)*
    if (i >= s.size() || !is_digit(s[i])) return 0;
    std::size_t j = i + 1;
    while (j < s.size()) {
      if (is_digit(s[j])) ++j;
      else if (s[j] == '_' && j + 1 < s.size() && is_digit(s[j + 1])) j += 2;
      else break;
    }
    return j - i;
  }
  static std::size_t match_int(std::string_view s, std::size_t i) {
    std::size_t j = i + ((i < s.size() && (s[i] == '+' || s[i] == '-')) ? 1 : 0);
    if (j >= s.size() || !is_digit(s[j])) return 0;
    if (s[j] == '0') return j + 1 - i;
    return j + match_digits(s, j) - i;
  }
  static std::size_t match_float(std::string_view s, std::size_t i) {
    std::size_t j = i + ((i < s.size() && (s[i] == '+' || s[i] == '-')) ? 1 : 0);
    for (std::string_view word : {"inf", "nan"})
      if (iequals(s.substr(j, 3), word)) return j + 3 - i;
    std::size_t best = 0;
    const std::size_t int_part = match_digits(s, j);
    std::size_t point_float = 0;  // INT_PART? '.' DIGITS | INT_PART '.'
    if (j + int_part < s.size() && s[j + int_part] == '.') {
      const std::size_t fraction = match_digits(s, j + int_part + 1);
      if (fraction > 0 || int_part > 0) point_float = int_part + 1 + fraction;
    }
    best = point_float;
    for (std::size_t mantissa : {int_part, point_float}) {  // EXPONENT_FLOAT
      if (mantissa == 0) continue;
      std::size_t k = j + mantissa;
      if (k < s.size() && (s[k] == 'e' || s[k] == 'E')) {
        ++k;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        std::size_t digits = 0;
        while (k + digits < s.size() && is_digit(s[k + digits])) ++digits;
        if (digits > 0) best = std::max(best, k + digits - j);
      }
    }
    return best == 0 ? 0 : j + best - i;
  }
  static std::size_t match_keyword(std::string_view s, std::size_t i, std::string_view word) {
    return iequals(s.substr(i, word.size()), word) ? word.size() : 0;
  }
  static std::size_t match_id(std::string_view s, std::size_t i) {
    if (i >= s.size() || !is_id_start(s[i])) return 0;
    std::size_t j = i + 1;
    while (j < s.size() && is_id_char(s[j])) ++j;
    return j - i;
  }

  std::vector<Token> lex_primitive(std::string_view stops, bool allow_colon) {
    std::vector<Token> tokens;
    while (!at_end()) {
      const char c = peek();
      if (stops.find(c) != std::string_view::npos || is_closer(c)) break;
      if (c == ' ' || c == '\t') {
        const std::size_t start = pos_;
        skip_whitespace();
        tokens.push_back({TokenType::whitespace, std::string(text_.substr(start, pos_ - start))});
        continue;
      }
      if (c == '\\' && kEscapable.find(peek(1)) != std::string_view::npos && peek(1) != '\0') {
        tokens.push_back({TokenType::escape, std::string(1, peek(1))});
        pos_ += 2;
        continue;
      }
      if (c == '$' && peek(1) == '{') {
        const std::size_t close = text_.find('}', pos_ + 2);
        if (close == std::string_view::npos || close == pos_ + 2)
          fail(pos_, "unterminated interpolation: '${' needs a closing '}'");
        tokens.push_back({TokenType::interpolation, std::string(text_.substr(pos_, close + 1 - pos_))});
        pos_ = close + 1;
        continue;
      }
      if (c == '\'' || c == '"') {
        const std::size_t start = pos_;
        parse_quoted();  // fails on an unterminated quote, as Hydra's lexer does
        fail(start, fmt::format("extraneous input '{}'", text_.substr(start, pos_ - start)));
      }
      const std::size_t floating = match_float(text_, pos_);
      const std::size_t integer = match_int(text_, pos_);
      const std::size_t boolean = std::max(match_keyword(text_, pos_, "true"), match_keyword(text_, pos_, "false"));
      const std::size_t null = match_keyword(text_, pos_, "null");
      const std::size_t id = match_id(text_, pos_);
      const std::size_t longest = std::max({floating, integer, boolean, null, id});
      if (longest > 0) {
        TokenType type = TokenType::id;
        if (floating == longest) type = TokenType::floating;
        else if (integer == longest) type = TokenType::integer;
        else if (boolean == longest) type = TokenType::boolean;
        else if (null == longest) type = TokenType::null;
        tokens.push_back({type, std::string(text_.substr(pos_, longest))});
        pos_ += longest;
        continue;
      }
      if (kUnquotedChars.find(c) != std::string_view::npos || (c == ':' && allow_colon)) {
        tokens.push_back({TokenType::other, std::string(1, c)});
        ++pos_;
        continue;
      }
      fail(pos_, fmt::format("token recognition error at: '{}'", c));
    }
    return tokens;
  }

  static void trim(std::vector<Token>& tokens) {
    while (!tokens.empty() && tokens.back().type == TokenType::whitespace) tokens.pop_back();
    auto first = std::find_if(tokens.begin(), tokens.end(), [](const Token& t) { return t.type != TokenType::whitespace; });
    tokens.erase(tokens.begin(), first);
  }

  Item parse_primitive(std::string_view stops, std::size_t start) {
    std::vector<Token> tokens = lex_primitive(stops, /*allow_colon=*/true);
    const bool had_tokens = !tokens.empty();
    trim(tokens);
    if (tokens.empty()) {
      if (had_tokens) fail(start, "Trying to parse a primitive that is all whitespaces");
      fail(pos_, no_viable_alternative(start));
    }
    if (tokens.size() == 1) {
      const Token& token = tokens.front();
      switch (token.type) {
        case TokenType::integer: return Node{parse_int(token.text, start), origin()};
        case TokenType::floating: return Node{parse_float(token.text), origin()};
        case TokenType::boolean: return Node{iequals(token.text, "true"), origin()};
        case TokenType::null: return Null{};
        default: break;
      }
    }
    // A string. Raw-string convention (node.h): "${" that does not start an interpolation token
    // (one written with escapes, such as $\{x\}) is stored escaped as "\${".
    std::string out;
    for (const Token& token : tokens) {
      if (token.type == TokenType::interpolation) {
        out += token.text;
        continue;
      }
      for (char c : token.text) {
        if (c == '{' && !out.empty() && out.back() == '$') {
          out.pop_back();
          out += "\\$";
        }
        out += c;
      }
    }
    return Node{std::move(out), origin()};
  }

  std::int64_t parse_int(std::string text, std::size_t start) const {
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    if (text.starts_with('+')) text.erase(0, 1);
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size())
      fail(start, fmt::format("integer {} does not fit in 64 bits", text));
    return value;
  }

  static double parse_float(std::string text) {
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    const bool negative = text.starts_with('-');
    std::string_view body = text;
    if (!body.empty() && (body[0] == '+' || body[0] == '-')) body.remove_prefix(1);
    if (iequals(body, "inf")) return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    if (iequals(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
    return std::strtod(text.c_str(), nullptr);
  }

  // ---- functions -------------------------------------------------------------------------

  struct Args {
    std::vector<Item> positional;
    std::vector<std::pair<std::string, Item>> keyword;
  };

  Item parse_function(const std::string& name, std::size_t start) {
    Args args;
    skip_whitespace();
    if (peek() != ')') {
      while (true) {
        skip_whitespace();
        const std::size_t arg_start = pos_;
        std::optional<std::string> keyword;
        if (const std::size_t id = match_id(text_, pos_); id > 0) {
          std::size_t eq = pos_ + id;
          while (eq < text_.size() && (text_[eq] == ' ' || text_[eq] == '\t')) ++eq;
          if (eq < text_.size() && text_[eq] == '=') {
            keyword = std::string(text_.substr(pos_, id));
            pos_ = eq + 1;
          }
        }
        Item value = parse_element(",)");
        if (keyword) {
          args.keyword.emplace_back(*keyword, std::move(value));
        } else {
          if (!args.keyword.empty()) fail(arg_start, "positional argument follows keyword argument");
          args.positional.push_back(std::move(value));
        }
        skip_whitespace();
        if (at_end()) fail(pos_, fmt::format("missing ')' to close {}(", name));
        if (peek() == ')') break;
        if (peek() != ',') fail(pos_, fmt::format("extraneous input '{}' expecting {{',', ')'}}", peek()));
        ++pos_;
      }
    }
    ++pos_;
    return call(name, std::move(args), start);
  }

  [[noreturn]] void fail_call(std::size_t start, std::string_view name, const std::string& message) const {
    fail(start, fmt::format("{}(): {}", name, message));
  }

  // Binds positional and keyword arguments to `names`, Python-style.
  std::vector<std::optional<Item>> bind(Args& args, const std::vector<std::string>& names,
                                        std::string_view function, std::size_t start) const {
    if (args.positional.size() > names.size())
      fail_call(start, function, fmt::format("takes at most {} arguments ({} given)", names.size(), args.positional.size()));
    std::vector<std::optional<Item>> bound(names.size());
    for (std::size_t i = 0; i < args.positional.size(); ++i) bound[i] = std::move(args.positional[i]);
    for (auto& [key, value] : args.keyword) {
      auto it = std::find(names.begin(), names.end(), key);
      if (it == names.end())
        fail_call(start, function, fmt::format("unexpected keyword argument '{}'{}", key, did_you_mean(key, names)));
      auto& slot = bound[static_cast<std::size_t>(it - names.begin())];
      if (slot) fail_call(start, function, fmt::format("got multiple values for argument '{}'", key));
      slot = std::move(value);
    }
    return bound;
  }

  static double number_of(const Node& node) {
    if (auto* i = std::get_if<std::int64_t>(&node.value)) return static_cast<double>(*i);
    return std::get<double>(node.value);
  }
  static bool is_number(const Item& item) {
    const Node* node = std::get_if<Node>(&item);
    return node && (std::holds_alternative<std::int64_t>(node->value) || std::holds_alternative<double>(node->value));
  }

  // Items that a variadic function (choice, sort, shuffle) receives: one sweep or list, or values.
  std::vector<Node> values_of(std::vector<Item> items, std::string_view function, std::size_t start) const {
    std::vector<Node> values;
    for (Item& item : items) {
      if (std::holds_alternative<Sweep>(item)) fail_call(start, function, "a sweep cannot be one of several arguments");
      if (std::holds_alternative<Null>(item)) fail_call(start, function, "null is not a value here: TOML has no null");
      values.push_back(std::move(std::get<Node>(item)));
    }
    return values;
  }

  Item call(const std::string& name, Args args, std::size_t start) {
    if (name == "choice") {
      if (!args.keyword.empty()) fail_call(start, name, "takes no keyword arguments");
      if (args.positional.empty()) fail_call(start, name, "needs at least one value");
      Sweep sweep;
      sweep.values = values_of(std::move(args.positional), name, start);
      return sweep;
    }
    if (name == "range") return call_range(std::move(args), start);
    if (name == "interval") {
      auto bound = bind(args, {"start", "end"}, name, start);
      if (!bound[0] || !bound[1] || !is_number(*bound[0]) || !is_number(*bound[1]))
        fail_call(start, name, "needs two numbers, interval(start, end)");
      Sweep sweep;
      sweep.interval = {number_of(std::get<Node>(*bound[0])), number_of(std::get<Node>(*bound[1]))};
      return sweep;
    }
    if (name == "tag") return call_tag(std::move(args), start);
    if (name == "glob") return call_glob(std::move(args), start);
    if (name == "sort" || name == "shuffle") return call_order(name, std::move(args), start);
    if (name == "int" || name == "float" || name == "str" || name == "bool") {
      if (args.positional.size() > 1 && args.keyword.empty()) {  // str(1,2): a cast choice sweep, as in Hydra
        Sweep sweep;
        sweep.values = values_of(std::move(args.positional), name, start);
        return cast(name, std::move(sweep), start);
      }
      auto bound = bind(args, {"value"}, name, start);
      if (!bound[0]) fail_call(start, name, "needs a value");
      return cast(name, std::move(*bound[0]), start);
    }
    static const std::vector<std::string> kFunctions = {"bool", "choice", "float", "glob", "int", "interval",
                                                        "range", "shuffle", "sort", "str", "tag"};
    fail(start, fmt::format("unknown function '{}'{}; functions are {}", name, did_you_mean(name, kFunctions),
                            join(kFunctions, ", ")));
  }

  Item call_range(Args args, std::size_t start) {
    auto bound = bind(args, {"start", "stop", "step"}, "range", start);
    for (const auto& arg : bound)
      if (arg && !is_number(*arg)) fail_call(start, "range", "arguments must be numbers");
    if (!bound[0]) fail_call(start, "range", "needs at least a stop value");
    // range(stop) and range(stop, step=s) count from 0, as Python's range does.
    if (!bound[1]) {
      bound[1] = std::move(bound[0]);
      bound[0] = Node{std::int64_t{0}, origin()};
    }
    const Node& first = std::get<Node>(*bound[0]);
    const Node& stop_node = std::get<Node>(*bound[1]);
    const Node step_node = bound[2] ? std::get<Node>(*bound[2]) : Node{std::int64_t{1}, origin()};
    const bool integral = std::holds_alternative<std::int64_t>(first.value) &&
                          std::holds_alternative<std::int64_t>(stop_node.value) &&
                          std::holds_alternative<std::int64_t>(step_node.value);
    const double from = number_of(first), stop = number_of(stop_node), step = number_of(step_node);
    if (step == 0 || std::isnan(step)) fail_call(start, "range", "step must not be zero");
    if (!std::isfinite(from) || !std::isfinite(stop)) fail_call(start, "range", "start and stop must be finite");
    const double count = std::ceil((stop - from) / step);
    // No sweep may exceed 100,000 trials, so neither may one range (found by the override fuzzer:
    // larger ranges only exhausted memory before the trial limit could refuse them).
    if (count > 1e5) fail_call(start, "range", fmt::format("would produce {} values; at most 100,000", count));
    Sweep sweep;
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(std::max(0.0, count)); ++i) {
      if (integral)
        sweep.values.push_back({std::get<std::int64_t>(first.value) + i * std::get<std::int64_t>(step_node.value), origin()});
      else
        sweep.values.push_back({from + static_cast<double>(i) * step, origin()});
    }
    return sweep;
  }

  Item call_tag(Args args, std::size_t start) {
    std::optional<Item> sweep_arg;
    for (auto& [key, value] : args.keyword) {
      if (key != "sweep") fail_call(start, "tag", fmt::format("unexpected keyword argument '{}'", key));
      sweep_arg = std::move(value);
    }
    if (!sweep_arg) {
      if (args.positional.empty()) fail_call(start, "tag", "needs a sweep, tag(t1, t2, sweep=...)");
      sweep_arg = std::move(args.positional.back());
      args.positional.pop_back();
    }
    if (!std::holds_alternative<Sweep>(*sweep_arg)) fail_call(start, "tag", "the last argument must be a sweep");
    Sweep sweep = std::get<Sweep>(std::move(*sweep_arg));
    for (Item& tag : args.positional) {
      const Node* node = std::get_if<Node>(&tag);
      if (node == nullptr || !node->is_string()) fail_call(start, "tag", "tags must be strings");
      sweep.tags.push_back(std::get<std::string>(node->value));
    }
    return sweep;
  }

  std::vector<std::string> patterns(const std::optional<Item>& item, std::size_t start) const {
    if (!item) return {};
    const Node* node = std::get_if<Node>(&*item);
    if (node == nullptr) fail_call(start, "glob", "patterns must be strings or lists of strings");
    std::vector<std::string> out;
    auto add = [&](const Node& n) {
      if (!n.is_string()) fail_call(start, "glob", "patterns must be strings or lists of strings");
      out.push_back(std::get<std::string>(n.value));
    };
    if (node->is_array()) for (const Node& n : node->array()) add(n);
    else add(*node);
    return out;
  }

  Item call_glob(Args args, std::size_t start) {
    auto bound = bind(args, {"include", "exclude"}, "glob", start);
    Sweep sweep;
    sweep.glob = Glob{patterns(bound[0], start), patterns(bound[1], start)};
    if (sweep.glob->include.empty()) fail_call(start, "glob", "needs an include pattern, e.g. glob(*)");
    return sweep;
  }

  // Seeded by the override text: the same command line always gives the same order.
  std::uint64_t shuffle_seed() const { return fnv1a(full_); }

  Item call_order(const std::string& name, Args args, std::size_t start) {
    bool reverse = false;
    for (auto& [key, value] : args.keyword) {
      const Node* node = std::get_if<Node>(&value);
      if (name != "sort" || key != "reverse" || node == nullptr || !std::holds_alternative<bool>(node->value))
        fail_call(start, name, fmt::format("unexpected keyword argument '{}'", key));
      reverse = std::get<bool>(node->value);
    }
    if (args.positional.empty()) fail_call(start, name, "needs values, a list or a sweep");
    const bool sort = name == "sort";
    auto order = [&](std::vector<Node>& values) {
      if (sort) {
        sort_values(values, start);
        if (reverse) std::reverse(values.begin(), values.end());
      } else {
        seeded_shuffle(values, shuffle_seed());
      }
    };
    if (args.positional.size() == 1) {
      Item& only = args.positional.front();
      if (auto* sweep = std::get_if<Sweep>(&only)) {
        if (sweep->interval) fail_call(start, name, "cannot order an interval");
        if (sweep->glob) {
          sweep->sort = sort;
          sweep->reverse = reverse;
          sweep->shuffle = !sort;
          sweep->shuffle_seed = shuffle_seed();
        } else {
          order(sweep->values);
        }
        return only;
      }
      if (auto* node = std::get_if<Node>(&only); node && node->is_array()) {  // a list stays a list
        order(node->array());
        return only;
      }
    }
    Sweep sweep;
    sweep.values = values_of(std::move(args.positional), name, start);
    order(sweep.values);
    return sweep;
  }

  void sort_values(std::vector<Node>& values, std::size_t start) const {
    auto kind = [](const Node& n) -> const char* {
      if (std::holds_alternative<std::int64_t>(n.value) || std::holds_alternative<double>(n.value)) return "number";
      return type_name(n);
    };
    for (const Node& value : values) {
      if (std::string_view(kind(value)) != kind(values.front()))
        fail_call(start, "sort", fmt::format("cannot compare {} and {}", python_type(value), python_type(values.front())));
      if (std::string_view(kind(value)) != "number" && !value.is_string() && !std::holds_alternative<bool>(value.value))
        fail_call(start, "sort", fmt::format("cannot sort values of type {}", type_name(value)));
    }
    std::stable_sort(values.begin(), values.end(), [](const Node& a, const Node& b) {
      if (a.is_string()) return std::get<std::string>(a.value) < std::get<std::string>(b.value);
      if (std::holds_alternative<bool>(a.value)) return std::get<bool>(a.value) < std::get<bool>(b.value);
      return number_of(a) < number_of(b);
    });
  }

  static const char* python_type(const Node& node) {
    if (node.is_string()) return "str";
    if (std::holds_alternative<std::int64_t>(node.value)) return "int";
    if (std::holds_alternative<double>(node.value)) return "float";
    if (std::holds_alternative<bool>(node.value)) return "bool";
    return type_name(node);
  }

  Item cast(const std::string& to, Item item, std::size_t start) const {
    if (std::holds_alternative<Null>(item)) fail_call(start, to, "cannot cast null");
    if (auto* sweep = std::get_if<Sweep>(&item)) {
      if (sweep->interval || sweep->glob) fail_call(start, to, "can only cast values, lists and choice/range sweeps");
      for (Node& value : sweep->values) value = cast_node(to, std::move(value), start);
      return item;
    }
    return cast_node(to, std::get<Node>(std::move(item)), start);
  }

  Node cast_node(const std::string& to, Node node, std::size_t start) const {
    if (node.is_array()) {
      for (Node& element : node.array()) element = cast_node(to, std::move(element), start);
      return node;
    }
    if (node.is_table()) {
      for (auto& [key, value] : node.table()) value = cast_node(to, std::move(value), start);
      return node;
    }
    return {cast_scalar(to, node.value, start), origin()};
  }

  Node::Value cast_scalar(const std::string& to, const Node::Value& value, std::size_t start) const {
    const auto* b = std::get_if<bool>(&value);
    const auto* i = std::get_if<std::int64_t>(&value);
    const auto* d = std::get_if<double>(&value);
    const auto* s = std::get_if<std::string>(&value);
    if (to == "str") {
      if (b) return std::string(*b ? "true" : "false");
      if (i) return std::to_string(*i);
      if (d) return toml_float(*d);
      return *s;
    }
    if (to == "bool") {
      if (b) return *b;
      if (i) return *i != 0;
      if (d) return *d != 0.0;
      if (iequals(*s, "true")) return true;
      if (iequals(*s, "false")) return false;
      fail_call(start, to, fmt::format("cannot cast '{}' to bool", *s));
    }
    if (to == "float") {
      if (b) return *b ? 1.0 : 0.0;
      if (i) return static_cast<double>(*i);
      if (d) return *d;
      std::string text(*s);
      text.erase(0, text.find_first_not_of(" \t"));
      text.erase(text.find_last_not_of(" \t") + 1);
      if (match_float(text, 0) == text.size() || match_int(text, 0) == text.size()) {
        if (!text.empty()) return parse_float(text);
      }
      fail_call(start, to, fmt::format("could not convert string to float: '{}'", *s));
    }
    // int: Python's int() truncates floats toward zero and parses only integer literals.
    if (b) return std::int64_t{*b ? 1 : 0};
    if (i) return *i;
    if (d) {
      if (!std::isfinite(*d)) fail_call(start, to, fmt::format("cannot convert float {} to integer", toml_float(*d)));
      if (std::fabs(*d) >= 9.2e18) fail_call(start, to, fmt::format("{} does not fit in 64 bits", toml_float(*d)));
      return static_cast<std::int64_t>(std::trunc(*d));
    }
    std::string text(*s);
    text.erase(0, text.find_first_not_of(" \t"));
    text.erase(text.find_last_not_of(" \t") + 1);
    if (text.empty() || match_int(text, 0) != text.size())
      fail_call(start, to, fmt::format("invalid literal for int() with base 10: '{}'", *s));
    return parse_int(text, start);
  }

  std::string_view full_;
  std::string_view text_;
  std::size_t offset_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

bool is_group_segment(std::string_view s) {
  return !s.empty() && is_id_start(s[0]) && std::all_of(s.begin(), s.end(), is_id_char);
}
bool is_package_segment(std::string_view s) {
  if (s.empty()) return false;
  if (std::all_of(s.begin(), s.end(), is_digit)) return true;
  return (is_id_start(s[0]) || s[0] == '$') &&
         std::all_of(s.begin(), s.end(), [](char c) { return is_id_char(c) || c == '$'; });
}

[[noreturn]] void fail_key(std::string_view text, std::size_t column, const std::string& message) {
  throw ConfigError(fmt::format("invalid override '{}': {}\n  {}\n  {}^", text, message, text,
                                std::string(column, ' ')));
}

void check_package(std::string_view text, std::string_view package, std::size_t column) {
  if (package.empty()) return;
  std::size_t at = 0;
  for (const std::string& segment : split_key(package)) {
    if (!is_package_segment(segment))
      fail_key(text, column + at, fmt::format("invalid package '{}': use names separated by '.'", package));
    at += segment.size() + 1;
  }
}

}  // namespace

OverrideValue parse_override_value(std::string_view text) {
  if (const std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
    fail_key(text.substr(0, bad), bad, fmt::format("not valid UTF-8 at byte {}", bad));
  return Parser(text, 0).parse_value();
}

Override parse_override(std::string_view text) {
  // Config values become TOML, which is UTF-8 only.
  if (const std::size_t bad = invalid_utf8_at(text); bad != std::string_view::npos)
    fail_key(text.substr(0, bad), bad, fmt::format("not valid UTF-8 at byte {}", bad));
  Override out;
  out.text = std::string(text);
  std::size_t pos = 0;
  if (text.starts_with("~")) {
    out.kind = Override::Kind::remove;
    pos = 1;
  } else if (text.starts_with("++")) {
    out.kind = Override::Kind::force_add;
    pos = 2;
  } else if (text.starts_with("+")) {
    out.kind = Override::Kind::add;
    pos = 1;
  }
  const std::size_t eq = text.find('=', pos);
  std::string_view key = text.substr(pos, eq == std::string_view::npos ? std::string_view::npos : eq - pos);
  if (key.empty()) fail_key(text, pos, "missing key: write key=value");

  const std::size_t at = key.find('@');
  std::string_view path = key.substr(0, at);
  if (at != std::string_view::npos) {
    const std::string_view package = key.substr(at + 1);
    if (package.find('@') != std::string_view::npos) fail_key(text, pos + at, "a key has at most one '@'");
    check_package(text, package, pos + at + 1);
    out.package = std::string(package);
  }
  if (path.empty()) fail_key(text, pos, "missing key before '@'");
  if (path.find('/') != std::string_view::npos) {
    std::size_t column = pos;
    for (std::size_t start = 0; start <= path.size();) {
      std::size_t slash = path.find('/', start);
      if (slash == std::string_view::npos) slash = path.size();
      const std::string_view segment = path.substr(start, slash - start);
      if (!is_group_segment(segment)) {
        const std::string why = segment.find('$') != std::string_view::npos
                                    ? "'$' is allowed in package names, not in config group paths"
                                    : "config group paths are names separated by '/'";
        fail_key(text, column + start, fmt::format("invalid config group '{}': {}", path, why));
      }
      start = slash + 1;
    }
  } else {
    check_package(text, path, pos);
    // Hydra's grammar: a key is a name or a dotted path; a lone number is neither (`a.1` is one).
    if (path.find_first_not_of("0123456789") == std::string_view::npos)
      fail_key(text, pos, fmt::format("invalid key '{}': a key starts with a letter, '_' or '$', or is a dotted path", path));
  }
  out.key = std::string(path);

  if (eq == std::string_view::npos) {
    if (out.kind != Override::Kind::remove)
      fail_key(text, text.size(), fmt::format("missing '=': write {}=VALUE to set it, or ~{} to delete it", key, key));
    return out;
  }
  out.value = Parser(text, eq + 1).parse_value();
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return ::fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

std::vector<Node> sweep_values(const Sweep& sweep, const std::vector<std::string>& group_options,
                               const std::string& override_text) {
  if (sweep.interval)
    throw ConfigError(fmt::format(
        "override '{}': interval() is a continuous range for search sweepers; a grid sweep cannot "
        "enumerate it (use range() or choice())",
        override_text));
  if (!sweep.glob) return sweep.values;
  std::vector<std::string> selected;
  for (const std::string& option : group_options) {
    auto matches = [&](const std::vector<std::string>& patterns) {
      return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return glob_match(p, option); });
    };
    if (matches(sweep.glob->include) && !matches(sweep.glob->exclude)) selected.push_back(option);
  }
  std::sort(selected.begin(), selected.end());
  if (sweep.reverse) std::reverse(selected.begin(), selected.end());
  if (sweep.shuffle) seeded_shuffle(selected, sweep.shuffle_seed);
  std::vector<Node> values;
  for (std::string& option : selected) values.push_back({std::move(option), "override '" + override_text + "'"});
  return values;
}

std::string override_value_text(const Node& value) {
  if (!value.is_string()) return format_inline(value);
  const std::string& text = std::get<std::string>(value.value);
  try {
    const OverrideValue parsed = parse_override_value(text);
    if (const Node* node = std::get_if<Node>(&parsed); node && node->is_string() && std::get<std::string>(node->value) == text)
      return text;
  } catch (const ConfigError&) {
  }
  // Quoted: a quote, and a backslash run before the closing quote, are escaped.
  std::string quoted = "'";
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool trailing_backslash = text[i] == '\\' && text.find_first_not_of('\\', i) == std::string::npos;
    if (text[i] == '\'' || trailing_backslash) quoted += '\\';
    quoted += text[i];
  }
  quoted += '\'';
  return quoted;
}

}  // namespace prefopt::config
