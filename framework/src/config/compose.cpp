#include "config/compose.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::config {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxTrials = 100000;

struct DefaultEntry {
  enum class Type { self, group, config };
  Type type = Type::self;
  std::string path;                    // absolute group path, or absolute config path for `config`
  std::string relative;                // the group path as written, relative to the containing config
  std::string option;                  // group defaults only
  std::optional<std::string> package;  // as written after '@'
  bool optional = false;
  bool is_override = false;
  bool from_command_line = false;  // +group=option / ++group=option, appended to the experiment's list
  std::string origin;

  std::string key() const { return package ? path + "@" + *package : path; }
};

// A group choice made on the command line or by an `override` entry of the experiment.
struct GroupChoice {
  Override::Kind kind;
  std::optional<std::string> option;  // nullopt: remove the group default
  std::optional<std::string> only_if;  // ~group=option removes only that option
  std::string origin;
  bool used = false;
};

std::string dotted(std::string_view group_path) {
  std::string out(group_path);
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

std::string join_package(const std::string& parent, const std::string& child) {
  if (parent.empty()) return child;
  if (child.empty()) return parent;
  return parent + "." + child;
}

// `# @package X` in the leading comment lines of a config file.
std::optional<std::string> package_header(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    if (line[first] != '#') break;
    std::istringstream words(line.substr(first + 1));
    std::string directive, package;
    if (words >> directive >> package && directive == "@package") return package;
  }
  return std::nullopt;
}

Node place_at(Node content, const std::string& package, const std::string& origin) {
  if (package.empty()) return content;
  const std::vector<std::string> segments = split_key(package);
  for (auto it = segments.rbegin(); it != segments.rend(); ++it)
    content = Node{Table{{*it, std::move(content)}}, origin};
  return content;
}

// Hydra's rule: a config's package is its parent's package joined with, in order of precedence,
// the defaults entry's `@package`, the file's `# @package` header, or the group path relative to
// the parent; `_group_` stands for that relative group path; whatever precedes a `_global_` is
// dropped (so `_global_` alone is the root).
std::string final_package(const DefaultEntry& entry, const std::string& parent_package,
                          const std::optional<std::string>& header) {
  const bool group = entry.type == DefaultEntry::Type::group;
  const std::size_t slash = entry.relative.rfind('/');
  const std::string relative_group = group ? entry.relative
                                     : slash == std::string::npos ? std::string()
                                                                  : entry.relative.substr(0, slash);
  std::string package = entry.package ? *entry.package : header ? *header : dotted(relative_group);
  for (auto at = package.find("_group_"); at != std::string::npos; at = package.find("_group_"))
    package.replace(at, 7, dotted(relative_group));
  std::string out = join_package(parent_package, package);
  const auto global = out.rfind("_global_");
  if (global == std::string::npos) return out;
  return global + 8 < out.size() ? out.substr(global + 9) : "";
}

// Hydra's override key of a group default: its group path, with '@' and its final package when
// that is not the group's own package. So `model/act` names the act that model's defaults compose
// at model.act, and `model/act@teacher.act` the one composed again under model@teacher.
std::string override_key(const DefaultEntry& entry, const std::string& parent_package) {
  const std::string package = final_package(entry, parent_package, std::nullopt);
  if (package == dotted(entry.path)) return entry.path;
  return entry.path + "@" + (package.empty() ? "_global_" : package);
}

std::string resolve_group(const std::string& written, const std::string& group_dir) {
  if (written.starts_with("/")) return written.substr(1);
  return group_dir.empty() ? written : group_dir + "/" + written;
}

std::vector<DefaultEntry> parse_defaults(Node& config, const std::string& group_dir) {
  std::vector<DefaultEntry> entries;
  const Node* list = config.child("defaults");
  if (list == nullptr) return entries;
  if (!list->is_array())
    throw ConfigError(fmt::format("{}: 'defaults' must be an array, e.g. defaults = [{{task = \"synthetic\"}}, \"_self_\"]",
                                  list->origin));
  for (const Node& item : list->array()) {
    DefaultEntry entry;
    entry.origin = item.origin;
    std::string target;
    if (item.is_string()) {
      target = std::get<std::string>(item.value);
      if (target == "_self_") {
        entries.push_back(entry);
        continue;
      }
      entry.type = DefaultEntry::Type::config;
    } else if (item.is_table() && item.table().size() == 1 && item.table()[0].second.is_string()) {
      entry.type = DefaultEntry::Type::group;
      target = item.table()[0].first;
      entry.option = std::get<std::string>(item.table()[0].second.value);
      for (const char* keyword : {"optional ", "override "}) {
        if (!target.starts_with(keyword)) continue;
        (std::string_view(keyword) == "optional " ? entry.optional : entry.is_override) = true;
        target = target.substr(std::string_view(keyword).size());
        target.erase(0, target.find_first_not_of(' '));
      }
    } else {
      throw ConfigError(fmt::format(
          "{}: a defaults entry is \"_self_\", \"config\", or {{group = \"option\"}} with one string option; got {}",
          item.origin, format_inline(item)));
    }
    if (const auto at = target.find('@'); at != std::string::npos) {
      entry.package = target.substr(at + 1);
      target = target.substr(0, at);
    }
    if (target.empty() || target == "/")
      throw ConfigError(fmt::format("{}: empty config group in defaults entry {}", item.origin, format_inline(item)));
    entry.path = resolve_group(target, group_dir);
    entry.relative = target.starts_with("/") ? target.substr(1) : target;
    entries.push_back(std::move(entry));
  }
  config.erase_child("defaults");
  return entries;
}

[[noreturn]] void throw_not_found(const std::string& what, const std::string& name, const std::vector<std::string>& options,
                                  const std::vector<SearchDir>& search_path, const std::string& origin) {
  std::string message = fmt::format("{}: could not find {} '{}'", origin, what, name);
  if (!options.empty()) {
    const std::string last = name.substr(name.rfind('/') + 1);
    message += fmt::format("{}\n  available options: {}", did_you_mean(last, options), join(options, ", "));
  }
  message += "\n  config search path:";
  for (const SearchDir& dir : search_path) message += fmt::format("\n    {} ({})", dir.dir.string(), dir.origin);
  throw ConfigError(message);
}

// Creates parent tables as needed and puts `value` at `key`.
void insert(Node& root, const std::string& key, Node value, const std::string& text) {
  const std::vector<std::string> segments = split_key(key);
  Node* node = &root;
  for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
    if (!node->is_table()) {
      throw ConfigError(fmt::format("Could not append to config: '{}' is a {}, not a table (override '{}')",
                                    join(std::vector<std::string>(segments.begin(), segments.begin() + i), "."),
                                    type_name(*node), text));
    }
    node = &node->child_or_insert(segments[i], value.origin);
  }
  if (!node->is_table())
    throw ConfigError(fmt::format("Could not append to config: the parent of '{}' is a {}, not a table (override '{}')",
                                  key, type_name(*node), text));
  node->table().emplace_back(segments.back(), std::move(value));
}

void erase(Node& root, const std::string& key) {
  const std::vector<std::string> segments = split_key(key);
  const std::string parent_key = join(std::vector<std::string>(segments.begin(), segments.end() - 1), ".");
  Node* parent = parent_key.empty() ? &root : find(root, parent_key);
  if (parent->is_table()) {
    parent->erase_child(segments.back());
  } else {
    auto& items = parent->array();
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(std::stoul(segments.back())));
  }
}

std::string sibling_hint(const Node& root, const std::string& key) {
  const std::vector<std::string> segments = split_key(key);
  const std::string parent_key = join(std::vector<std::string>(segments.begin(), segments.end() - 1), ".");
  const Node* parent = parent_key.empty() ? &root : find(root, parent_key);
  if (parent == nullptr || !parent->is_table()) return "";
  std::vector<std::string> names;
  for (const auto& [name, node] : parent->table()) names.push_back(name);
  const auto match = closest_match(segments.back(), names);
  if (!match) return "";
  return fmt::format(" Did you mean '{}'?", parent_key.empty() ? *match : parent_key + "." + *match);
}

// OmegaConf's merge of an override's value, as Hydra applies it: a table merges into a table
// (`key=` in struct mode: only into keys that exist; `+key=` and `++key=` may add keys), a table
// and an array never replace each other, anything else replaces.
template <class Fail>
void assign(Node& target, const Node& value, const std::string& key, bool only_existing_keys, const Fail& fail) {
  if (target.is_table() && value.is_table()) {
    for (const auto& [name, child] : value.table()) {
      const std::string child_key = key + "." + name;
      if (Node* existing = target.child(name)) {
        assign(*existing, child, child_key, only_existing_keys, fail);
        continue;
      }
      if (only_existing_keys) {
        std::vector<std::string> names;
        for (const auto& [present, node] : target.table()) names.push_back(present);
        fail(fmt::format("Could not override '{}': '{}' has no key '{}'{}. To add keys use +{}=... or ++{}=...",
                         child_key, key, name, did_you_mean(name, names), key, key));
      }
      target.table().emplace_back(name, child);
    }
    return;
  }
  if ((target.is_table() && value.is_array()) || (target.is_array() && value.is_table()))
    fail(fmt::format("Could not override '{}': it is {}, and {} cannot replace it", key,
                     target.is_table() ? "a table" : "an array", value.is_table() ? "a table" : "an array"));
  target = value;
}

// Applies one value override; errors carry Hydra's wording after "override 'TEXT': ".
void apply_value_override(Node& root, const Override& o) {
  auto fail = [&](const std::string& message) {
    throw ConfigError(fmt::format("override '{}': {}", o.text, message));
  };
  Node* existing = find(root, o.key);
  const bool null = o.value && std::holds_alternative<Null>(*o.value);
  if (o.kind == Override::Kind::remove || null) {  // `~key`, `~key=value`, or a null value: delete
    if (existing == nullptr) {
      if (o.kind == Override::Kind::add || o.kind == Override::Kind::force_add) return;  // nothing to delete
      fail(fmt::format("Could not delete from config. '{}' does not exist.{}", o.key, sibling_hint(root, o.key)));
    }
    if (o.kind == Override::Kind::add) fail(fmt::format("Could not append to config. An item is already at '{}'.", o.key));
    if (o.kind == Override::Kind::remove && o.value && !null && !(std::get<Node>(*o.value) == *existing))
      fail(fmt::format("Could not delete from config. The value of '{}' is {} and not {}.", o.key,
                       format_inline(*existing), format_inline(std::get<Node>(*o.value))));
    erase(root, o.key);
    return;
  }
  const Node& value = std::get<Node>(*o.value);  // sweeps were expanded into trials
  if (o.kind == Override::Kind::change) {
    if (existing == nullptr)
      fail(fmt::format("Could not override '{}'. To append to your config use +{}.{}", o.key, o.text,
                       sibling_hint(root, o.key)));
    assign(*existing, value, o.key, /*only_existing_keys=*/true, fail);
  } else if (existing == nullptr) {
    insert(root, o.key, value, o.text);
  } else if (o.kind == Override::Kind::force_add || value.is_table() || value.is_array()) {
    assign(*existing, value, o.key, /*only_existing_keys=*/false, fail);  // Hydra: `+key=` merges containers too
  } else {
    fail(fmt::format("Could not append to config. An item is already at '{}'. Use {}={} to change it, or ++{}={}.",
                     o.key, o.key, format_inline(value), o.key, format_inline(value)));
  }
}

}  // namespace

Composer::Composer(const fs::path& experiment, const std::vector<fs::path>& config_dirs,
                   BuiltinOptions builtin_options)
    : experiment_(experiment), builtin_options_(std::move(builtin_options)) {
  std::error_code error;
  if (!fs::is_regular_file(experiment, error))
    throw ConfigError(fmt::format("experiment file '{}' does not exist", experiment.string()));
  primary_ = load_toml_file(experiment.string());
  const fs::path folder = fs::absolute(experiment).parent_path();
  search_path_.push_back({folder, "experiment folder"});
  for (const fs::path& dir : config_dirs) {
    if (!fs::is_directory(dir, error))
      throw ConfigError(fmt::format("--config-dir '{}' is not a folder", dir.string()));
    search_path_.push_back({fs::absolute(dir), "--config-dir"});
  }
  const Node* prefopt = primary_.child("prefopt");
  const Node* extra = prefopt && prefopt->is_table() ? prefopt->child("searchpath") : nullptr;
  if (extra == nullptr) return;
  if (!extra->is_array())
    throw ConfigError(fmt::format("{}: prefopt.searchpath must be an array of folders", extra->origin));
  for (const Node& entry : extra->array()) {
    if (!entry.is_string())
      throw ConfigError(fmt::format("{}: prefopt.searchpath entries must be strings", entry.origin));
    const fs::path dir = folder / std::get<std::string>(entry.value);
    if (!fs::is_directory(dir, error))
      throw ConfigError(fmt::format("{}: prefopt.searchpath folder '{}' does not exist", entry.origin, dir.string()));
    search_path_.push_back({dir.lexically_normal(), "[prefopt] searchpath, " + entry.origin});
  }
}

bool Composer::is_group(std::string_view path) const {
  if (path.empty() || path.find('.') != std::string_view::npos) return false;
  if (builtin_options_.contains(path)) return true;
  std::error_code error;
  return std::any_of(search_path_.begin(), search_path_.end(),
                     [&](const SearchDir& dir) { return fs::is_directory(dir.dir / path, error); });
}

std::vector<std::string> Composer::group_options(std::string_view group) const {
  std::set<std::string> options;
  if (const auto builtin = builtin_options_.find(group); builtin != builtin_options_.end())
    for (const auto& [option, content] : builtin->second) options.insert(option);
  for (const SearchDir& dir : search_path_) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir.dir / group, error))
      if (entry.path().extension() == ".toml" && entry.is_regular_file(error)) options.insert(entry.path().stem().string());
  }
  return {options.begin(), options.end()};
}

const Node* Composer::builtin_option(std::string_view group, std::string_view option) const {
  const auto options = builtin_options_.find(group);
  if (options == builtin_options_.end()) return nullptr;
  const auto found = options->second.find(option);
  return found == options->second.end() ? nullptr : &found->second;
}

fs::path Composer::find_option(std::string_view group, std::string_view option) const {
  std::error_code error;
  for (const SearchDir& dir : search_path_) {
    const fs::path file = (group.empty() ? dir.dir : dir.dir / group) / (std::string(option) + ".toml");
    if (fs::is_regular_file(file, error)) return file;
  }
  return {};
}

std::vector<Override> Composer::sweep_overrides() const {
  const Node* prefopt = primary_.child("prefopt");
  const Node* sweep = prefopt && prefopt->is_table() ? prefopt->child("sweep") : nullptr;
  if (sweep == nullptr) return {};
  if (!sweep->is_table())
    throw ConfigError(fmt::format("{}: prefopt.sweep must be a table of key = \"values\"", sweep->origin));
  std::vector<Override> out;
  for (const auto& [key, values] : sweep->table()) {
    if (!values.is_string())
      throw ConfigError(fmt::format("{}: prefopt.sweep.{} must be a string in override syntax, e.g. \"a,b\" or \"range(1,4)\"",
                                    values.origin, key));
    try {
      out.push_back(parse_override(key + "=" + std::get<std::string>(values.value)));
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("{}: prefopt.sweep.{}: {}", values.origin, key, e.what()));
    }
  }
  return out;
}

std::vector<Trial> Composer::trials(const std::vector<Override>& given, bool multirun) const {
  // As Hydra's basic sweeper: in a sweep, an override of a key given before replaces the earlier
  // one in its place (`a=1,2 b=3 a=5,6` sweeps a over 5, 6 first). The key includes +, ++, ~.
  const auto key_of = [](const Override& x) {
    const char* prefix = x.kind == Override::Kind::add         ? "+"
                         : x.kind == Override::Kind::force_add ? "++"
                         : x.kind == Override::Kind::remove    ? "~"
                                                               : "";
    return prefix + x.key + (x.package ? "@" + *x.package : "");
  };
  std::vector<Override> overrides;
  for (const Override& o : given) {
    const auto earlier = std::find_if(overrides.begin(), overrides.end(),
                                      [&](const Override& e) { return multirun && key_of(e) == key_of(o); });
    if (earlier != overrides.end())
      *earlier = o;
    else
      overrides.push_back(o);
  }
  std::vector<std::pair<std::size_t, std::vector<Node>>> axes;  // override index, its values
  std::size_t count = 1;
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    const Override& o = overrides[i];
    if (!o.is_sweep()) continue;
    if (!multirun)
      throw ConfigError(fmt::format(
          "Ambiguous value for argument '{}'\n  1. To use it as a list, use key=[value1,value2]\n"
          "  2. To use it as a string, quote the value: key='value1,value2'\n"
          "  3. To sweep over it, run with -m (multirun)",
          o.text));
    const Sweep& sweep = std::get<Sweep>(*o.value);
    const bool group = o.package || is_group(o.key);
    if (sweep.glob && !group)
      throw ConfigError(fmt::format("override '{}': glob() selects config group options, and '{}' is not a config group",
                                    o.text, o.key));
    std::vector<Node> values = sweep_values(sweep, group ? group_options(o.key) : std::vector<std::string>{}, o.text);
    if (values.empty()) throw ConfigError(fmt::format("override '{}' sweeps over no values", o.text));
    count *= values.size();
    if (count > kMaxTrials)
      throw ConfigError(fmt::format("the sweep has more than {} trials; narrow it", kMaxTrials));
    axes.emplace_back(i, std::move(values));
  }
  std::vector<Trial> out;
  for (std::size_t t = 0; t < count; ++t) {
    Trial trial{overrides, {}};
    std::size_t rest = t;
    std::vector<std::size_t> picks(axes.size());
    for (std::size_t a = axes.size(); a-- > 0;) {  // the last axis varies fastest
      picks[a] = rest % axes[a].second.size();
      rest /= axes[a].second.size();
    }
    for (std::size_t a = 0; a < axes.size(); ++a) {
      Override& o = trial.overrides[axes[a].first];
      const Node& value = axes[a].second[picks[a]];
      o.value = value;
      // The override as this trial applies it, e.g. "algorithm.beta=0.1" for "algorithm.beta=0.1,0.2".
      const std::string prefix = o.kind == Override::Kind::add ? "+" : o.kind == Override::Kind::force_add ? "++" : "";
      const std::string shown = override_value_text(value);
      o.text = prefix + o.key + (o.package ? "@" + *o.package : "") + "=" + shown;
      trial.sweep_texts.push_back(o.text);
    }
    out.push_back(std::move(trial));
  }
  return out;
}

struct Composer::Expansion {
  const Composer& composer;
  std::map<std::string, GroupChoice> choices;  // by group[@package]
  std::vector<std::string> tree;
  std::map<std::string, std::string> selected;  // group[@package] -> the option composed
  std::vector<std::string> stack;  // files being expanded, for cycle detection
  Node root;

  void expand(Node content, const std::string& label, const std::string& group_dir, const std::string& package,
              int depth, std::vector<DefaultEntry> extra_entries = {}) {
    std::vector<DefaultEntry> entries = parse_defaults(content, group_dir);
    if (depth > 0)
      for (const DefaultEntry& entry : entries)
        if (entry.is_override)
          throw ConfigError(fmt::format("{}: 'override' entries are supported in the experiment's own defaults list",
                                        entry.origin));
    if (std::none_of(entries.begin(), entries.end(), [](const auto& e) { return e.type == DefaultEntry::Type::self; }))
      entries.push_back(DefaultEntry{});  // _self_ last: a config overrides its defaults (Hydra 1.1+)
    entries.insert(entries.end(), extra_entries.begin(), extra_entries.end());

    const std::string indent(2 * static_cast<std::size_t>(depth) + 2, ' ');
    for (DefaultEntry& entry : entries) {
      if (entry.is_override) continue;  // collected up front
      if (entry.type == DefaultEntry::Type::self) {
        tree.push_back(indent + "_self_" + (package.empty() ? "" : " @ " + package));
        merge(root, place_at(content, package, label));
        continue;
      }
      const std::string key = entry.type == DefaultEntry::Type::group ? override_key(entry, package) : "";
      if (entry.type == DefaultEntry::Type::group) {
        const auto found = choices.find(key);
        if (entry.from_command_line) {
          if (found->second.used) continue;  // ++group=option changed an existing default instead
        } else if (found != choices.end()) {
          GroupChoice& choice = found->second;
          choice.used = true;
          if (choice.kind == Override::Kind::add)
            throw ConfigError(fmt::format("Could not append to the defaults list: config group '{}' is already in it "
                                          "({}); use {}={} to change it (override at {})",
                                          entry.key(), entry.origin, entry.key(), choice.option.value_or("null"),
                                          choice.origin));
          if (choice.kind == Override::Kind::remove && choice.only_if && *choice.only_if != entry.option)
            throw ConfigError(fmt::format("Could not delete '{}' ({}): its option is '{}', not '{}'", entry.key(),
                                          choice.origin, entry.option, *choice.only_if));
          if (choice.kind == Override::Kind::remove || !choice.option) {
            tree.push_back(fmt::format("{}{}: removed by {}", indent, entry.key(), choice.origin));
            continue;
          }
          entry.option = *choice.option;
          entry.origin = choice.origin;
        }
      }
      const bool group = entry.type == DefaultEntry::Type::group;
      const std::size_t slash = entry.path.rfind('/');
      const std::string group_path = group ? entry.path : slash == std::string::npos ? "" : entry.path.substr(0, slash);
      const std::string name = group ? entry.option : slash == std::string::npos ? entry.path : entry.path.substr(slash + 1);
      if (name.empty() || name.find_first_of("/\\") != std::string::npos || name == "." || name == "..")
        throw ConfigError(fmt::format("{}: invalid option name '{}' for {}: a file name without '/'", entry.origin,
                                      name, group ? "config group '" + entry.path + "'" : "a config"));
      const fs::path file = composer.find_option(group_path, name);
      // A built-in option, chosen for its group or named in a defaults list of that group's
      // folder (a preset `algorithm/ipo.toml` starting from `defaults = ["dpo", "_self_"]`).
      const Node* builtin = file.empty() ? composer.builtin_option(group_path, name) : nullptr;
      if (builtin != nullptr) {
        const std::string child_package = final_package(entry, package, std::nullopt);
        if (group) selected[key] = name;
        tree.push_back(fmt::format("{}{}{} (built in) @ {}", indent, group ? key + ": " : "", name,
                                   child_package.empty() ? "_global_" : child_package));
        expand(*builtin, "built-in option " + group_path + "/" + name, group_path, child_package, depth + 1);
        continue;
      }
      if (file.empty()) {
        if (entry.optional) {
          tree.push_back(fmt::format("{}{}: {} (optional, not found)", indent, entry.key(), name));
          continue;
        }
        throw_not_found(group ? "config group option" : "config", group ? entry.path + "/" + name : entry.path,
                        composer.group_options(group_path), composer.search_path_, entry.origin);
      }
      const std::string child_package = final_package(entry, package, package_header(file));
      const std::string file_name = file.string();
      const std::string canonical = fs::weakly_canonical(file).string();
      if (std::find(stack.begin(), stack.end(), canonical) != stack.end())
        throw ConfigError(fmt::format("{}: the defaults lists form a cycle: {} -> {}", entry.origin, join(stack, " -> "),
                                      file_name));
      if (group) selected[key] = name;
      tree.push_back(fmt::format("{}{}{} ({}){}", indent, group ? key + ": " : "", name, file_name,
                                 child_package.empty() ? " @ _global_" : " @ " + child_package));
      stack.push_back(canonical);
      expand(load_toml_file(file_name), file_name, group_path, child_package, depth + 1);
      stack.pop_back();
    }
  }
};

Composition Composer::compose(const std::vector<Override>& overrides) const {
  Expansion expansion{*this, {}, {}, {}, {fs::weakly_canonical(experiment_).string()}, Node{}};

  // Group choices: the experiment's own `override` entries, then the command line's (which win).
  Node primary = primary_;
  std::vector<DefaultEntry> appended;
  for (const DefaultEntry& entry : parse_defaults(primary, ""))
    if (entry.is_override)
      expansion.choices[entry.key()] = {Override::Kind::change, entry.option, std::nullopt, entry.origin};
  primary = primary_;

  std::vector<const Override*> value_overrides;
  for (const Override& o : overrides) {
    if (!o.package && !is_group(o.key)) {
      if (o.key.find('/') != std::string::npos) {
        std::vector<std::string> groups;
        for (const SearchDir& dir : search_path_) {
          std::error_code error;
          for (const auto& entry : fs::directory_iterator(dir.dir, error))
            if (entry.is_directory(error)) groups.push_back(entry.path().filename().string());
        }
        throw ConfigError(fmt::format("Could not override '{}': it looks like a config group override, but config "
                                      "group '{}' does not exist{}",
                                      o.text, o.key, did_you_mean(o.key, groups)));
      }
      value_overrides.push_back(&o);
      continue;
    }
    if (!is_group(o.key))
      throw ConfigError(fmt::format("Could not override '{}': it looks like a config group override, but config group "
                                    "'{}' does not exist",
                                    o.text, o.key));
    GroupChoice choice{o.kind, std::nullopt, std::nullopt, o.origin()};
    if (o.value) {
      const auto* node = std::get_if<Node>(&*o.value);
      if (node != nullptr && !node->is_string())
        throw ConfigError(fmt::format("override '{}': config group '{}' takes an option name, got a {}", o.text,
                                      o.key, type_name(*node)));
      if (node != nullptr)
        (o.kind == Override::Kind::remove ? choice.only_if : choice.option) = std::get<std::string>(node->value);
    }
    const bool adds = o.kind == Override::Kind::add || o.kind == Override::Kind::force_add;
    const std::string key = o.package ? o.key + "@" + *o.package : o.key;
    if (o.kind == Override::Kind::remove) {  // ~group after +group=option: the option is not added
      const auto added = std::find_if(appended.begin(), appended.end(), [&](const DefaultEntry& e) {
        return e.key() == key && (!choice.only_if || e.option == *choice.only_if);
      });
      if (added != appended.end()) {
        appended.erase(added);
        expansion.choices.erase(key);
        continue;
      }
    }
    if (adds && choice.option) {
      DefaultEntry entry;
      entry.type = DefaultEntry::Type::group;
      entry.path = o.key;
      entry.relative = o.key;
      entry.option = *choice.option;
      entry.package = o.package;
      entry.origin = o.origin();
      entry.from_command_line = true;
      appended.push_back(std::move(entry));
    }
    if (!adds || choice.option) expansion.choices[key] = choice;
  }

  expansion.tree.push_back(experiment_.string());
  expansion.expand(std::move(primary), experiment_.string(), "", "", 0, std::move(appended));

  for (const auto& [key, choice] : expansion.choices) {
    if (choice.used || choice.kind == Override::Kind::add || choice.kind == Override::Kind::force_add) continue;
    if (choice.kind == Override::Kind::remove)
      throw ConfigError(fmt::format("Could not delete '{}' ({}): no match in the defaults list", key, choice.origin));
    throw ConfigError(fmt::format("Could not override '{}' ({}): no match in the defaults list.\n  To append to your "
                                  "defaults list use +{}={}",
                                  key, choice.origin, key, choice.option.value_or("null")));
  }

  Composition out{std::move(expansion.root), std::move(expansion.tree), std::move(expansion.selected)};
  std::vector<std::string> errors;  // every failing override is reported, not just the first
  for (const Override* o : value_overrides) {
    try {
      apply_value_override(out.config, *o);
    } catch (const ConfigError& e) {
      errors.emplace_back(e.what());
    }
  }
  if (!errors.empty()) throw ConfigError(join(errors, "\n"));
  return out;
}

}  // namespace prefopt::config
