// mexport benchmark: every strategy on the same prepared model in one process.
// The model is loaded and prepared once; each strategy then tags it --repeat
// times, and each run is lowered and checked as an export would be (nothing
// is written but the optional JSON and SVG). Since all strategies share one
// lowering, their ONNX nodes line up one to one, which gives the agreement
// figures: the share of ONNX nodes two strategies give the same tag.
#include <unistd.h>

#include <fmt/format.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <set>

#include "commands/benchmark_chart.h"
#include "commands/commands.h"
#include "config.h"
#include "export.h"
#include "inspect/onnx_file.h"
#include "lowering/driver.h"
#include "model_loader.h"
#include "onnx_check.h"
#include "plugin_loader.h"
#include "selector.h"

namespace mexport {
namespace {

namespace po = boost::program_options;
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats statsOf(std::vector<double> values) {
  if (values.empty()) return {};
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return {median, values.front(), values.back()};
}

struct StrategyRun {
  std::string name;
  std::string reason;  // empty when every run succeeded
  std::vector<double> tag_seconds, export_seconds;
  std::vector<OnnxNodeInfo> nodes;  // of the last run
  std::vector<std::string> op_types;
  Coverage coverage;
  int modules_reached = 0;  // distinct modules some ONNX node is tagged with

  bool ok() const { return reason.empty() && !tag_seconds.empty(); }
};

std::vector<const Strategy*> chooseStrategies(const Registry& registry, const std::string& list) {
  std::vector<const Strategy*> chosen;
  if (list.empty()) {
    for (const auto& s : registry.strategies()) chosen.push_back(s.get());
  } else {
    for (size_t start = 0; start <= list.size();) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      const std::string name = list.substr(start, end - start);
      start = end + 1;
      if (name.empty()) continue;
      const Strategy* s = registry.strategy(name);
      if (s == nullptr) {
        std::vector<std::string> names;
        for (const auto& known : registry.strategies()) names.push_back(known->name());
        throw UsageError(fmt::format(
            "--strategies: unknown strategy '{}'; loaded strategies: {} (see `mexport plugins`)",
            name, fmt::join(names, ", ")));
      }
      if (std::find(chosen.begin(), chosen.end(), s) == chosen.end()) chosen.push_back(s);
    }
  }
  if (chosen.empty())
    throw UsageError(
        "no strategy to benchmark; check the plugin directories with `mexport plugins`");
  return chosen;
}

// Tags once untimed (the first run pays for cold caches and lazy
// initialisation), then `repeat` times back to back, so each strategy's timing
// is not disturbed by freeing an ONNX model in between; then lowers and checks
// as often: an export's time is one tagging plus one lowering and check. A
// strategy that throws is recorded with its reason; a lowering or checker
// failure is the model's, not the strategy's, and ends the benchmark.
StrategyRun runStrategy(const Strategy& strategy, const LoadedModel& model, const Config& config,
                        const Registry& registry, int repeat) {
  StrategyRun run;
  run.name = strategy.name();
  NodeTags tags;
  for (int i = 0; i <= repeat; ++i) {
    const bool warm_up = i == 0;
    const auto start = Clock::now();
    try {
      tags = strategy.tag(model.prepared);
    } catch (const std::exception& e) {
      run.reason = e.what();
      return run;
    }
    if (!warm_up) run.tag_seconds.push_back(secondsSince(start));
  }
  if (config.root_fallback) fillUntaggedWithRoot(model.prepared, tags);
  for (int i = 0; i < repeat; ++i) {
    const auto start = Clock::now();
    LoweredModel lowered = lowerToOnnx(model, tags, registry.converters(), config, kToolVersion,
                                       WeightBytes::kCopy);  // lowered once per strategy
    inferShapesAndCheck(lowered.model);
    run.export_seconds.push_back(run.tag_seconds[i] + secondsSince(start));
    if (i + 1 < repeat) continue;
    run.nodes = allNodeInfos(lowered.nodes, lowered.subgraph_nodes);
    for (const onnx::NodeProto* node : inspect::allNodes(lowered.model.graph()))
      run.op_types.push_back(node->op_type());
  }
  run.coverage = countCoverage(run.nodes);
  std::set<int> reached;
  for (const auto& n : run.nodes)
    if (n.module >= 0) reached.insert(n.module);
  run.modules_reached = static_cast<int>(reached.size());
  return run;
}

// Share of ONNX nodes given the same module (both untagged counts as the
// same); nullopt when the two lowerings differ, which would be a bug.
std::optional<double> agreement(const StrategyRun& a, const StrategyRun& b) {
  if (!a.ok() || !b.ok() || a.op_types != b.op_types) return std::nullopt;
  int64_t same = 0;
  for (size_t i = 0; i < a.nodes.size(); ++i) same += a.nodes[i].module == b.nodes[i].module;
  return a.nodes.empty() ? 1.0 : double(same) / double(a.nodes.size());
}

std::string ms(double seconds) { return fmt::format("{:.3f}", seconds * 1e3); }

std::string percent(std::optional<double> share) {
  return share ? fmt::format("{:.1f}%", 100 * *share) : "n/a";
}

void printTable(const std::vector<StrategyRun>& runs, const ModuleTree& tree) {
  fmt::print("{:<10} {:>10} {:>10} {:>10} {:>11} {:>6} {:>7} {:>8} {:>5} {:>8} {:>7} {:>8}\n",
             "strategy", "tag med ms", "tag min ms", "tag max ms", "export ms", "nodes", "direct",
             "inferred", "root", "untagged", "tagged", "modules");
  for (const auto& r : runs) {
    if (!r.ok()) {
      fmt::print("{:<10} failed: {}\n", r.name, r.reason);
      continue;
    }
    const Stats tag = statsOf(r.tag_seconds);
    const Coverage& c = r.coverage;
    fmt::print("{:<10} {:>10} {:>10} {:>10} {:>11} {:>6} {:>7} {:>8} {:>5} {:>8} {:>7} {:>8}\n",
               r.name, ms(tag.median), ms(tag.min), ms(tag.max),
               ms(statsOf(r.export_seconds).median), c.total, c.direct, c.inferred, c.root,
               c.untagged, percent(c.taggedRatio()),
               fmt::format("{}/{}", r.modules_reached, tree.size()));
  }
  fmt::print("\nagreement (share of ONNX nodes given the same tag):\n{:<10}", "");
  for (const auto& r : runs) fmt::print(" {:>8}", r.name);
  fmt::print("\n");
  for (const auto& a : runs) {
    fmt::print("{:<10}", a.name);
    for (const auto& b : runs) fmt::print(" {:>8}", percent(agreement(a, b)));
    fmt::print("\n");
  }
}

Json statsJson(const std::vector<double>& values) {
  if (values.empty()) return Json();
  const Stats s = statsOf(values);
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"runs", values}};
}

Json toJson(const Config& config, const LoadedModel& model, int repeat, double load_seconds,
            const std::vector<StrategyRun>& runs) {
  Json doc;
  doc["tool"] = {{"name", "mexport"}, {"version", kToolVersion}};
  doc["model"] = {{"name", config.model_name},
                  {"path", config.model_path},
                  {"class", model.prepared.tree.at(ModuleTree::kRoot).class_name},
                  {"modules", model.prepared.tree.size()}};
  doc["repeat"] = repeat;
  doc["load_seconds"] = load_seconds;
  Json strategies = Json::array();
  for (const auto& r : runs) {
    Json s = {{"name", r.name}, {"outcome", r.ok() ? "ok" : "failed"}, {"reason", r.reason}};
    s["tag_seconds"] = statsJson(r.tag_seconds);
    s["export_seconds"] = statsJson(r.export_seconds);
    if (r.ok()) {
      const Coverage& c = r.coverage;
      s["coverage"] = {{"total", c.total},       {"direct", c.direct},
                       {"inferred", c.inferred}, {"root", c.root},
                       {"untagged", c.untagged}, {"tagged_ratio", c.taggedRatio()}};
      s["modules_reached"] = r.modules_reached;
    } else {
      s["coverage"] = Json();
      s["modules_reached"] = Json();
    }
    strategies.push_back(std::move(s));
  }
  doc["strategies"] = std::move(strategies);
  Json matrix = Json::object();
  for (const auto& a : runs) {
    Json row = Json::object();
    for (const auto& b : runs) {
      const auto share = agreement(a, b);
      row[b.name] = share ? Json(*share) : Json();
    }
    matrix[a.name] = std::move(row);
  }
  doc["agreement"] = std::move(matrix);
  return doc;
}

}  // namespace

int runBenchmarkCommand(const CommandArgs& args) {
  po::options_description options("benchmark options");
  options.add_options()("config", po::value<std::string>(), "YAML export config")(
      "strategies", po::value<std::string>()->default_value(""),
      "comma-separated strategies; default every loaded one")(
      "repeat", po::value<int>()->default_value(5), "tagging runs per strategy")(
      "json", po::value<std::string>(), "write the results as JSON")(
      "plot", po::value<std::string>(), "write an SVG bar chart of time and coverage")(
      "plugin-dir", po::value<std::vector<std::string>>(), "extra plugin directory (repeatable)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  po::notify(vm);
  if (!vm.count("config")) throw UsageError("benchmark needs --config FILE (an export config)");
  const int repeat = vm["repeat"].as<int>();
  if (repeat < 1) throw UsageError(fmt::format("--repeat {}: give at least 1", repeat));

  Config config = loadConfig(vm["config"].as<std::string>());
  if (vm.count("plugin-dir"))
    for (const auto& dir : vm["plugin-dir"].as<std::vector<std::string>>())
      config.plugin_paths.push_back(dir);
  // The benchmark writes no ONNX file; the output path only names the graph.
  if (config.output.empty()) config.output = config.model_name + ".onnx";
  checkConfig(config);

  PluginLoader loader;  // outlives the registry: plugin code stays loaded while its objects live
  Registry registry;
  registerBuiltins(registry);
  loader.loadSearchPath(registry, config.plugin_paths);
  loader.requireAllLoaded();
  const std::vector<const Strategy*> strategies =
      chooseStrategies(registry, vm["strategies"].as<std::string>());

  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  auto progress = [&](const std::string& stage) {
    if (terminal) std::cerr << "\r\033[Kmexport: " << stage << "..." << std::flush;
  };
  progress("loading " + config.model_path);
  const auto load_start = Clock::now();
  const LoadedModel model = loadModel(config, ReferenceRun::kShapes);  // never validates
  const double load_seconds = secondsSince(load_start);

  std::vector<StrategyRun> runs;
  for (const Strategy* s : strategies) {
    progress("benchmarking " + s->name());
    runs.push_back(runStrategy(*s, model, config, registry, repeat));
  }
  if (terminal) std::cerr << "\r\033[K" << std::flush;

  fmt::print(
      "mexport benchmark: {} ({} modules), {} run{} per strategy; loaded and prepared once "
      "in {:.3f} s\n\n",
      config.model_name, model.prepared.tree.size(), repeat, repeat == 1 ? "" : "s", load_seconds);
  printTable(runs, model.prepared.tree);

  OutputFiles files;
  if (vm.count("json"))
    files.write(vm["json"].as<std::string>(),
                toJson(config, model, repeat, load_seconds, runs).dump(2) + "\n");
  if (vm.count("plot")) {
    std::vector<ChartRow> rows;
    for (const auto& r : runs) {
      const Stats tag = statsOf(r.tag_seconds);
      rows.push_back({r.name, r.ok(), tag.median, tag.min, tag.max, r.coverage});
    }
    files.write(vm["plot"].as<std::string>(),
                benchmarkChartSvg(fmt::format("mexport benchmark: {}", config.model_name), rows));
  }
  for (const auto& file : files.commit()) fmt::print("  wrote {}\n", file);

  const bool any_ok = std::any_of(runs.begin(), runs.end(), [](const auto& r) { return r.ok(); });
  if (!any_ok) throw ExportError("every strategy failed on the model; see the reasons above");
  return 0;
}

}  // namespace mexport
