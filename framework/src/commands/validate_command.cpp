// mexport validate: the ONNX checker, tags against the metadata
// (--check-consistency) and outputs against PyTorch (--against) with the
// built-in evaluator, naming the module where a wrong export first diverges.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <iostream>
#include <set>

#include "commands/command_line.h"
#include "commands/commands.h"
#include "config.h"
#include "export.h"
#include "inputs.h"
#include "inspect/hierarchy.h"
#include "inspect/onnx_file.h"
#include "lowering/driver.h"
#include "model_loader.h"
#include "onnx_check.h"
#include "plugin_loader.h"
#include "selector.h"
#include "validation/numeric_check.h"

namespace mexport {
namespace {

namespace po = boost::program_options;

// Problems between the ONNX nodes' tags and the metadata written with them.
std::vector<std::string> consistencyProblems(const onnx::ModelProto& model,
                                             const inspect::ExportMetadata& meta) {
  std::vector<std::string> problems;
  std::set<std::string> module_tags;
  for (const auto& m : meta.modules)
    if (!module_tags.insert(m.tag).second)
      problems.push_back(fmt::format("two modules share the tag '{}'", m.tag));
  std::set<std::string> onnx_names;
  for (const onnx::NodeProto* node_pointer : inspect::allNodes(model.graph())) {
    const onnx::NodeProto& node = *node_pointer;
    onnx_names.insert(node.name());
    auto it = meta.nodes.find(node.name());
    if (it == meta.nodes.end()) {
      problems.push_back(fmt::format("node '{}' is not in the metadata", node.name()));
      continue;
    }
    if (it->second.provenance == "untagged")
      problems.push_back(fmt::format("node '{}' is untagged", node.name()));
    if (!module_tags.count(it->second.tag))
      problems.push_back(
          fmt::format("node '{}' has tag '{}', which is no module's", node.name(), it->second.tag));
    const std::string name_tag = inspect::tagFromNodeName(node.name());
    if (!name_tag.empty() && name_tag != it->second.tag &&
        !(name_tag == "/" && it->second.tag == meta.root_tag))
      problems.push_back(fmt::format("node '{}' is named for '{}' but the metadata says '{}'",
                                     node.name(), name_tag, it->second.tag));
  }
  for (const auto& [name, node] : meta.nodes)
    if (!onnx_names.count(name))
      problems.push_back(fmt::format("metadata node '{}' is not in the ONNX file", name));
  return problems;
}

// Lowers the model again as the file was made, to learn which ONNX tensor holds
// which torch value; the names match when the file is mexport's own export.
LoweredModel relower(LoadedModel& loaded, const Config& config, const std::string& strategy,
                     NodeTags& tags) {
  PluginLoader loader;
  Registry registry;
  registerBuiltins(registry);
  loader.loadSearchPath(registry, config.plugin_paths);
  loader.requireAllLoaded();
  Selection selection =
      selectStrategy(registry, loaded.prepared, {strategy, {}, config.priority, 0.0});
  tags = std::move(selection.tags);
  return lowerToOnnx(loaded, tags, registry.converters(), config, kToolVersion, WeightBytes::kCopy);
}

}  // namespace

int runValidateCommand(const CommandArgs& args) {
  po::options_description options("validate options");
  options.add_options()("check-consistency", po::bool_switch(),
                        "check the tags against the metadata")(
      "metadata", po::value<std::string>()->default_value(""),
      "metadata JSON (default: beside the file)")("against", po::value<std::string>(),
                                                  "TorchScript model to compare outputs with")(
      "config", po::value<std::string>(), "export config giving the inputs (with --against)")(
      "save-outputs", po::value<std::string>(),
      "write the evaluator's outputs there as <output>.npy (with --against)");
  const ParsedCommandLine parsed = parseCommandLine(args, options);
  if (parsed.help) {
    std::cout << "usage: mexport validate FILE.onnx [options]\n" << options;
    return 0;
  }
  const auto& vm = parsed.options;
  if (parsed.files.size() != 1) throw UsageError("validate takes one FILE.onnx (mexport --help)");
  if (vm.count("against") != vm.count("config"))
    throw UsageError(
        "--against MODEL.pt needs --config FILE for the inputs, and the other way round");
  const std::string& path = parsed.files[0];

  onnx::ModelProto model = inspect::readOnnxFile(path);
  const bool external_data = inspect::hasExternalData(model);
  std::vector<std::string> failures;
  {
    onnx::ModelProto checked = model;
    try {
      inferShapesAndCheck(checked, external_data ? path : "");
      fmt::print("checker: ok (strict shape inference and the ONNX checker)\n");
    } catch (const Error& e) {
      fmt::print("checker: FAILED: {}\n", e.what());
      failures.push_back("the ONNX checker rejects it");
    }
  }

  if (vm["check-consistency"].as<bool>()) {
    const auto meta = inspect::loadMetadata(path, model, vm["metadata"].as<std::string>());
    if (!meta)
      throw UsageError(fmt::format("no metadata JSON found beside {}; pass --metadata FILE", path));
    const auto problems = consistencyProblems(model, *meta);
    for (size_t i = 0; i < problems.size() && i < 20; ++i)
      fmt::print("consistency: {}\n", problems[i]);
    if (problems.size() > 20) fmt::print("consistency: ... and {} more\n", problems.size() - 20);
    if (problems.empty())
      fmt::print("consistency: ok ({} nodes, {} modules, {})\n",
                 inspect::allNodes(model.graph()).size(), meta->modules.size(), meta->path);
    else
      failures.push_back(fmt::format("{} tag inconsistencies", problems.size()));
  }

  if (vm.count("against")) {
    if (external_data) inspect::loadExternalData(model, path);  // the evaluator needs the values
    Config config = loadConfig(vm["config"].as<std::string>());
    config.model_path = vm["against"].as<std::string>();
    LoadedModel loaded = loadModel(config, ReferenceRun::kOutputs);
    std::vector<std::string> input_names;
    for (const auto& spec : config.inputs) input_names.push_back(spec.name);
    std::unordered_map<std::string, at::Tensor> values;
    const auto checks = checkOutputs(model, loaded, input_names, config.atol, config.rtol, &values);
    for (const auto& c : checks)
      fmt::print("numeric: {} {}: max abs diff {:.3g}, max rel diff {:.3g}{}\n", c.output,
                 c.passed ? "ok" : "DIFFERS", c.max_abs_diff, c.max_rel_diff,
                 c.problem.empty() ? "" : " (" + c.problem + ")");
    if (vm.count("save-outputs")) {
      OutputFiles files;
      for (const auto& output : model.graph().output())
        files.write(vm["save-outputs"].as<std::string>() + "/" + output.name() + ".npy",
                    npyBytes(values.at(output.name())));
      files.commit();
    }
    if (checks.size() != loaded.reference_outputs.size())
      failures.push_back(fmt::format("the file has {} outputs, the model {}",
                                     model.graph().output_size(), loaded.reference_outputs.size()));
    if (!std::all_of(checks.begin(), checks.end(),
                     [](const NumericCheck& c) { return c.passed; })) {
      std::string strategy = inspect::metadataProp(model, "mexport.strategy");
      NodeTags tags;
      std::optional<Divergence> divergence;
      if (!strategy.empty()) {
        const LoweredModel lowered = relower(loaded, config, strategy, tags);
        divergence =
            findDivergence(loaded, tags, lowered.tensors, values, config.atol, config.rtol);
      }
      failures.push_back(
          "numeric validation failed: " +
          describeMismatch(checks, divergence, loaded.prepared.tree, config.atol, config.rtol));
    }
  }

  if (!failures.empty())
    throw ExportError(fmt::format("{} is not valid: {}", path, fmt::join(failures, "; ")));
  fmt::print("mexport: {} is valid\n", path);
  return 0;
}

}  // namespace mexport
