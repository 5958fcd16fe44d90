// mexport plugins: where plugins are searched, what loaded, what was rejected and why.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include "commands/commands.h"
#include "export.h"
#include "mexport/lowering.h"
#include "plugin_loader.h"

namespace mexport {

namespace po = boost::program_options;

int runPluginsCommand(const CommandArgs& args) {
  po::options_description options("plugins options");
  options.add_options()("plugin-dir", po::value<std::vector<std::string>>()->default_value({}, ""),
                        "extra plugin directory");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  po::notify(vm);
  PluginLoader loader;
  Registry registry;
  registerBuiltins(registry);
  loader.loadSearchPath(registry, vm["plugin-dir"].as<std::vector<std::string>>());
  fmt::print("plugin directories searched:\n");
  for (const auto& dir : pluginSearchPath(vm["plugin-dir"].as<std::vector<std::string>>()))
    fmt::print("  {}\n", dir);
  fmt::print("loaded plugins:\n");
  for (const auto& p : loader.loaded())
    fmt::print("  {} {} ({}): {}\n", p.name, p.version, p.path, fmt::join(p.provides, ", "));
  if (loader.loaded().empty()) fmt::print("  none\n");
  fmt::print("rejected plugins:\n");
  for (const auto& r : loader.rejected()) fmt::print("  {}: {}\n", r.path, r.reason);
  if (loader.rejected().empty()) fmt::print("  none\n");
  std::vector<std::string> strategies, emitters;
  for (const auto& s : registry.strategies()) strategies.push_back(s->name());
  for (const auto& e : registry.emitters()) emitters.push_back(e->name());
  fmt::print("strategies: {}\nemitters: {}\nconverters: {} ops (mexport export --list-ops)\n",
             fmt::join(strategies, ", "), fmt::join(emitters, ", "),
             registry.converters().list().size());
  return 0;
}

}  // namespace mexport
