// The plugin registry: finds plugin libraries on the search path, checks and loads them, and
// creates plugin objects by kind and name.
//
//   PluginSearchPath path;
//   path.add(cli_plugin_path, "--plugin-path");
//   path.add_environment();                       // PREFOPT_PLUGIN_PATH
//   path.add_default();                           // <libdir>/prefopt/plugins
//   Registry registry = Registry::load(path);
//   for (const LoadProblem& p : registry.problems()) ...;   // bad libraries, reported not fatal
//   std::unique_ptr<Ensemble> e = registry.create<Ensemble>("mean", {{"lambda", 0.5}});
//
// Loading never throws for a bad library: one broken file must not hide the healthy plugins
// beside it. Libraries are loaded with RTLD_NOW (missing symbols fail at load, not mid-run) and
// RTLD_NODELETE (never unloaded: plugin objects and code outlive the registry). A plugin object
// shares ownership of its PluginInfo, so info() and its error messages stay valid after the
// registry is destroyed.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include "prefopt/plugin.h"

namespace prefopt {

struct SearchDir {
  std::filesystem::path path;  // a folder of plugin libraries, or one library file
  std::string origin;          // where it came from: "--plugin-path", "PREFOPT_PLUGIN_PATH", ...
};

class PluginSearchPath {
 public:
  // `list` is ':'-separated; empty entries are ignored. Earlier additions are searched first.
  void add(std::string_view list, const std::string& origin);
  void add_environment();  // PREFOPT_PLUGIN_PATH
  void add_default();      // the built-in plugins: <folder of libprefopt>/prefopt/plugins

  const std::vector<SearchDir>& dirs() const { return dirs_; }
  // One line per entry, "  <path> (<origin>)", marking missing folders.
  std::string describe() const;

 private:
  std::vector<SearchDir> dirs_;
};

std::filesystem::path default_plugin_dir();

struct LoadProblem {
  std::filesystem::path file;
  std::string message;  // complete: names the file, what was found and what was expected
};

// One problem found while checking a plugin's parameters.
struct ParamProblem {
  std::string key;      // the parameter's name
  std::string message;  // what is wrong, with a did-you-mean where one helps
};

// Validates `given` against `schema`: unknown keys (with did-you-mean), types, ranges and
// choices. Fills defaults for parameters not given. Returns every problem at once; `owner` names
// the schema in messages ("algorithm 'dpo'", "[train]").
std::variant<Params, std::vector<ParamProblem>> check_values(const std::vector<ParamSpec>& schema,
                                                                         const ParamMap& given, std::string_view owner);
// check_values against a plugin's schema.
std::variant<Params, std::vector<ParamProblem>> check_params(const PluginInfo& info, const ParamMap& given);

class Registry {
 public:
  static Registry load(const PluginSearchPath& path);

  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;
  ~Registry();

  // Sorted by kind, then name. With a kind, only that kind's plugins.
  std::vector<const PluginInfo*> plugins(std::optional<PluginKind> kind = std::nullopt) const;
  // Every plugin of any kind with this name (a name may exist once per kind).
  std::vector<const PluginInfo*> find_all(std::string_view name) const;
  // Throws PluginError for an unknown name (listing the kind's names, a did-you-mean and the
  // folders searched) or for a name two libraries claim.
  const PluginInfo& find(PluginKind kind, std::string_view name) const;

  // Checks the parameters (ConfigError listing every problem), creates the plugin (PluginError
  // if its constructor throws) and returns it as interface I.
  template <class I>
  std::unique_ptr<I> create(std::string_view name, const ParamMap& params = {}) const {
    std::unique_ptr<Plugin> plugin = create_plugin(I::kKind, name, params);
    return std::unique_ptr<I>(static_cast<I*>(plugin.release()));  // kind() checked
  }

  const std::vector<LoadProblem>& problems() const { return problems_; }
  const PluginSearchPath& search_path() const { return path_; }

  // An "unknown plugin" or "library failed to load" message ends with these lines.
  std::string searched_paths_note() const;

 private:
  struct Entry;
  class StagingRegistrar;
  Registry() = default;

  void load_library(const std::filesystem::path& file);
  std::unique_ptr<Plugin> create_plugin(PluginKind kind, std::string_view name,
                                        const ParamMap& params) const;

  PluginSearchPath path_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<LoadProblem> problems_;
};

}  // namespace prefopt
