// Out-of-line definitions for the SDK's polymorphic classes: each vtable and typeinfo then has
// exactly one home, libprefopt, shared by the host and every plugin.
#include "prefopt/plugin.h"

#include <fmt/format.h>

namespace prefopt {

Plugin::~Plugin() = default;
Registrar::~Registrar() = default;

const char* to_string(PluginKind kind) {
  switch (kind) {
    case PluginKind::algorithm: return "algorithm";
    case PluginKind::reward_model: return "reward_model";
    case PluginKind::annotator: return "annotator";
    case PluginKind::ensemble: return "ensemble";
    case PluginKind::task: return "task";
  }
  return "?";
}

std::optional<PluginKind> parse_plugin_kind(std::string_view text) {
  for (PluginKind kind : kAllPluginKinds)
    if (text == to_string(kind)) return kind;
  return std::nullopt;
}

std::string Plugin::display_name() const {
  if (info_ == nullptr) return fmt::format("unregistered {}", to_string(kind()));
  return fmt::format("{} '{}'", to_string(info_->kind), info_->name);
}

void Plugin::throw_plugin_failure(const char* what) const {
  std::string where = info_ != nullptr ? fmt::format(" (from {})", info_->library) : "";
  throw PluginError(fmt::format("{} failed: {}{}", display_name(), what, where));
}

}  // namespace prefopt
