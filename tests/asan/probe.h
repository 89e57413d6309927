// A plugin interface without libtorch, for the sanitized build of the plugin boundary (this
// folder): the registry, PluginInfo's shared lifetime and every error path are libtorch-free, so
// they and these plugins build with AddressSanitizer in a minute.
#pragma once

#include <prefopt/plugin.h>

#include <stdexcept>

namespace probe {

// Filed under kind ensemble: the registry needs only a kind and a factory.
class Probe : public prefopt::Plugin {
 public:
  static constexpr prefopt::PluginKind kKind = prefopt::PluginKind::ensemble;
  prefopt::PluginKind kind() const final { return kKind; }

  // Into the plugin's code through the guard, which names the plugin in any error.
  std::int64_t answer(std::int64_t question) const { return guarded([&] { return do_answer(question); }); }

 protected:
  virtual std::int64_t do_answer(std::int64_t question) const = 0;
};

// offset + question; throws for a negative question.
class Adder final : public Probe {
 public:
  explicit Adder(const prefopt::Params& params) : offset_(params.get<std::int64_t>("offset")) {}

 protected:
  std::int64_t do_answer(std::int64_t question) const override {
    if (question < 0) throw std::invalid_argument("negative question");
    return offset_ + question;
  }

 private:
  std::int64_t offset_;
};

inline prefopt::PluginInfo adder_info(std::string name) {
  return {.name = std::move(name),
          .version = "1.0.0",
          .description = "adds its offset",
          .params = {prefopt::ParamSpec::integer("offset", 1, "what it adds").min(0)}};
}

}  // namespace probe
