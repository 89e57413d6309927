// Hydra's command-line override grammar: parsing `key=value` overrides and their sweeps.
//
//   a.b=1          change an existing value (error if the key is missing)
//   +a.b=1         add a new value (error if the key exists)
//   ++a.b=1        add or change
//   ~a.b  ~a.b=1   delete (only if the current value equals 1)
//   algorithm=dpo  choose a config group option; +group=opt adds one, ~group removes it
//   group@pkg=opt  a config group option placed at package `pkg`
//
// Values follow Hydra's lexical rules exactly: ints (`10_0`), floats (`1e-3`, `.5`, `inf`, `nan`),
// case-insensitive bools, unquoted strings (outer whitespace stripped, inner kept, `\` escapes),
// quoted strings, lists `[1,2]` (assigned) and tables `{a: 1}` (merged), interpolations `${a.b}`.
// Sweeps: `a,b,c`, choice(), range(), interval(), glob(), sort(), shuffle(), tag(), and the casts
// int() float() str() bool().
//
// `null`: TOML has no null. A null override value deletes the key (so a plugin parameter falls
// back to its schema default), or removes a config group from the defaults list; null inside a
// list or table is an error.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/node.h"

namespace prefopt::config {

struct Null {
  bool operator==(const Null&) const = default;
};

struct Glob {
  std::vector<std::string> include;  // fnmatch patterns; empty means none
  std::vector<std::string> exclude;
};

// The values one override takes across the trials of a sweep.
struct Sweep {
  std::vector<Node> values;                            // choice/range/`a,b,c`, ordered as requested
  std::optional<std::pair<double, double>> interval;   // interval(lo, hi): continuous, no grid
  std::optional<Glob> glob;                            // config group options, expanded later
  std::vector<std::string> tags;                       // tag(): for search sweepers; grids ignore
  // sort()/shuffle() of a glob, applied when the group's options are known.
  bool sort = false;
  bool reverse = false;
  bool shuffle = false;
  std::uint64_t shuffle_seed = 0;
};

using OverrideValue = std::variant<Node, Null, Sweep>;

struct Override {
  enum class Kind { change, add, force_add, remove };
  Kind kind = Kind::change;
  std::string key;                      // "a.b" (a value) or "group" / "group/sub" (a config group)
  std::optional<std::string> package;   // the text after '@', if any
  std::optional<OverrideValue> value;   // absent only for `~key`
  std::string text;                     // the override exactly as given

  bool is_sweep() const { return value && std::holds_alternative<Sweep>(*value); }
  // The override text's origin label, "override 'a.b=1'".
  std::string origin() const { return "override '" + text + "'"; }
};

// Throws ConfigError ("invalid override 'x': ...", with a caret under the offending column).
Override parse_override(std::string_view text);
// Parses only a value (the text after '='), as in Hydra's tests of the value grammar.
OverrideValue parse_override_value(std::string_view text);

// `value` written as an override value that parses back to it: strings bare when they can be
// ("dpo") and quoted otherwise ('a,b', '1', 'true'); other values as inline TOML.
std::string override_value_text(const Node& value);

// Expands a sweep to its grid values. `group_options` are the options a glob selects from.
// Throws ConfigError for interval() (continuous: only a search sweeper can use it).
std::vector<Node> sweep_values(const Sweep& sweep, const std::vector<std::string>& group_options,
                                           const std::string& override_text);

// fnmatch-style matching with `*`, `?` and `[...]`.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace prefopt::config
