#include "config/interpolate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::config {
namespace {

using Path = std::vector<std::string>;

std::string join_path(const Path& path) { return path.empty() ? "<root>" : join(path, "."); }

// Position of the first "${" not escaped by a backslash, or npos.
std::size_t find_interpolation(std::string_view text, std::size_t from = 0) {
  for (std::size_t at = text.find("${", from); at != std::string_view::npos; at = text.find("${", at + 1))
    if (at == 0 || text[at - 1] != '\\') return at;
  return std::string_view::npos;
}

// The index of the '}' closing the "${" at `open`, honouring nested "${...}".
std::size_t find_close(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    if (text.compare(i, 2, "${") == 0) {
      ++depth;
      ++i;
    } else if (text[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Escaped "\\${" stays escaped while interpolations resolve, so a literal reached through
// another interpolation (or resolved twice) is never read as one; the text becomes literal last.
void unescape_tree(Node& node) {
  if (auto* text = std::get_if<std::string>(&node.value)) {
    for (std::size_t at = text->find("\\${"); at != std::string::npos; at = text->find("\\${", at + 2)) text->erase(at, 1);
  } else if (node.is_table()) {
    for (auto& [key, child] : node.table()) unescape_tree(child);
  } else if (node.is_array()) {
    for (Node& child : node.array()) unescape_tree(child);
  }
}

class Resolver {
 public:
  explicit Resolver(Node& root) : root_(root) {}

  void resolve_tree(Path& path) {
    resolve_at(path);
    Node* node = at(path);
    if (node->is_table()) {
      for (std::size_t i = 0; i < node->table().size(); ++i) {
        path.push_back(at(path)->table()[i].first);
        resolve_tree(path);
        path.pop_back();
      }
    } else if (node->is_array()) {
      for (std::size_t i = 0; i < node->array().size(); ++i) {
        path.push_back(std::to_string(i));
        resolve_tree(path);
        path.pop_back();
      }
    }
  }

  void check_mandatory(const Node& node, Path& path, std::vector<std::string>& missing) const {
    if (node.is_string() && std::get<std::string>(node.value) == "???") {
      missing.push_back(fmt::format("  {} ({}): set it, e.g. {}=VALUE", join_path(path), node.origin, join_path(path)));
    } else if (node.is_table()) {
      for (const auto& [key, child] : node.table()) {
        path.push_back(key);
        check_mandatory(child, path, missing);
        path.pop_back();
      }
    } else if (node.is_array()) {
      for (std::size_t i = 0; i < node.array().size(); ++i) {
        path.push_back(std::to_string(i));
        check_mandatory(node.array()[i], path, missing);
        path.pop_back();
      }
    }
  }

 private:
  Node* at(const Path& path) {
    Node* node = &root_;
    for (const std::string& segment : path) {
      if (node->is_table()) {
        node = node->child(segment);
      } else if (node->is_array()) {
        const bool digits = !segment.empty() && segment.size() < 10 &&
                            std::all_of(segment.begin(), segment.end(), [](char c) { return c >= '0' && c <= '9'; });
        const std::size_t index = digits ? std::stoul(segment) : node->array().size();
        node = index < node->array().size() ? &node->array()[index] : nullptr;
      } else {
        node = nullptr;
      }
      if (node == nullptr) return nullptr;
    }
    return node;
  }

  [[noreturn]] void fail(const Path& path, const Node& node, const std::string& message) const {
    throw ConfigError(fmt::format("{}: in '{}' = {}: {}", node.origin, join_path(path), format_inline(node), message));
  }

  // Replaces the string at `path` by its resolved value, resolving what it refers to first.
  void resolve_at(const Path& path) {
    Node* node = at(path);
    if (node == nullptr || !node->is_string()) return;
    const std::string raw = std::get<std::string>(node->value);
    if (find_interpolation(raw) == std::string::npos) return;
    const std::string key = join_path(path);
    if (std::find(stack_.begin(), stack_.end(), key) != stack_.end()) {
      std::vector<std::string> cycle(std::find(stack_.begin(), stack_.end(), key), stack_.end());
      cycle.push_back(key);
      fail(path, *node, "interpolation cycle: " + join(cycle, " -> "));
    }
    stack_.push_back(key);
    Node resolved = evaluate(path, *node, raw);
    stack_.pop_back();
    node = at(path);  // resolving other keys does not move this node, but re-find to be safe
    resolved.origin = node->origin;
    *node = std::move(resolved);
  }

  Node evaluate(const Path& path, const Node& node, const std::string& raw) {
    const std::size_t open = find_interpolation(raw);
    const std::size_t close = find_close(raw, open);
    if (close == std::string::npos) fail(path, node, "unterminated interpolation: '${' without '}'");
    // The whole value is one interpolation: the result keeps the referenced value's type.
    if (open == 0 && close == raw.size() - 1) return expression(path, node, raw.substr(2, close - 2));

    std::string out;
    std::size_t from = 0;
    for (std::size_t start = open; start != std::string::npos; start = find_interpolation(raw, from)) {
      const std::size_t end = find_close(raw, start);
      if (end == std::string::npos) fail(path, node, "unterminated interpolation: '${' without '}'");
      out += raw.substr(from, start - from);
      const Node value = expression(path, node, raw.substr(start + 2, end - start - 2));
      if (value.is_table() || value.is_array())
        fail(path, node, fmt::format("'${{{}}}' is a {} and cannot be part of a string", raw.substr(start + 2, end - start - 2),
                                     type_name(value)));
      out += value.is_string() ? std::get<std::string>(value.value) : format_inline(value);
      from = end + 1;
    }
    out += raw.substr(from);
    return Node{std::move(out), node.origin};
  }

  Node expression(const Path& path, const Node& node, std::string text) {
    // Nested interpolations inside the expression resolve first: ${a.${b}}.
    if (find_interpolation(text) != std::string::npos) {
      if (++nesting_ > kMaxNesting) fail(path, node, fmt::format("interpolations nest deeper than {} levels", kMaxNesting));
      const Node inner = evaluate(path, node, text);
      --nesting_;
      text = inner.is_string() ? std::get<std::string>(inner.value) : format_inline(inner);
    }
    const std::size_t colon = text.find(':');
    if (colon != std::string::npos) return resolver(path, node, text.substr(0, colon), text.substr(colon + 1));
    return reference(path, node, text);
  }

  Node resolver(const Path& path, const Node& node, const std::string& name, const std::string& args) {
    if (name == "env" || name == "oc.env") {
      const std::size_t comma = args.find(',');
      std::string variable = args.substr(0, comma);
      variable.erase(variable.find_last_not_of(' ') + 1);
      if (const char* value = std::getenv(variable.c_str())) {
        if (invalid_utf8_at(value) != std::string_view::npos)
          fail(path, node, fmt::format("environment variable '{}' is not valid UTF-8", variable));
        return Node{std::string(value), node.origin};
      }
      if (comma == std::string::npos)
        fail(path, node, fmt::format("environment variable '{}' is not set and no default is given (${{env:{},default}})",
                                     variable, variable));
      std::string fallback = args.substr(comma + 1);
      fallback.erase(0, fallback.find_first_not_of(' '));
      if (fallback.size() >= 2 && (fallback.front() == '\'' || fallback.front() == '"') && fallback.back() == fallback.front())
        fallback = fallback.substr(1, fallback.size() - 2);
      return Node{fallback, node.origin};
    }
    if (name == "now") {
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buffer[256];
      const std::size_t length = std::strftime(buffer, sizeof buffer, args.c_str(), &local);
      if (length == 0 && !args.empty()) fail(path, node, fmt::format("bad or too long time format '{}'", args));
      return Node{std::string(buffer, length), node.origin};
    }
    fail(path, node, fmt::format("unknown resolver '{}'{}; resolvers are env, oc.env and now", name,
                                 did_you_mean(name, {"env", "oc.env", "now"})));
  }

  Node reference(const Path& path, const Node& node, const std::string& text) {
    std::string key = text;
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    if (key.empty()) fail(path, node, "empty interpolation '${}'");
    Path target;
    if (key.front() == '.') {
      // ${.x} is a sibling: relative to the table holding this value; each further dot goes up.
      const std::size_t dots = key.find_first_not_of('.');
      if (dots == std::string::npos) fail(path, node, fmt::format("'${{{}}}' names no key", key));
      if (dots > path.size()) fail(path, node, fmt::format("'${{{}}}' goes above the root", key));
      target.assign(path.begin(), path.end() - static_cast<std::ptrdiff_t>(dots));
      key = key.substr(dots);
    }
    for (const std::string& segment : split_key(key)) target.push_back(segment);

    const Node* found = at(target);
    if (found == nullptr) {
      std::string hint;
      Path parent(target.begin(), target.end() - 1);
      if (const Node* table = at(parent); table != nullptr && table->is_table()) {
        std::vector<std::string> names;
        for (const auto& [name, child] : table->table()) names.push_back(name);
        if (auto match = closest_match(target.back(), names)) {
          parent.push_back(*match);
          hint = fmt::format(" (did you mean '{}'?)", join_path(parent));
        }
      }
      fail(path, node, fmt::format("interpolation '${{{}}}': key '{}' does not exist{}", text, join_path(target), hint));
    }
    resolve_at(target);
    const Node& value = *at(target);
    if (value.is_string() && std::get<std::string>(value.value) == "???")
      fail(path, node, fmt::format("interpolation '${{{}}}' refers to the mandatory value '{}' ({}), which is not set",
                                   text, join_path(target), value.origin));
    if (value.is_table() || value.is_array()) {
      // A copied table must not keep unresolved relative interpolations: resolve inside first.
      Path inner = target;
      resolve_tree(inner);
    }
    return *at(target);
  }

  static constexpr int kMaxNesting = 32;
  Node& root_;
  std::vector<std::string> stack_;
  int nesting_ = 0;
};

}  // namespace

void resolve_interpolations(Node& config) {
  Resolver resolver(config);
  Path path;
  std::vector<std::string> missing;
  resolver.check_mandatory(config, path, missing);  // report all unset values at once, before anything else
  if (!missing.empty())
    throw ConfigError(fmt::format("missing mandatory value{} (\?\?\?):\n{}", missing.size() == 1 ? "" : "s", join(missing, "\n")));
  resolver.resolve_tree(path);
  unescape_tree(config);
}

}  // namespace prefopt::config
