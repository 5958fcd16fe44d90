#include "plugin_loader.h"

#include <gtest/gtest.h>

#include "mexport/lowering.h"

namespace mexport {
namespace {

std::string fixture(const std::string& name) {
  return std::string(FIXTURE_PLUGIN_DIR) + "/libfixture_" + name + ".so";
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
  EXPECT_NE(rejection(loader, fixture("wrong_abi")).find("plugin ABI 2"), std::string::npos);
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

}  // namespace
}  // namespace mexport
