// Finds and loads plugin shared objects into the host's registry. A bad plugin
// is rejected with a one-line reason and loading carries on. Libraries stay
// loaded until the loader is destroyed, which must be after every object they
// created: declare the loader before the registry.
#pragma once

#include <boost/dll/shared_library.hpp>

#include <string>
#include <vector>

#include "mexport/registry.h"

namespace mexport {

struct LoadedPlugin {
  std::string name;
  std::string version;
  std::string path;
  std::vector<std::string> provides;  // "strategy htp", "emitter graphml", "converter aten::foo"
};

struct RejectedPlugin {
  std::string path;
  std::string reason;
};

class PluginLoader {
 public:
  // Loads every *.so in `directory` (sorted by name); a missing directory is
  // skipped, an unsafe one (unsafePluginPath) rejected whole.
  void loadDirectory(const std::string& directory, Registry& registry);
  // Returns false (and records why) when the plugin is rejected. The file is
  // loaded by its absolute path, never searched for.
  bool loadFile(const std::string& path, Registry& registry);
  // Loads every directory of pluginSearchPath(extra_dirs).
  void loadSearchPath(Registry& registry, const std::vector<std::string>& extra_dirs);
  // Throws UsageError naming the first rejected plugin: a command that does
  // work runs with every plugin it was given, or not at all. (`mexport
  // plugins` lists the rejected ones instead.)
  void requireAllLoaded() const;

  const std::vector<LoadedPlugin>& loaded() const { return loaded_; }
  const std::vector<RejectedPlugin>& rejected() const { return rejected_; }
  const std::vector<std::string>& searched() const { return searched_; }

 private:
  bool reject(const std::string& path, const std::string& reason);

  std::vector<boost::dll::shared_library> libraries_;
  std::vector<LoadedPlugin> loaded_;
  std::vector<RejectedPlugin> rejected_;
  std::vector<std::string> searched_;
};

// Why a plugin file or directory must not be used, or "" when it may. Like
// ssh and sudo, mexport refuses a path that someone other than root and this
// user can change: owned by another user, world-writable, or writable by a
// group other than root's and the user's own. A plugin runs as native code
// with the user's rights, so whoever can change it can act as the user.
std::string unsafePluginPath(const std::string& path);

// The plugin directories in search order: the build tree's, the install's
// lib/mexport/plugins, $MEXPORT_PLUGIN_PATH (colon-separated), then `extra`
// (config plugins.paths, --plugin-dir).
std::vector<std::string> pluginSearchPath(const std::vector<std::string>& extra);

}  // namespace mexport
