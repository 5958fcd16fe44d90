// mexport export: one export from a config or from the command line.

#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands/commands.h"
#include "commands/progress_display.h"
#include "config.h"
#include "export.h"
#include "mexport/lowering.h"
#include "plugin_loader.h"

namespace mexport {
namespace {

namespace po = boost::program_options;

void listOps(const Registry& registry) {
  std::string family;
  for (const Converter* c : registry.converters().list()) {
    if (c->family != family) fmt::print("{}{}:\n", family.empty() ? "" : "\n", family = c->family);
    fmt::print("  {:<32} since opset {}\n", c->op, c->since_opset);
  }
}

}  // namespace

int runExportCommand(const CommandArgs& args) {
  po::options_description options("export options");
  options.add_options()("config", po::value<std::string>(), "YAML export config")(
      "strategy", po::value<std::string>(), "tagging strategy: auto or a loaded strategy")(
      "model", po::value<std::string>(), "TorchScript .pt file (overrides model.path)")(
      "output", po::value<std::string>(), "ONNX file to write (overrides export.output)")(
      "opset", po::value<int>(), "ONNX opset, 14 to 17")(
      "input", po::value<std::vector<std::string>>(),
      "NAME:1x16:int64, in forward() order (no-config form)")(
      "with-graphml", po::bool_switch(), "also write the hierarchical GraphML (graphml plugin)")(
      "clean-onnx", po::bool_switch(), "plain node names, no tags")(
      "hierarchy-attrs", po::bool_switch(), "add hierarchy_tag attributes (fails strict checkers)")(
      "plugin-dir", po::value<std::vector<std::string>>(), "extra plugin directory (repeatable)")(
      "no-validate", po::bool_switch(), "skip the numeric validation")(
      "external-data", po::bool_switch(),
      "write the weights to <output>.data beside the ONNX file (export.external_data: always)")(
      "isolate", po::bool_switch(), "run each strategy in a child process (isolation: process)")(
      "strategy-timeout", po::value<double>(), "seconds an isolated strategy may run")(
      "reference-timeout", po::value<double>(),
      "seconds a run of the model may take, 0 for no limit (export.reference_timeout)")(
      "list-ops", po::bool_switch(), "list the ops the converter registry covers")(
      "quiet", po::bool_switch(), "print errors only")("verbose", po::bool_switch(),
                                                       "print each stage")(
      "positional", po::value<std::vector<std::string>>(), "MODEL.pt OUT.onnx");
  po::positional_options_description positional;
  positional.add("positional", 2);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  po::notify(vm);

  const bool quiet = vm["quiet"].as<bool>();
  ProgressDisplay progress(quiet, vm["verbose"].as<bool>());
  Config config;
  if (vm.count("config")) config = loadConfig(vm["config"].as<std::string>());
  if (vm.count("positional")) {
    const auto positional_args = vm["positional"].as<std::vector<std::string>>();
    if (vm.count("config"))
      throw UsageError("give either --config FILE or MODEL.pt OUT.onnx, not both");
    if (positional_args.size() != 2) throw UsageError("expected MODEL.pt OUT.onnx after 'export'");
    config.model_path = positional_args[0];
    config.output = positional_args[1];
    config.model_name = std::filesystem::path(config.model_path).stem().string();
  }
  if (vm.count("input")) {
    if (vm.count("config"))
      throw UsageError("--input is for the no-config form; list inputs in the config");
    for (const auto& flag : vm["input"].as<std::vector<std::string>>())
      config.inputs.push_back(parseInputFlag(flag));
  }
  if (vm.count("strategy")) config.strategy = vm["strategy"].as<std::string>();
  if (vm.count("model")) config.model_path = vm["model"].as<std::string>();
  if (vm.count("output")) config.output = vm["output"].as<std::string>();
  if (vm.count("opset")) config.opset = vm["opset"].as<int>();
  if (vm["clean-onnx"].as<bool>() && vm["hierarchy-attrs"].as<bool>())
    throw UsageError("--clean-onnx and --hierarchy-attrs contradict each other; pick one");
  if (vm["clean-onnx"].as<bool>()) config.hierarchy = HierarchyMode::kNone;
  if (vm["hierarchy-attrs"].as<bool>()) config.hierarchy = HierarchyMode::kAttributes;
  if (vm["no-validate"].as<bool>()) config.validate_numeric = false;
  if (vm["external-data"].as<bool>()) config.external_data = ExternalData::kAlways;
  if (vm["isolate"].as<bool>()) config.isolate = true;
  if (vm.count("strategy-timeout")) config.strategy_timeout = vm["strategy-timeout"].as<double>();
  if (vm.count("reference-timeout"))
    config.reference_timeout = vm["reference-timeout"].as<double>();
  if (vm["with-graphml"].as<bool>()) {
    bool listed = false;
    for (const auto& e : config.emitters) listed = listed || e.name == "graphml";
    if (!listed) config.emitters.push_back({"graphml", {}});
  }
  if (vm.count("plugin-dir"))
    for (const auto& dir : vm["plugin-dir"].as<std::vector<std::string>>())
      config.plugin_paths.push_back(dir);

  PluginLoader loader;  // outlives the registry: plugin code stays loaded while its objects live
  Registry registry;
  registerBuiltins(registry);
  loader.loadSearchPath(registry, config.plugin_paths);
  loader.requireAllLoaded();
  if (vm["list-ops"].as<bool>()) {
    listOps(registry);
    return 0;
  }
  if (!vm.count("config") && !vm.count("positional"))
    throw UsageError("export needs --config FILE or MODEL.pt OUT.onnx --input ...");

  // The chain is shown as soon as it has run, so it is seen even when lowering fails.
  auto show_attempts = [&](const std::vector<StrategyAttempt>& attempts) {
    bool failed = false;
    for (const auto& a : attempts) failed = failed || a.outcome != "ok";
    if (quiet || (attempts.size() < 2 && !failed)) return;
    progress.clear();
    for (const auto& a : attempts)
      fmt::print("mexport: strategy {} {} in {:.1f} ms{}{}\n", a.name, a.outcome, 1e3 * a.seconds,
                 a.reason.empty() ? "" : ": ", a.reason);
    std::fflush(stdout);
  };
  ExportOutcome outcome = runExport(config, registry, progress, show_attempts);
  progress.finish();
  for (const auto& w : outcome.warnings) std::cerr << "mexport: warning: " << w << "\n";
  if (!quiet) {
    const ExportResult& r = outcome.result;
    const Coverage& c = r.coverage;
    double seconds = 0;
    for (const auto& [stage, s] : r.timings)
      if (stage == "total") seconds = s;
    fmt::print(
        "mexport: exported {} with strategy {} in {:.2f} s: {} ONNX nodes, {:.1f}% tagged "
        "(direct {}, inferred {}, root {}, untagged {})\n",
        r.settings.model_name, r.strategy, seconds, c.total, 100 * c.taggedRatio(), c.direct,
        c.inferred, c.root, c.untagged);
    if (!r.numeric_checks.empty()) {
      double worst = 0;
      for (const auto& check : r.numeric_checks) worst = std::max(worst, check.max_abs_diff);
      fmt::print("  validated against PyTorch: {} outputs match, max abs diff {:.2g}\n",
                 r.numeric_checks.size(), worst);
    }
    for (const auto& file : outcome.written) fmt::print("  wrote {}\n", file);
    const auto bytes = static_cast<double>(outcome.bytes_written);
    fmt::print("  {:.1f} {} written and synced to disk in {:.2f} s\n",
               bytes >= 1e6 ? bytes / 1e6 : bytes / 1e3, bytes >= 1e6 ? "MB" : "kB",
               outcome.write_seconds);
  }
  // A plugin emitter that failed (graphml) lost only its own files; it was asked
  // for (--with-graphml or `emitters`), so its failure is the command's.
  for (const auto& f : outcome.failed_emitters)
    std::cerr << "mexport: error: emitter '" << f.emitter
              << "' failed: " << f.reason.substr(0, f.reason.find('\n'))
              << "; the other outputs were written\n";
  return outcome.failed_emitters.empty() ? 0 : outcome.failed_emitters.front().exit_code;
}

}  // namespace mexport
