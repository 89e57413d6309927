// Building blocks for the deliberately broken test libraries.
#pragma once

#include <ATen/ATen.h>
#include <prefopt/ensemble.h>

#include <stdexcept>

namespace prefopt::test {

class ConstantEnsemble final : public Ensemble {
 public:
  explicit ConstantEnsemble(const Params&) {}

 protected:
  at::Tensor do_combine(const at::Tensor& scores) const override { return scores[0] * 0; }
};

inline void register_constant(Registrar& registrar) {
  registrar.add<ConstantEnsemble>(
      {.name = "should_not_load", .version = "1.0.0", .description = "from a rejected library"});
}

}  // namespace prefopt::test

// A descriptor with hand-chosen versions and fingerprint, as a mis-built library would carry.
#define PREFOPT_TEST_DESCRIPTOR(major, minor, fingerprint)                                  \
  namespace {                                                                               \
  const ::prefopt_plugin_descriptor descriptor{PREFOPT_DESCRIPTOR_MAGIC, major, minor,      \
                                               fingerprint, "broken-test-library",          \
                                               prefopt::test::register_constant};           \
  const ::prefopt_plugin_descriptor* entry() { return &descriptor; }                        \
  }                                                                                         \
  BOOST_DLL_ALIAS(entry, prefopt_plugin_entry)
