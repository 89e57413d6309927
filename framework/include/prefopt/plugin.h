// The plugin SDK: what a plugin library exports and how its plugins register.
//
// A plugin library exports exactly one C entry point, `prefopt_plugin_entry`, that returns a plain
// descriptor (API version, toolchain fingerprint, registration callback). prefopt reads and checks
// the descriptor before it calls any C++ code of the library, then calls the callback, in which
// the library registers each of its plugins explicitly:
//
//   #include <prefopt/ensemble.h>
//
//   class Median final : public prefopt::Ensemble {
//    public:
//     explicit Median(const prefopt::Params&) {}
//    protected:
//     at::Tensor do_combine(const at::Tensor& scores) const override {
//       return std::get<0>(scores.median(0));
//     }
//   };
//
//   void register_plugins(prefopt::Registrar& registrar) {
//     registrar.add<Median>({.name = "median", .version = "1.0.0",
//                            .description = "median of the members' scores"});
//   }
//
//   PREFOPT_PLUGIN_LIBRARY("median-ensemble", register_plugins)
//
// Libraries are never unloaded, so objects and code from a plugin stay valid for the whole process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/dll/alias.hpp>

#include "prefopt/error.h"
#include "prefopt/params.h"
#include "prefopt/version.h"

namespace prefopt {

enum class PluginKind { algorithm, reward_model, annotator, ensemble, task };

inline constexpr PluginKind kAllPluginKinds[] = {PluginKind::algorithm, PluginKind::reward_model,
                                                 PluginKind::annotator, PluginKind::ensemble,
                                                 PluginKind::task};

PREFOPT_API const char* to_string(PluginKind kind);  // "algorithm", "reward_model", ...
PREFOPT_API std::optional<PluginKind> parse_plugin_kind(std::string_view text);

struct PluginInfo;

// Base of every plugin interface. Interfaces (Ensemble, ...) follow the non-virtual-interface
// pattern: their public methods are non-virtual and call the protected virtual implementation
// through guarded(), so every call into plugin code turns an escaping exception into a
// PluginError naming the plugin. Callers cannot bypass the guard.
class PREFOPT_API Plugin {
 public:
  virtual ~Plugin();
  Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // The interface this object implements; prefopt checks it instead of a dynamic_cast, which is
  // unreliable across shared-library boundaries.
  virtual PluginKind kind() const = 0;
  // "ensemble 'mean'" once created by the registry, "unregistered ensemble" otherwise.
  std::string display_name() const;
  // What the plugin was registered with; null for an object the registry did not create. The
  // object shares ownership of it, so it stays valid after the registry is gone.
  const PluginInfo* info() const { return info_.get(); }

 protected:
  template <class F>
  decltype(auto) guarded(F&& call) const {
    try {
      return call();
    } catch (const PluginError&) {
      throw;
    } catch (const Stopped&) {
      throw;
    } catch (const StorageError&) {  // the disk's fault, not the plugin's
      throw;
    } catch (const std::exception& e) {
      throw_plugin_failure(e.what());
    } catch (...) {
      throw_plugin_failure("unknown exception");
    }
  }

 private:
  friend class Registry;
  [[noreturn]] void throw_plugin_failure(const char* what) const;
  std::shared_ptr<const PluginInfo> info_;
};

using PluginFactory = std::function<std::unique_ptr<Plugin>(const Params&)>;

// What a plugin declares about itself; `prefopt plugins show` prints all of it.
struct PluginInfo {
  std::string name;         // unique within its kind: [a-z0-9_]+
  std::string version;      // the plugin's own version, e.g. "1.0.0"
  std::string description;  // one line
  std::vector<ParamSpec> params = {};
  PluginKind kind = PluginKind::algorithm;  // set by Registrar::add from the interface
  std::string library = {};                 // set by prefopt: the file the plugin came from
};

class PREFOPT_API Registrar {
 public:
  virtual ~Registrar();

  // T implements one plugin interface (T::kKind) and has a constructor T(const Params&).
  template <class T>
  void add(PluginInfo info) {
    info.kind = T::kKind;
    add(std::move(info), [](const Params& params) -> std::unique_ptr<Plugin> {
      return std::make_unique<T>(params);
    });
  }

  // Throws PluginError when the info is malformed (bad name, duplicate parameter, a default
  // that violates its own constraint).
  virtual void add(PluginInfo info, PluginFactory factory) = 0;
};

}  // namespace prefopt

// The plain descriptor at the C boundary. Fields are only ever appended; `magic` tells a
// prefopt descriptor from an unrelated symbol of the same name.
extern "C" {
struct prefopt_plugin_descriptor {
  std::uint32_t magic;
  std::uint32_t api_major;
  std::uint32_t api_minor;
  const char* toolchain;  // PREFOPT_TOOLCHAIN_FINGERPRINT as the library was compiled
  const char* library;    // the library's own name, for messages
  void (*register_plugins)(prefopt::Registrar&);
};
}

#define PREFOPT_DESCRIPTOR_MAGIC 0x70726566u /* "pref" */
#define PREFOPT_ENTRY_SYMBOL "prefopt_plugin_entry"

// Defines the library's descriptor and exports it as `prefopt_plugin_entry`. Use once per library.
#define PREFOPT_PLUGIN_LIBRARY(library_name, register_fn)                                \
  namespace {                                                                            \
  const ::prefopt_plugin_descriptor prefopt_descriptor_{                                 \
      PREFOPT_DESCRIPTOR_MAGIC, PREFOPT_API_MAJOR, PREFOPT_API_MINOR,                    \
      PREFOPT_TOOLCHAIN_FINGERPRINT, library_name, register_fn};                         \
  const ::prefopt_plugin_descriptor* prefopt_plugin_entry_impl() { return &prefopt_descriptor_; } \
  }                                                                                      \
  BOOST_DLL_ALIAS(prefopt_plugin_entry_impl, prefopt_plugin_entry)
