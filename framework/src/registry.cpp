#include "registry.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <regex>
#include <set>

#include "elf_check.h"
#include "text.h"

namespace prefopt {
namespace fs = std::filesystem;

struct Registry::Entry {
  // Shared with every plugin object created from it (Plugin::info()), which may outlive the registry.
  std::shared_ptr<const PluginInfo> info;
  PluginFactory factory;
  std::vector<std::string> rival_libraries;  // later libraries that claimed the same kind/name
};

// Collects one library's registrations; they join the registry only if the callback completes.
class Registry::StagingRegistrar final : public Registrar {
 public:
  void add(PluginInfo info, PluginFactory factory) override {
    static const std::regex kName("[a-z][a-z0-9_]*");
    if (!std::regex_match(info.name, kName))
      throw PluginError(fmt::format("plugin name '{}' is invalid: use lower-case letters, digits "
                                    "and '_', starting with a letter", info.name));
    if (!parse_plugin_kind(to_string(info.kind)))
      throw PluginError(fmt::format("plugin '{}' has an invalid kind", info.name));
    if (info.version.empty()) throw PluginError(fmt::format("plugin '{}' has no version", info.name));
    if (!factory) throw PluginError(fmt::format("plugin '{}' has no factory", info.name));
    std::set<std::string> seen;
    for (const ParamSpec& spec : info.params) {
      if (!std::regex_match(spec.name(), kName))
        throw PluginError(fmt::format("plugin '{}': parameter name '{}' is invalid", info.name,
                                      spec.name()));
      if (!seen.insert(spec.name()).second)
        throw PluginError(fmt::format("plugin '{}' declares parameter '{}' twice", info.name,
                                      spec.name()));
      const auto accepted = spec.accept(spec.default_value());
      if (const auto* problem = std::get_if<std::string>(&accepted))
        throw PluginError(fmt::format("plugin '{}': the default of parameter '{}' is invalid: {}",
                                      info.name, spec.name(), *problem));
    }
    for (const auto& [staged, unused] : staged_)
      if (staged.kind == info.kind && staged.name == info.name)
        throw PluginError(fmt::format("{} '{}' is registered twice", to_string(info.kind), info.name));
    staged_.emplace_back(std::move(info), std::move(factory));
  }

  std::vector<std::pair<PluginInfo, PluginFactory>> staged_;
};

namespace {

// "compiler=gcc-12;cxx11abi=1" -> the differing parts, "libtorch: 2.1.0 (plugin) vs 1.13.0 (prefopt)".
std::string describe_fingerprint_difference(std::string_view plugin, std::string_view host) {
  auto parse = [](std::string_view text) {
    std::map<std::string, std::string> parts;
    for (std::size_t start = 0; start <= text.size();) {
      std::size_t end = text.find(';', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view part = text.substr(start, end - start);
      std::size_t eq = part.find('=');
      if (!part.empty())
        parts[std::string(part.substr(0, eq))] =
            eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1));
      start = end + 1;
    }
    return parts;
  };
  const auto ours = parse(host);
  const auto theirs = parse(plugin);
  std::vector<std::string> differences;
  for (const auto& [key, value] : ours) {
    auto it = theirs.find(key);
    const std::string other = it == theirs.end() ? "(missing)" : it->second;
    if (other != value) differences.push_back(fmt::format("{} {} (plugin) vs {} (prefopt)", key, other, value));
  }
  for (const auto& [key, value] : theirs)
    if (!ours.contains(key)) differences.push_back(fmt::format("unexpected '{}={}'", key, value));
  return join(differences, ", ");
}

bool is_plugin_file(const fs::directory_entry& entry) {
  std::error_code error;
  return entry.is_regular_file(error) && entry.path().extension() == ".so";
}

}  // namespace

void PluginSearchPath::add(std::string_view list, const std::string& origin) {
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(':', start);
    if (end == std::string_view::npos) end = list.size();
    if (end > start) dirs_.push_back({fs::path(list.substr(start, end - start)), origin});
    start = end + 1;
  }
}

void PluginSearchPath::add_environment() {
  if (const char* value = std::getenv("PREFOPT_PLUGIN_PATH")) add(value, "PREFOPT_PLUGIN_PATH");
}

void PluginSearchPath::add_default() { dirs_.push_back({default_plugin_dir(), "built-in plugins"}); }

std::string PluginSearchPath::describe() const {
  std::string out;
  for (const SearchDir& dir : dirs_) {
    std::error_code error;
    out += fmt::format("    {} ({}{})\n", dir.path.string(), dir.origin,
                       fs::exists(dir.path, error) ? "" : ", does not exist");
  }
  return out;
}

// The built-in plugins sit beside libprefopt, the SDK they link, in the build tree as installed.
fs::path default_plugin_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&version_string), &info) == 0 || info.dli_fname == nullptr)
    return "/usr/local/lib/prefopt/plugins";
  std::error_code error;
  fs::path library = fs::canonical(info.dli_fname, error);
  if (error) library = info.dli_fname;
  return library.parent_path() / "prefopt" / "plugins";
}

std::variant<Params, std::vector<ParamProblem>> check_values(const std::vector<ParamSpec>& schema,
                                                             const ParamMap& given, std::string_view owner) {
  std::vector<std::string> names;
  for (const ParamSpec& spec : schema) names.push_back(spec.name());

  std::vector<ParamProblem> problems;
  ParamMap values;
  for (const auto& [key, value] : given) {
    auto spec = std::find_if(schema.begin(), schema.end(), [&](const ParamSpec& s) { return s.name() == key; });
    if (spec == schema.end()) {
      problems.push_back({key, fmt::format("unknown parameter of {}{}; it has {}", owner, did_you_mean(key, names),
                                           names.empty() ? "no parameters" : "parameters " + join(names, ", "))});
      continue;
    }
    auto accepted = spec->accept(value);
    if (auto* problem = std::get_if<std::string>(&accepted))
      problems.push_back({key, *problem});
    else
      values.emplace(key, std::get<ParamValue>(std::move(accepted)));
  }
  if (!problems.empty()) return problems;
  for (const ParamSpec& spec : schema) values.try_emplace(spec.name(), spec.default_value());
  return Params(std::move(values));
}

std::variant<Params, std::vector<ParamProblem>> check_params(const PluginInfo& info, const ParamMap& given) {
  return check_values(info.params, given, fmt::format("{} '{}'", to_string(info.kind), info.name));
}

Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;
Registry::~Registry() = default;

Registry Registry::load(const PluginSearchPath& path) {
  Registry registry;
  registry.path_ = path;
  std::set<fs::path> seen;  // a folder listed twice is scanned once
  for (const SearchDir& dir : path.dirs()) {
    std::error_code error;
    std::vector<fs::path> files;
    if (fs::is_directory(dir.path, error)) {
      for (const auto& entry : fs::directory_iterator(dir.path, error))
        if (is_plugin_file(entry)) files.push_back(entry.path());
      std::sort(files.begin(), files.end());
    } else if (fs::is_regular_file(dir.path, error)) {
      files.push_back(dir.path);
    }
    for (const fs::path& file : files) {
      fs::path canonical = fs::weakly_canonical(file, error);
      if (seen.insert(error ? file : canonical).second) registry.load_library(file);
    }
  }
  return registry;
}

namespace {

// Why code in `file` is not loaded: anyone on the machine could have written it. A library or its
// folder writable by every user, or a library another user (not root) put in a shared folder
// whose sticky bit (/tmp's) lets everyone add files. A folder only its owner writes is trusted as
// PATH is: naming it is trusting that user.
std::optional<std::string> writable_by_anyone(const fs::path& file) {
  struct stat library {}, folder {};
  const fs::path parent = fs::absolute(file).parent_path();
  if (::stat(file.c_str(), &library) != 0 || ::stat(parent.c_str(), &folder) != 0) return std::nullopt;
  if (library.st_mode & S_IWOTH)
    return fmt::format("is writable by every user, so anyone could have put code in it; not loaded (chmod o-w {})",
                       file.string());
  if ((folder.st_mode & S_IWOTH) && !(folder.st_mode & S_ISVTX))
    return fmt::format("is in {}, a folder writable by every user, so anyone could have replaced it; not loaded "
                       "(chmod o-w {}, or move the library)",
                       parent.string(), parent.string());
  if ((folder.st_mode & S_IWOTH) && library.st_uid != ::geteuid() && library.st_uid != 0)
    return fmt::format("belongs to another user (uid {}) in {}, a folder every user may add files to; not loaded "
                       "(move the library to a folder you or root own)",
                       library.st_uid, parent.string());
  return std::nullopt;
}

}  // namespace

void Registry::load_library(const fs::path& file) {
  auto fail = [&](const std::string& what) {
    problems_.push_back({file, fmt::format("plugin library {}: {}", file.string(), what)});
  };
  if (auto problem = writable_by_anyone(file)) return fail(*problem);
  if (auto problem = check_elf_shared_object(file)) return fail(*problem);

  boost::dll::shared_library library;
  try {
    // RTLD_NODELETE: never unmapped, so plugin code and objects stay valid for the whole process.
    library.load(boost::dll::fs::path(file.string()),
                 static_cast<boost::dll::load_mode::type>(RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
  } catch (const std::exception& e) {
    return fail(fmt::format("cannot be loaded: {}", e.what()));
  }
  if (!library.has(PREFOPT_ENTRY_SYMBOL))
    return fail(fmt::format(
        "exports no '{}' entry point, so it is not a prefopt plugin library; expected one "
        "defined by PREFOPT_PLUGIN_LIBRARY (prefopt_add_plugin in CMake sets up the build)",
        PREFOPT_ENTRY_SYMBOL));
  const auto* descriptor = library.get_alias<const prefopt_plugin_descriptor*()>(PREFOPT_ENTRY_SYMBOL)();
  if (descriptor == nullptr || descriptor->magic != PREFOPT_DESCRIPTOR_MAGIC)
    return fail(fmt::format("its '{}' entry point returned no prefopt descriptor", PREFOPT_ENTRY_SYMBOL));
  if (descriptor->api_major != PREFOPT_API_MAJOR)
    return fail(fmt::format(
        "was built for prefopt SDK API {}.{}, but this prefopt provides API {}.{} and major "
        "versions must match; rebuild the plugin against this prefopt's SDK",
        descriptor->api_major, descriptor->api_minor, PREFOPT_API_MAJOR, PREFOPT_API_MINOR));
  if (descriptor->api_minor > PREFOPT_API_MINOR)
    return fail(fmt::format(
        "was built for prefopt SDK API {}.{}, newer than this prefopt's API {}.{}; upgrade "
        "prefopt or rebuild the plugin against this prefopt's SDK",
        descriptor->api_major, descriptor->api_minor, PREFOPT_API_MAJOR, PREFOPT_API_MINOR));
  const std::string toolchain = descriptor->toolchain ? descriptor->toolchain : "";
  if (toolchain != host_toolchain_fingerprint())
    return fail(fmt::format(
        "was built with a different toolchain: {}; expected '{}', found '{}'; rebuild it with "
        "the compiler, libtorch and build type prefopt was built with",
        describe_fingerprint_difference(toolchain, host_toolchain_fingerprint()),
        host_toolchain_fingerprint(), toolchain));
  if (descriptor->register_plugins == nullptr) return fail("its descriptor has no registration callback");

  StagingRegistrar staging;
  try {
    descriptor->register_plugins(staging);
  } catch (const std::exception& e) {
    return fail(fmt::format("its registration callback failed, so none of its plugins were "
                            "registered: {}", e.what()));
  } catch (...) {
    return fail("its registration callback threw an unknown exception, so none of its plugins "
                "were registered");
  }

  for (auto& [info, factory] : staging.staged_) {
    info.library = file.string();
    auto existing = std::find_if(entries_.begin(), entries_.end(), [&](const auto& entry) {
      return entry->info->kind == info.kind && entry->info->name == info.name;
    });
    if (existing != entries_.end()) {
      (*existing)->rival_libraries.push_back(file.string());
      fail(fmt::format("registers {} '{}', which {} already provides; rename one of the plugins "
                       "or remove one of the libraries from the plugin path",
                       to_string(info.kind), info.name, (*existing)->info->library));
      continue;
    }
    entries_.push_back(std::make_unique<Entry>(Entry{std::make_shared<const PluginInfo>(std::move(info)), std::move(factory), {}}));
  }
}

std::vector<const PluginInfo*> Registry::plugins(std::optional<PluginKind> kind) const {
  std::vector<const PluginInfo*> out;
  for (const auto& entry : entries_)
    if (!kind || entry->info->kind == *kind) out.push_back(entry->info.get());
  std::sort(out.begin(), out.end(), [](const PluginInfo* a, const PluginInfo* b) {
    return std::tie(a->kind, a->name) < std::tie(b->kind, b->name);
  });
  return out;
}

std::vector<const PluginInfo*> Registry::find_all(std::string_view name) const {
  std::vector<const PluginInfo*> out;
  for (const PluginInfo* info : plugins())
    if (info->name == name) out.push_back(info);
  return out;
}

std::string Registry::searched_paths_note() const {
  std::string note = "  plugin search path:\n" + path_.describe();
  if (!problems_.empty())
    note += fmt::format("  {} plugin librar{} failed to load; `prefopt plugins list` shows why\n",
                        problems_.size(), problems_.size() == 1 ? "y" : "ies");
  note.pop_back();  // the final newline
  return note;
}

const PluginInfo& Registry::find(PluginKind kind, std::string_view name) const {
  for (const auto& entry : entries_) {
    if (entry->info->kind != kind || entry->info->name != name) continue;
    if (!entry->rival_libraries.empty())
      throw PluginError(fmt::format("{} '{}' is provided by several libraries: {}, {}; remove all "
                                    "but one from the plugin path",
                                    to_string(kind), name, entry->info->library,
                                    join(entry->rival_libraries, ", ")));
    return *entry->info;
  }
  std::vector<std::string> names;
  for (const PluginInfo* info : plugins(kind)) names.push_back(info->name);
  std::string message = fmt::format("unknown {} '{}'{}\n  known {} plugins: {}\n", to_string(kind),
                                    name, did_you_mean(name, names), to_string(kind),
                                    names.empty() ? "none" : join(names, ", "));
  for (const PluginInfo* other : find_all(name))
    message += fmt::format("  note: '{}' is a plugin of kind {}\n", name, to_string(other->kind));
  throw PluginError(message + searched_paths_note());
}

std::unique_ptr<Plugin> Registry::create_plugin(PluginKind kind, std::string_view name,
                                                const ParamMap& given) const {
  const PluginInfo& info = find(kind, name);
  auto checked = check_params(info, given);
  if (auto* problems = std::get_if<std::vector<ParamProblem>>(&checked)) {
    std::string message = fmt::format("invalid parameters for {} '{}':", to_string(kind), name);
    for (const ParamProblem& problem : *problems)
      message += fmt::format("\n  {}: {}", problem.key, problem.message);
    throw ConfigError(message);
  }
  const auto& entry = *std::find_if(entries_.begin(), entries_.end(),
                                    [&](const auto& e) { return e->info.get() == &info; });
  std::unique_ptr<Plugin> plugin;
  try {
    plugin = entry->factory(std::get<Params>(checked));
  } catch (const ConfigError& e) {  // the plugin rejects a combination of valid parameters
    throw ConfigError(fmt::format("invalid parameters for {} '{}': {}", to_string(kind), name, e.what()));
  } catch (const std::exception& e) {
    throw PluginError(fmt::format("creating {} '{}' (from {}) failed: {}", to_string(kind), name,
                                  info.library, e.what()));
  }
  if (plugin == nullptr || plugin->kind() != kind)
    throw PluginError(fmt::format("{} '{}' (from {}) created an object of the wrong kind",
                                  to_string(kind), name, info.library));
  plugin->info_ = entry->info;
  return plugin;
}

}  // namespace prefopt
