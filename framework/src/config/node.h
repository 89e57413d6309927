// The configuration tree: TOML values that remember where they came from.
//
// Composition merges trees from several files and the command line; every value keeps its origin
// ("experiments/dpo.toml:4:8", "override 'algorithm.beta=0.2'") so that an error about it can say
// where to fix it. Tables keep their keys in insertion order.
//
// Strings are stored raw: "${a.b}" is an interpolation resolved after composition, "\${" a literal
// "${", and "???" a mandatory value that must be set before the config is used.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace prefopt::config {

struct Node;
using Array = std::vector<Node>;
using Table = std::vector<std::pair<std::string, Node>>;

struct Node {
  using Value = std::variant<bool, std::int64_t, double, std::string, Array, Table>;
  Value value = Table{};
  std::string origin;

  bool is_table() const { return std::holds_alternative<Table>(value); }
  bool is_array() const { return std::holds_alternative<Array>(value); }
  bool is_string() const { return std::holds_alternative<std::string>(value); }
  Table& table() { return std::get<Table>(value); }
  const Table& table() const { return std::get<Table>(value); }
  Array& array() { return std::get<Array>(value); }
  const Array& array() const { return std::get<Array>(value); }

  // The child of a table, or nullptr.
  Node* child(std::string_view key);
  const Node* child(std::string_view key) const;
  // The child of a table, appended (as an empty table) when missing.
  Node& child_or_insert(std::string_view key, std::string origin);
  bool erase_child(std::string_view key);
};

bool operator==(const Node& a, const Node& b);  // values only, origins ignored
std::ostream& operator<<(std::ostream& out, const Node& node);  // as inline TOML

// "bool", "int", "float", "string", "list", "table".
const char* type_name(const Node& node);
// The value as inline TOML: 0.5, "text", [1, 2], {a = 1}.
std::string format_inline(const Node& node);

// Dotted key paths. A segment that is a number indexes a list ("x.1").
std::vector<std::string> split_key(std::string_view dotted);
Node* find(Node& root, std::string_view dotted);
const Node* find(const Node& root, std::string_view dotted);

// Recursively merges `from` into `into`: tables merge key by key, anything else replaces (arrays
// are not concatenated), the later value wins.
void merge(Node& into, Node from);

// Reads a TOML file into a tree whose origins are "file:line:column". Throws ConfigError with
// the parser's file:line:column message for invalid TOML.
Node load_toml_file(const std::string& file);
Node parse_toml(std::string_view text, const std::string& source_name);
// The tree as a TOML document (tables as [sections]).
std::string to_toml_string(const Node& table);

}  // namespace prefopt::config
