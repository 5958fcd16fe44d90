#include "plugin_loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "mexport/errors.h"
#include "mexport/lowering.h"
#include "mexport/plugin.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;

std::string fixture(const std::string& name) {
  return std::string(FIXTURE_PLUGIN_DIR) + "/libfixture_" + name + ".so";
}

// A fresh directory (mode 0755) holding a copy of the good fixture plugin (mode 0755).
fs::path directoryWithGoodPlugin(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mexport_plugins_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms(0755));
  fs::copy_file(fixture("good_strategy"), dir / "libgood.so");
  fs::permissions(dir / "libgood.so", fs::perms(0755));
  return dir;
}

std::string rejection(const PluginLoader& loader, const std::string& path) {
  for (const auto& r : loader.rejected())
    if (r.path == path) return r.reason;
  return "";
}

TEST(PluginLoader, LoadsAGoodPluginAndRecordsWhatItProvides) {
  PluginLoader loader;
  Registry registry;
  ASSERT_TRUE(loader.loadFile(fixture("good_strategy"), registry))
      << rejection(loader, fixture("good_strategy"));
  ASSERT_NE(registry.strategy("fixture-root"), nullptr);
  ASSERT_EQ(loader.loaded().size(), 1u);
  EXPECT_EQ(loader.loaded()[0].name, "fixture-good");
  EXPECT_EQ(loader.loaded()[0].version, "1.2.3");
  EXPECT_EQ(loader.loaded()[0].provides, std::vector<std::string>{"strategy fixture-root"});
}

TEST(PluginLoader, RejectsBadPluginsWithOneLineReasonsAndCarriesOn) {
  PluginLoader loader;
  Registry registry;
  EXPECT_FALSE(loader.loadFile(fixture("wrong_abi"), registry));
  EXPECT_NE(rejection(loader, fixture("wrong_abi"))
                .find("plugin ABI " + std::to_string(MEXPORT_PLUGIN_ABI_VERSION + 1)),
            std::string::npos);
  EXPECT_FALSE(loader.loadFile(fixture("no_entry_point"), registry));
  EXPECT_NE(rejection(loader, fixture("no_entry_point"))
                .find("no mexport_plugin_descriptor() entry point"),
            std::string::npos);
  EXPECT_FALSE(loader.loadFile(fixture("wrong_torch"), registry));
  EXPECT_NE(rejection(loader, fixture("wrong_torch")).find("built against torch 0.0.1"),
            std::string::npos);
  EXPECT_FALSE(loader.loadFile(fixture("failing_register"), registry));
  EXPECT_NE(rejection(loader, fixture("failing_register")).find("fixture refuses to register"),
            std::string::npos);
  // What the failing plugin registered before throwing is not kept.
  EXPECT_EQ(registry.converters().find("fixture::half_registered", 17), nullptr);
  EXPECT_FALSE(loader.loadFile("/nonexistent/libmissing.so", registry));
  for (const auto& r : loader.rejected())
    EXPECT_EQ(r.reason.find('\n'), std::string::npos) << r.reason;
  // The loader still works after all that.
  EXPECT_TRUE(loader.loadFile(fixture("good_strategy"), registry));
}

TEST(PluginLoader, RejectsADuplicateNameWithoutTouchingTheRegistry) {
  PluginLoader loader;
  Registry registry;
  ASSERT_TRUE(loader.loadFile(MEXPORT_HTP_PLUGIN, registry));
  EXPECT_FALSE(loader.loadFile(fixture("duplicate_strategy"), registry));
  EXPECT_NE(
      rejection(loader, fixture("duplicate_strategy")).find("strategy 'htp' is already registered"),
      std::string::npos);
  EXPECT_EQ(registry.strategies().size(), 1u);
}

TEST(PluginLoader, DirectoryLoadsEveryPluginOnce) {
  PluginLoader loader;
  Registry registry;
  loader.loadDirectory(FIXTURE_PLUGIN_DIR, registry);
  loader.loadDirectory(FIXTURE_PLUGIN_DIR, registry);
  EXPECT_EQ(loader.loaded().size(), 2u);    // good_strategy and duplicate_strategy (no htp here)
  EXPECT_EQ(loader.rejected().size(), 4u);  // wrong ABI, no entry point, failing, wrong torch
}

TEST(PluginLoader, RefusesAWorldWritablePluginFile) {
  const fs::path dir = directoryWithGoodPlugin("world_file");
  const std::string plugin = (dir / "libgood.so").string();
  fs::permissions(plugin, fs::perms(0757));
  PluginLoader loader;
  Registry registry;
  EXPECT_FALSE(loader.loadFile(plugin, registry));
  EXPECT_EQ(rejection(loader, plugin),
            "world-writable (mode 0757), so anyone could change its code; run chmod o-w " + plugin);
  EXPECT_EQ(registry.strategy("fixture-root"), nullptr);
  fs::permissions(plugin, fs::perms(0755));
  EXPECT_TRUE(loader.loadFile(plugin, registry)) << rejection(loader, plugin);
  fs::remove_all(dir);
}

// The loaders outlive their registries, as plugin_loader.h requires.
TEST(PluginLoader, RefusesAWorldWritableDirectoryWhole) {
  const fs::path dir = directoryWithGoodPlugin("world_dir");
  PluginLoader loader, sticky_loader, safe_loader;
  Registry registry, sticky_registry, safe_registry;
  fs::permissions(dir, fs::perms(0777));
  loader.loadDirectory(dir.string(), registry);
  EXPECT_TRUE(loader.loaded().empty());
  ASSERT_EQ(loader.rejected().size(), 1u);  // the directory, not the plugin in it
  EXPECT_EQ(loader.rejected()[0].path, fs::canonical(dir).string());
  EXPECT_NE(loader.rejected()[0].reason.find("world-writable (mode 0777), so anyone could add a "
                                             "plugin to it; run chmod o-w "),
            std::string::npos);
  // The sticky bit (as on /tmp) does not help: anyone may still add a file.
  fs::permissions(dir, fs::perms(01777));
  sticky_loader.loadDirectory(dir.string(), sticky_registry);
  EXPECT_TRUE(sticky_loader.loaded().empty());
  fs::permissions(dir, fs::perms(0755));
  safe_loader.loadDirectory(dir.string(), safe_registry);
  EXPECT_EQ(safe_loader.loaded().size(), 1u);
  fs::remove_all(dir);
}

// Group-writable is refused unless the group is root's or the user's own
// (user private groups, umask 002); a file another user owns is refused
// whatever its mode. Changing a file's owner or group needs root.
TEST(PluginLoader, RefusesFilesOthersCanChange) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown to another user and group needs root";
  const fs::path dir = directoryWithGoodPlugin("others");
  const std::string plugin = (dir / "libgood.so").string();
  const gid_t other_group = 54321;
  const uid_t other_user = 54321;
  PluginLoader loader, other_loader;
  Registry registry;
  ASSERT_EQ(::chown(plugin.c_str(), 0, other_group), 0);
  fs::permissions(plugin, fs::perms(0775));
  EXPECT_FALSE(loader.loadFile(plugin, registry));
  const std::string expected =
      "writable by group 54321 (mode 0775), so its members could change its code; run chmod g-w ";
  EXPECT_EQ(rejection(loader, plugin), expected + plugin);
  ASSERT_EQ(::chown(plugin.c_str(), 0, ::getegid()), 0);
  EXPECT_TRUE(loader.loadFile(plugin, registry)) << rejection(loader, plugin);

  ASSERT_EQ(::chown(plugin.c_str(), other_user, ::getegid()), 0);
  fs::permissions(plugin, fs::perms(0755));
  EXPECT_FALSE(other_loader.loadFile(plugin, registry));
  EXPECT_EQ(rejection(other_loader, plugin),
            "owned by uid 54321, not by you or root, so that user could change its code; chown it");
  fs::remove_all(dir);
}

// dlopen searches LD_LIBRARY_PATH, the system directories and, for some
// names, the working directory unless the path has a slash; the loader
// makes every path absolute first, so a bare name means a file in the working
// directory and nothing else.
TEST(PluginLoader, LoadsByAbsolutePathNeverBySearch) {
  const fs::path dir = directoryWithGoodPlugin("absolute");
  const fs::path previous = fs::current_path();
  fs::current_path(dir);
  PluginLoader loader;
  Registry registry;
  EXPECT_TRUE(loader.loadFile("libgood.so", registry));
  ASSERT_EQ(loader.loaded().size(), 1u);
  EXPECT_EQ(loader.loaded()[0].path, (dir / "libgood.so").string());
  // A system library that dlopen("libz.so.1") would find: not in this directory.
  EXPECT_FALSE(loader.loadFile("libz.so.1", registry));
  EXPECT_NE(rejection(loader, (dir / "libz.so.1").string()).find("cannot be loaded"),
            std::string::npos);
  fs::current_path(previous);
  fs::remove_all(dir);
}

TEST(PluginLoader, RequireAllLoadedNamesTheFirstRefusedPlugin) {
  PluginLoader loader;
  Registry registry;
  loader.loadFile(fixture("good_strategy"), registry);
  EXPECT_NO_THROW(loader.requireAllLoaded());
  loader.loadFile(fixture("wrong_abi"), registry);
  loader.loadFile(fixture("failing_register"), registry);
  try {
    loader.requireAllLoaded();
    FAIL() << "a refused plugin must stop the command";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("plugin " + fixture("wrong_abi") + " refused: built for plugin ABI", 0),
              0u)
        << message;
    EXPECT_EQ(message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace mexport
