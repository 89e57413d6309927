// The probe plugin libraries, one source: PROBE_CASE picks what each library does.
#include "probe.h"

namespace {

void register_plugins(prefopt::Registrar& registrar) {
#if PROBE_CASE == 1  // healthy
  registrar.add<probe::Adder>(probe::adder_info("adder"));
#elif PROBE_CASE == 2  // one of two libraries that claim the same name
  registrar.add<probe::Adder>(probe::adder_info("twin"));
#elif PROBE_CASE == 3  // registers, then throws: nothing of it may stay registered
  registrar.add<probe::Adder>(probe::adder_info("half_registered"));
  throw std::runtime_error("calibration table missing");
#elif PROBE_CASE == 4  // a default outside its own range
  prefopt::PluginInfo info = probe::adder_info("bad_default");
  info.params = {prefopt::ParamSpec::integer("offset", -1, "what it adds").min(0)};
  registrar.add<probe::Adder>(std::move(info));
#endif
}

}  // namespace

#if PROBE_CASE == 5  // built for an incompatible SDK: API major + 1
namespace {
const ::prefopt_plugin_descriptor descriptor{PREFOPT_DESCRIPTOR_MAGIC, PREFOPT_API_MAJOR + 1, PREFOPT_API_MINOR,
                                             PREFOPT_TOOLCHAIN_FINGERPRINT, "future", register_plugins};
const ::prefopt_plugin_descriptor* entry() { return &descriptor; }
}  // namespace
BOOST_DLL_ALIAS(entry, prefopt_plugin_entry)
#elif PROBE_CASE != 6  // 6: a shared library without an entry point
PREFOPT_PLUGIN_LIBRARY("probe", register_plugins)
#endif
