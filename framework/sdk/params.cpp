#include "prefopt/params.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "text.h"

namespace prefopt {
namespace {

template <class T>
std::string format_list(const std::vector<T>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += format_value(ParamValue(items[i]));
  }
  return out + "]";
}

std::string format_bound(double value) { return std::isinf(value) ? "inf" : fmt::format("{}", value); }

}  // namespace

const char* to_string(ParamType type) {
  switch (type) {
    case ParamType::boolean: return "bool";
    case ParamType::integer: return "int";
    case ParamType::real: return "float";
    case ParamType::string: return "string";
    case ParamType::integer_list: return "list<int>";
    case ParamType::real_list: return "list<float>";
    case ParamType::string_list: return "list<string>";
  }
  return "?";
}

ParamType type_of(const ParamValue& value) { return static_cast<ParamType>(value.index()); }

std::string format_value(const ParamValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, std::int64_t>) return std::to_string(v);
        else if constexpr (std::is_same_v<T, double>) return toml_float(v);
        else if constexpr (std::is_same_v<T, std::string>) return toml_string(v);
        else return format_list(v);
      },
      value);
}

ParamSpec::ParamSpec(std::string name, ParamType type, ParamValue default_value, std::string doc)
    : name_(std::move(name)), type_(type), default_(std::move(default_value)), doc_(std::move(doc)) {}

ParamSpec ParamSpec::boolean(std::string name, bool default_value, std::string doc) {
  return {std::move(name), ParamType::boolean, default_value, std::move(doc)};
}
ParamSpec ParamSpec::integer(std::string name, std::int64_t default_value, std::string doc) {
  return {std::move(name), ParamType::integer, default_value, std::move(doc)};
}
ParamSpec ParamSpec::real(std::string name, double default_value, std::string doc) {
  return {std::move(name), ParamType::real, default_value, std::move(doc)};
}
ParamSpec ParamSpec::string(std::string name, std::string default_value, std::string doc) {
  return {std::move(name), ParamType::string, std::move(default_value), std::move(doc)};
}
ParamSpec ParamSpec::integer_list(std::string name, std::vector<std::int64_t> default_value,
                                  std::string doc) {
  return {std::move(name), ParamType::integer_list, std::move(default_value), std::move(doc)};
}
ParamSpec ParamSpec::real_list(std::string name, std::vector<double> default_value, std::string doc) {
  return {std::move(name), ParamType::real_list, std::move(default_value), std::move(doc)};
}
ParamSpec ParamSpec::string_list(std::string name, std::vector<std::string> default_value,
                                 std::string doc) {
  return {std::move(name), ParamType::string_list, std::move(default_value), std::move(doc)};
}

ParamSpec ParamSpec::min(double bound) const {
  ParamSpec copy = *this;
  copy.min_ = bound;
  return copy;
}
ParamSpec ParamSpec::max(double bound) const {
  ParamSpec copy = *this;
  copy.max_ = bound;
  return copy;
}
ParamSpec ParamSpec::one_of(std::vector<std::string> choices) const {
  ParamSpec copy = *this;
  copy.choices_ = std::move(choices);
  return copy;
}

std::string ParamSpec::constraint() const {
  if (!choices_.empty()) {
    std::string out = "one of: ";
    for (std::size_t i = 0; i < choices_.size(); ++i) out += (i ? ", " : "") + choices_[i];
    return out;
  }
  if (!min_ && !max_) return "";
  return fmt::format("{}{}, {}{}", min_ ? "[" : "(", min_ ? format_bound(*min_) : "-inf",
                     max_ ? format_bound(*max_) : "inf", max_ ? "]" : ")");
}

std::variant<ParamValue, std::string> ParamSpec::accept(const ParamValue& given) const {
  ParamValue value = given;
  // The only implicit conversion: ints widen to floats, alone or in lists.
  if (type_ == ParamType::real && std::holds_alternative<std::int64_t>(value))
    value = static_cast<double>(std::get<std::int64_t>(value));
  if (type_ == ParamType::real_list && std::holds_alternative<std::vector<std::int64_t>>(value)) {
    const auto& ints = std::get<std::vector<std::int64_t>>(value);
    value = std::vector<double>(ints.begin(), ints.end());
  }
  // An empty list reads as whatever list type the parameter has.
  if (type_ == ParamType::real_list || type_ == ParamType::string_list) {
    if (const auto* ints = std::get_if<std::vector<std::int64_t>>(&value); ints && ints->empty())
      value = type_ == ParamType::real_list ? ParamValue(std::vector<double>{})
                                            : ParamValue(std::vector<std::string>{});
  }
  if (type_of(value) != type_)
    return fmt::format("expected {}, got {} {}", to_string(type_), to_string(type_of(value)),
                       format_value(given));

  auto check_number = [&](double x) -> std::optional<std::string> {
    if (std::isnan(x) && (min_ || max_)) return "nan is not in " + constraint();
    if ((min_ && x < *min_) || (max_ && x > *max_))
      return fmt::format("{} is out of range {}", format_value(given), constraint());
    return std::nullopt;
  };
  auto check_choice = [&](const std::string& s) -> std::optional<std::string> {
    if (choices_.empty() || std::find(choices_.begin(), choices_.end(), s) != choices_.end())
      return std::nullopt;
    return fmt::format("{} is not {}", toml_string(s), constraint());
  };

  std::optional<std::string> problem;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>) {
          problem = check_number(static_cast<double>(v));
        } else if constexpr (std::is_same_v<T, std::string>) {
          problem = check_choice(v);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          for (const auto& s : v)
            if (!problem) problem = check_choice(s);
        } else if constexpr (!std::is_same_v<T, bool>) {
          for (auto x : v)
            if (!problem) problem = check_number(static_cast<double>(x));
        }
      },
      value);
  if (problem) return *problem;
  return value;
}

const ParamValue& Params::at(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end())
    throw std::logic_error(fmt::format("parameter '{}' is not declared in the plugin's schema", name));
  return it->second;
}

void Params::throw_wrong_type(std::string_view name, const ParamValue& value) {
  throw std::logic_error(fmt::format("parameter '{}' holds a {}, not the type asked for", name,
                                     to_string(type_of(value))));
}

}  // namespace prefopt
