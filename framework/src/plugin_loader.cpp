#include "plugin_loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <boost/dll/runtime_symbol_info.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "mexport/errors.h"
#include "mexport/lowering.h"
#include "mexport/plugin.h"

namespace mexport {

namespace fs = std::filesystem;

std::string unsafePluginPath(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";  // loading it reports why it is unusable
  const char* risk = S_ISDIR(st.st_mode) ? "add a plugin to it" : "change its code";
  const unsigned mode = st.st_mode & 07777;
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    return fmt::format("owned by uid {}, not by you or root, so that user could {}; chown it",
                       st.st_uid, risk);
  if (st.st_mode & S_IWOTH)
    return fmt::format("world-writable (mode {:04o}), so anyone could {}; run chmod o-w {}", mode,
                       risk, path);
  if ((st.st_mode & S_IWGRP) && st.st_gid != 0 && st.st_gid != ::getegid())
    return fmt::format(
        "writable by group {} (mode {:04o}), so its members could {}; run chmod g-w {}", st.st_gid,
        mode, risk, path);
  return "";
}

void PluginLoader::loadDirectory(const std::string& directory, Registry& registry) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) return;
  const std::string canonical = fs::canonical(directory, ec).string();
  if (std::find(searched_.begin(), searched_.end(), canonical) != searched_.end()) return;
  searched_.push_back(canonical);
  if (const std::string unsafe = unsafePluginPath(canonical); !unsafe.empty()) {
    reject(canonical, unsafe);
    return;
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(directory, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".so")
      files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) loadFile(file, registry);
}

void PluginLoader::loadSearchPath(Registry& registry, const std::vector<std::string>& extra_dirs) {
  for (const auto& dir : pluginSearchPath(extra_dirs)) loadDirectory(dir, registry);
}

bool PluginLoader::reject(const std::string& path, const std::string& reason) {
  rejected_.push_back({path, reason});
  return false;
}

void PluginLoader::requireAllLoaded() const {
  if (rejected_.empty()) return;
  const RejectedPlugin& r = rejected_.front();
  std::error_code ec;
  throw UsageError(fmt::format("{} {} refused: {} (`mexport plugins` lists every plugin)",
                               fs::is_directory(r.path, ec) ? "plugin directory" : "plugin", r.path,
                               r.reason));
}

bool PluginLoader::loadFile(const std::string& given_path, Registry& registry) {
  // An absolute path: dlopen then opens that file and never searches
  // LD_LIBRARY_PATH, the system directories or the working directory.
  const std::string path = fs::absolute(given_path).lexically_normal().string();
  if (const std::string unsafe = unsafePluginPath(path); !unsafe.empty())
    return reject(path, unsafe);
  boost::dll::shared_library library;
  try {
    library.load(path, boost::dll::load_mode::rtld_lazy | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return reject(path, fmt::format("cannot be loaded: {}", e.what()));
  }
  if (!library.has(MEXPORT_PLUGIN_ENTRY_POINT))
    return reject(path, "has no " MEXPORT_PLUGIN_ENTRY_POINT
                        "() entry point; define it with MEXPORT_PLUGIN(...)");
  const auto entry = library.get<const MexportPluginDescriptor*()>(MEXPORT_PLUGIN_ENTRY_POINT);
  // Keep the library loaded whatever happens next: anything it made must not
  // outlive its code.
  libraries_.push_back(library);

  const MexportPluginDescriptor* d = entry();
  if (d == nullptr) return reject(path, "entry point returned no descriptor");
  if (d->abi_version != MEXPORT_PLUGIN_ABI_VERSION)
    return reject(
        path,
        fmt::format("built for plugin ABI {}, this mexport has ABI {}; rebuild it against this SDK",
                    d->abi_version, MEXPORT_PLUGIN_ABI_VERSION));
  if (d->struct_size < sizeof(MexportPluginDescriptor))
    return reject(path,
                  fmt::format("descriptor is {} bytes, expected {}; rebuild it against this SDK",
                              d->struct_size, sizeof(MexportPluginDescriptor)));
  if (d->name == nullptr || d->version == nullptr || d->torch_version == nullptr)
    return reject(path, "descriptor lacks a name, version or torch version");
  if (std::string(d->torch_version) != MEXPORT_TORCH_VERSION)
    return reject(path,
                  fmt::format("plugin '{}' was built against torch {}, this mexport uses torch {}",
                              d->name, d->torch_version, MEXPORT_TORCH_VERSION));
  if (d->register_fn == nullptr)
    return reject(path, fmt::format("plugin '{}' has no register function", d->name));

  // The plugin registers into a registry of its own, merged only on success.
  Registry staging;
  char error[512] = {0};
  if (d->register_fn(&staging, error, sizeof error) != 0)
    return reject(path, fmt::format("plugin '{}' failed to register: {}", d->name,
                                    error[0] ? error : "no reason given"));
  LoadedPlugin plugin{d->name, d->version, path, {}};
  for (const auto& s : staging.strategies()) plugin.provides.push_back("strategy " + s->name());
  for (const auto& e : staging.emitters()) plugin.provides.push_back("emitter " + e->name());
  for (const Converter* c : staging.converters().list())
    plugin.provides.push_back("converter " + c->op);
  try {
    registry.merge(std::move(staging));
  } catch (const std::invalid_argument& e) {
    return reject(path, fmt::format("plugin '{}': {}", d->name, e.what()));
  }
  loaded_.push_back(std::move(plugin));
  return true;
}

std::vector<std::string> pluginSearchPath(const std::vector<std::string>& extra) {
  std::vector<std::string> dirs;
  const fs::path program = boost::dll::program_location().parent_path().string();
  // The build tree's plugins serve the build tree's binary only: an installed
  // mexport must not load, or be shadowed by, a build directory's plugins.
  std::error_code ec;
  if (fs::equivalent(program, fs::path(MEXPORT_BUILD_PLUGIN_DIR).parent_path(), ec))
    dirs.push_back(MEXPORT_BUILD_PLUGIN_DIR);
  dirs.push_back((program.parent_path() / "lib" / "mexport" / "plugins").string());
  if (const char* env = std::getenv("MEXPORT_PLUGIN_PATH")) {
    std::string list = env;
    for (size_t start = 0; start <= list.size();) {
      size_t end = list.find(':', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) dirs.push_back(list.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  return dirs;
}

}  // namespace mexport
