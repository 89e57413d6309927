#include "config/node.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <ostream>
#include <optional>
#include <sstream>
#include <tuple>
#include <toml++/toml.h>

#include "prefopt/error.h"
#include "text.h"

namespace prefopt::config {

Node* Node::child(std::string_view key) {
  if (!is_table()) return nullptr;
  for (auto& [name, node] : table())
    if (name == key) return &node;
  return nullptr;
}

const Node* Node::child(std::string_view key) const { return const_cast<Node*>(this)->child(key); }

Node& Node::child_or_insert(std::string_view key, std::string origin) {
  if (Node* existing = child(key)) return *existing;
  return table().emplace_back(std::string(key), Node{Table{}, std::move(origin)}).second;
}

bool Node::erase_child(std::string_view key) {
  if (!is_table()) return false;
  auto& entries = table();
  auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; });
  if (it == entries.end()) return false;
  entries.erase(it);
  return true;
}

bool operator==(const Node& a, const Node& b) {
  if (a.value.index() != b.value.index()) return false;
  if (a.is_table()) {
    const Table& x = a.table();
    const Table& y = b.table();
    if (x.size() != y.size()) return false;
    for (const auto& [key, node] : x) {
      const Node* other = b.child(key);
      if (other == nullptr || !(node == *other)) return false;
    }
    return true;
  }
  if (a.is_array()) return a.array() == b.array();
  if (std::holds_alternative<double>(a.value)) {
    const double x = std::get<double>(a.value), y = std::get<double>(b.value);
    return x == y || (std::isnan(x) && std::isnan(y));
  }
  return a.value == b.value;
}

std::ostream& operator<<(std::ostream& out, const Node& node) { return out << format_inline(node); }

const char* type_name(const Node& node) {
  static constexpr const char* kNames[] = {"bool", "int", "float", "string", "list", "table"};
  return kNames[node.value.index()];
}

namespace {

bool is_bare_key(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

std::string format_key(std::string_view key) { return is_bare_key(key) ? std::string(key) : toml_string(key); }

bool is_table_array(const Node& node) {
  return node.is_array() && !node.array().empty() &&
         std::all_of(node.array().begin(), node.array().end(), [](const Node& n) { return n.is_table(); });
}

void emit_table(const Node& table, const std::string& prefix, std::string& out) {
  // Plain values first: after a [section] header every key = value line belongs to it.
  for (const auto& [key, node] : table.table())
    if (!node.is_table() && !is_table_array(node)) out += format_key(key) + " = " + format_inline(node) + "\n";
  for (const auto& [key, node] : table.table()) {
    const std::string path = prefix.empty() ? format_key(key) : prefix + "." + format_key(key);
    if (node.is_table()) {
      out += "\n[" + path + "]\n";
      emit_table(node, path, out);
    } else if (is_table_array(node)) {
      for (const Node& element : node.array()) {
        out += "\n[[" + path + "]]\n";
        emit_table(element, path, out);
      }
    }
  }
}

Node from_toml(const toml::node& node, const std::string& file) {
  const auto& begin = node.source().begin;
  std::string origin = fmt::format("{}:{}:{}", file, begin.line, begin.column);
  if (const auto* table = node.as_table()) {
    // toml::table keeps keys sorted; restore the file's order from their positions.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, value] : *table) entries.emplace_back(&key, &value);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      const auto& x = a.first->source().begin;
      const auto& y = b.first->source().begin;
      return std::tie(x.line, x.column) < std::tie(y.line, y.column);
    });
    Table out;
    for (const auto& [key, value] : entries) out.emplace_back(std::string(key->str()), from_toml(*value, file));
    return {std::move(out), std::move(origin)};
  }
  if (const auto* array = node.as_array()) {
    Array out;
    for (const toml::node& element : *array) out.push_back(from_toml(element, file));
    return {std::move(out), std::move(origin)};
  }
  if (const auto* v = node.as_string()) return {v->get(), std::move(origin)};
  if (const auto* v = node.as_integer()) return {v->get(), std::move(origin)};
  if (const auto* v = node.as_floating_point()) return {v->get(), std::move(origin)};
  if (const auto* v = node.as_boolean()) return {v->get(), std::move(origin)};
  throw ConfigError(fmt::format("{}: dates and times are not supported in prefopt configs; use a string",
                                origin));
}

}  // namespace

std::string format_inline(const Node& node) {
  return std::visit(
      [&](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::int64_t>) return std::to_string(v);
        else if constexpr (std::is_same_v<T, double>) return toml_float(v);
        else if constexpr (std::is_same_v<T, std::string>) return toml_string(v);
        else if constexpr (std::is_same_v<T, Array>) {
          std::string out = "[";
          for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + format_inline(v[i]);
          return out + "]";
        } else {
          if (v.empty()) return "{}";
          std::string out = "{";
          for (std::size_t i = 0; i < v.size(); ++i)
            out += (i ? ", " : " ") + format_key(v[i].first) + " = " + format_inline(v[i].second);
          return out + " }";
        }
      },
      node.value);
}

std::vector<std::string> split_key(std::string_view dotted) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    parts.emplace_back(dotted.substr(start, dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

namespace {
std::optional<std::size_t> as_index(const std::string& segment) {
  if (segment.empty() || segment.size() > 9 ||
      !std::all_of(segment.begin(), segment.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoul(segment);
}
}  // namespace

Node* find(Node& root, std::string_view dotted) {
  Node* node = &root;
  for (const std::string& segment : split_key(dotted)) {
    if (node->is_table()) {
      node = node->child(segment);
    } else if (node->is_array()) {
      const auto index = as_index(segment);
      node = index && *index < node->array().size() ? &node->array()[*index] : nullptr;
    } else {
      node = nullptr;
    }
    if (node == nullptr) return nullptr;
  }
  return node;
}

const Node* find(const Node& root, std::string_view dotted) { return find(const_cast<Node&>(root), dotted); }

void merge(Node& into, Node from) {
  if (!into.is_table() || !from.is_table()) {
    into = std::move(from);
    return;
  }
  for (auto& [key, value] : from.table()) {
    if (Node* existing = into.child(key))
      merge(*existing, std::move(value));
    else
      into.table().emplace_back(key, std::move(value));
  }
}

Node parse_toml(std::string_view text, const std::string& source_name) {
  try {
    const toml::table table = toml::parse(text, source_name);
    return from_toml(table, source_name);
  } catch (const toml::parse_error& e) {
    const auto& begin = e.source().begin;
    throw ConfigError(fmt::format("{}:{}:{}: invalid TOML: {}", source_name, begin.line, begin.column,
                                  e.description()));
  }
}

Node load_toml_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("cannot read config file '{}'", file));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_toml(text.str(), file);
}

std::string to_toml_string(const Node& table) {
  std::string out;
  emit_table(table, "", out);
  if (out.starts_with("\n")) out.erase(0, 1);
  return out;
}

}  // namespace prefopt::config
