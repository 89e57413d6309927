// Plugin parameters: the schema a plugin declares and the validated values it receives.
//
// A plugin declares each parameter with a type, a default, an optional range or set of choices
// and a one-line doc:
//
//   ParamSpec::real("lambda", 0.5, "weight of the variance penalty").min(0.0)
//   ParamSpec::string("loss", "sigmoid", "loss variant").one_of({"sigmoid", "ipo", "hinge"})
//
// prefopt checks the values a configuration gives against the schema before the plugin is
// created, fills in defaults, and hands the plugin a Params whose get<T>() cannot fail for a
// declared parameter of type T. Only ints widen (to float); nothing else is coerced.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "prefopt/export.h"

namespace prefopt {

enum class ParamType { boolean, integer, real, string, integer_list, real_list, string_list };

// The alternatives are in ParamType's order.
using ParamValue = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>,
                                std::vector<double>, std::vector<std::string>>;

PREFOPT_API const char* to_string(ParamType type);  // "bool", "int", "float", "list<int>", ...
PREFOPT_API ParamType type_of(const ParamValue& value);
PREFOPT_API std::string format_value(const ParamValue& value);  // TOML syntax: 0.5, "a", [1, 2]

class PREFOPT_API ParamSpec {
 public:
  static ParamSpec boolean(std::string name, bool default_value, std::string doc);
  static ParamSpec integer(std::string name, std::int64_t default_value, std::string doc);
  static ParamSpec real(std::string name, double default_value, std::string doc);
  static ParamSpec string(std::string name, std::string default_value, std::string doc);
  static ParamSpec integer_list(std::string name, std::vector<std::int64_t> default_value,
                                std::string doc);
  static ParamSpec real_list(std::string name, std::vector<double> default_value, std::string doc);
  static ParamSpec string_list(std::string name, std::vector<std::string> default_value,
                               std::string doc);

  // Bounds apply to numbers and to every element of numeric lists; both are inclusive.
  [[nodiscard]] ParamSpec min(double bound) const;
  [[nodiscard]] ParamSpec max(double bound) const;
  // Choices apply to strings and to every element of string lists.
  [[nodiscard]] ParamSpec one_of(std::vector<std::string> choices) const;

  const std::string& name() const { return name_; }
  ParamType type() const { return type_; }
  const ParamValue& default_value() const { return default_; }
  const std::optional<double>& lower_bound() const { return min_; }
  const std::optional<double>& upper_bound() const { return max_; }
  const std::vector<std::string>& choices() const { return choices_; }
  const std::string& doc() const { return doc_; }

  // "[0, 1]", "[0, inf)", "one of: a, b", or "" when unconstrained.
  std::string constraint() const;

  // Converts `value` to this parameter's type (an int widens to a float, a list of ints to a list
  // of floats) and checks it. Returns the value, or the reason it is unacceptable, written to
  // follow "<key>: " in a message.
  std::variant<ParamValue, std::string> accept(const ParamValue& value) const;

 private:
  ParamSpec(std::string name, ParamType type, ParamValue default_value, std::string doc);

  std::string name_;
  ParamType type_;
  ParamValue default_;
  std::optional<double> min_;
  std::optional<double> max_;
  std::vector<std::string> choices_;
  std::string doc_;
};

using ParamMap = std::map<std::string, ParamValue, std::less<>>;

// The validated parameters of one plugin instance: every declared parameter is present.
class PREFOPT_API Params {
 public:
  Params() = default;
  explicit Params(ParamMap values) : values_(std::move(values)) {}

  // T is one of ParamValue's alternatives. Throws std::logic_error for an undeclared name or a
  // type other than the declared one (a bug in the plugin, not in the user's configuration).
  template <class T>
  const T& get(std::string_view name) const {
    const ParamValue& value = at(name);
    if (const T* typed = std::get_if<T>(&value)) return *typed;
    throw_wrong_type(name, value);
  }
  const ParamValue& at(std::string_view name) const;
  const ParamMap& values() const { return values_; }

 private:
  [[noreturn]] static void throw_wrong_type(std::string_view name, const ParamValue& value);
  ParamMap values_;
};

}  // namespace prefopt
