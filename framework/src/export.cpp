#include "export.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>

#include "atomic_files.h"
#include "deadline.h"
#include "emitters/builtin_emitters.h"
#include "lowering/driver.h"
#include "lowering/ops.h"
#include "model_loader.h"
#include "onnx_check.h"
#include "selector.h"
#include "stopwatch.h"
#include "validation/numeric_check.h"

namespace mexport {

const char* const kToolVersion = MEXPORT_VERSION;

std::vector<OnnxNodeInfo> allNodeInfos(const std::vector<OnnxNodeInfo>& nodes,
                                       const std::vector<SubgraphNodeInfo>& subgraph_nodes) {
  std::vector<OnnxNodeInfo> all;
  all.reserve(nodes.size() + subgraph_nodes.size());
  auto inner = subgraph_nodes.begin();
  for (size_t i = 0; i < nodes.size(); ++i) {
    all.push_back(nodes[i]);
    for (; inner != subgraph_nodes.end() && inner->owner == static_cast<int>(i); ++inner)
      all.push_back(inner->info);
  }
  return all;
}

Coverage countCoverage(const std::vector<OnnxNodeInfo>& nodes) {
  Coverage c;
  for (const auto& n : nodes) {
    ++c.total;
    switch (n.provenance) {
      case Provenance::kDirect:
        ++c.direct;
        break;
      case Provenance::kInferred:
        ++c.inferred;
        break;
      case Provenance::kRoot:
        ++c.root;
        break;
      case Provenance::kUntagged:
        ++c.untagged;
        break;
    }
  }
  return c;
}

SelectionRequest selectionRequest(const Config& config) {
  return {config.strategy,      config.fallback, config.priority,        config.min_coverage,
          config.root_fallback, config.isolate,  config.strategy_timeout};
}

namespace {

// A module runs when its first ONNX node does; its ancestors run before it.
std::vector<int> executionOrder(const ModuleTree& tree, const std::vector<OnnxNodeInfo>& nodes) {
  std::vector<int> order(tree.size(), -1);
  int next = 0;
  for (const auto& n : nodes) {
    if (n.module < 0 || order[n.module] >= 0) continue;
    std::vector<int> chain;
    for (int m = n.module; m >= 0 && order[m] < 0; m = tree.at(m).parent) chain.push_back(m);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) order[*it] = next++;
  }
  return order;
}

void addHierarchyTag(onnx::NodeProto& node, const ModuleTree& tree, int module) {
  *node.add_attribute() = attr::s("hierarchy_tag", module >= 0 ? tree.at(module).tag : "");
}

// hierarchy_tag attributes on the nodes of `node`'s sub-graphs, at any depth;
// `modules` has their modules by node name.
void addSubgraphHierarchyTags(onnx::NodeProto& node, const ModuleTree& tree,
                              const std::unordered_map<std::string, int>& modules) {
  for (onnx::AttributeProto& attribute : *node.mutable_attribute()) {
    if (!attribute.has_g()) continue;
    for (onnx::NodeProto& inner : *attribute.mutable_g()->mutable_node()) {
      addHierarchyTag(inner, tree, modules.at(inner.name()));
      addSubgraphHierarchyTags(inner, tree, modules);
    }
  }
}

void addHierarchyAttributes(ExportResult& result) {
  std::unordered_map<std::string, int> subgraph_modules;
  for (const auto& n : result.subgraph_nodes) subgraph_modules.emplace(n.name, n.info.module);
  auto& nodes = *result.model.mutable_graph()->mutable_node();
  for (int i = 0; i < nodes.size(); ++i) {
    addHierarchyTag(nodes[i], result.tree, result.nodes[i].module);
    addSubgraphHierarchyTags(nodes[i], result.tree, subgraph_modules);
  }
}

void addMetadataProp(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  auto* prop = model.add_metadata_props();
  prop->set_key(key);
  prop->set_value(value);
}

}  // namespace

void registerBuiltins(Registry& registry) {
  registry.addEmitter(makeOnnxEmitter());
  registry.addEmitter(makeMetadataEmitter());
  registry.addEmitter(makeReportEmitter());
  populateBuiltinOps(registry.converters());
}

ExportOutcome runExport(const Config& config, const Registry& registry, ProgressListener& progress,
                        const AttemptsFn& on_attempts) {
  checkConfig(config);
  for (const auto& spec : config.emitters)
    if (registry.emitter(spec.name) == nullptr) {
      std::vector<std::string> names;
      for (const auto& e : registry.emitters()) names.push_back(e->name());
      throw UsageError(
          fmt::format("unknown emitter '{}'; loaded emitters: {} (see `mexport plugins`)",
                      spec.name, fmt::join(names, ", ")));
    }

  ExportOutcome outcome;
  ExportResult& result = outcome.result;
  Stopwatch clock, total;

  progress.stage("load", "loading " + config.model_path);
  // Without validation only the values' dtypes and sizes are needed, which
  // loadModel gets without running the model's arithmetic where it can.
  LoadedModel model =
      loadModel(config, config.validate_numeric ? ReferenceRun::kOutputs : ReferenceRun::kShapes);
  result.timings.insert(result.timings.end(), model.timings.begin(), model.timings.end());
  clock.lap();

  progress.stage("tag", "tagging");
  Selection selection = selectStrategy(registry, model.prepared, selectionRequest(config));
  result.timings.emplace_back("tag", clock.lap());
  if (on_attempts) on_attempts(selection.attempts);

  progress.stage("lower", "lowering to ONNX opset " + std::to_string(config.opset));
  // Moving the weights leaves `model` reading them from `lowered.model` and,
  // once returned, from result.model: both outlive every later use of it.
  LoweredModel lowered = lowerToOnnx(model, selection.tags, registry.converters(), config,
                                     kToolVersion, WeightBytes::kMove, &progress);
  result.timings.emplace_back("lower", clock.lap());

  progress.stage("check", "checking");
  inferShapesAndCheck(lowered.model);
  result.timings.emplace_back("check", clock.lap());
  if (config.validate_numeric) {
    progress.stage("validate", "validating against PyTorch");
    std::vector<std::string> input_names;
    for (const auto& spec : config.inputs) input_names.push_back(spec.name);
    std::unordered_map<std::string, at::Tensor> onnx_values;
    runWithDeadline(
        "validation", "export.reference_timeout", config.reference_timeout,
        [&] {
          result.numeric_checks = checkOutputs(lowered.model, model, input_names, config.atol,
                                               config.rtol, &onnx_values, &progress);
        },
        [] { return std::string("raise the limit, or export with --no-validate"); });
    const bool passed = std::all_of(result.numeric_checks.begin(), result.numeric_checks.end(),
                                    [](const NumericCheck& c) { return c.passed; });
    if (!passed) {
      const auto divergence = findDivergence(model, selection.tags, lowered.tensors, onnx_values,
                                             config.atol, config.rtol);
      throw ExportError("numeric validation failed: " +
                        describeMismatch(result.numeric_checks, divergence, model.prepared.tree,
                                         config.atol, config.rtol) +
                        "; nothing was written (--no-validate exports anyway)");
    }
    result.timings.emplace_back("validate", clock.lap());
  }

  result.settings = {
      config.model_name, config.model_path, config.output,        config.opset,
      config.hierarchy,  config.tag_style,  config.external_data, config.external_data_threshold};
  result.strategy = selection.strategy->name();
  result.tool_version = kToolVersion;
  result.attempts = std::move(selection.attempts);
  result.tree = model.prepared.tree;
  result.nodes = std::move(lowered.nodes);
  result.subgraph_nodes = std::move(lowered.subgraph_nodes);
  result.model = std::move(lowered.model);
  const std::vector<OnnxNodeInfo> every_node = allNodeInfos(result.nodes, result.subgraph_nodes);
  result.coverage = countCoverage(every_node);
  result.execution_order = executionOrder(result.tree, every_node);
  result.module_nodes.assign(result.tree.size(), 0);
  for (const auto& n : every_node)
    if (n.module >= 0) ++result.module_nodes[n.module];

  addMetadataProp(result.model, "mexport.version", kToolVersion);
  addMetadataProp(result.model, "mexport.strategy", result.strategy);
  addMetadataProp(result.model, "mexport.tag_style",
                  config.tag_style == TagStyle::kClass ? "class" : "path");
  if (config.hierarchy == HierarchyMode::kAttributes) {
    // Added after the check, which rejects unknown attributes on standard ops.
    addHierarchyAttributes(result);
    outcome.warnings.push_back(
        "hierarchy_tag attributes are not standard ONNX: the strict ONNX checker and ONNX Runtime "
        "reject this file; "
        "use the default hierarchy: tags for a runnable model");
  }

  // Emitters see the time up to here. Their I/O is timed on its own, into
  // outcome.write_seconds.
  result.timings.emplace_back("total", total.lap());
  const double io_seconds_before = outputIoSeconds();
  progress.stage("write", "writing");
  const auto count_bytes = [&](int64_t piece) {
    progress.advance(outcome.bytes_written += piece, 0, ProgressListener::Unit::kBytes);
  };
  // The built-in emitters write the export itself: all or nothing. A plugin
  // emitter adds another view of it (graphml), so it stages its files apart
  // and its failure costs only its own files. What succeeded is committed
  // at once, so concurrent exports to the same paths never mix their files.
  OutputFiles files;
  files.setProgressCallback(count_bytes);
  for (const auto& spec : config.emitters) {
    const bool builtin = spec.name == "onnx" || spec.name == "metadata" || spec.name == "report";
    OutputFiles own_files;
    own_files.setProgressCallback(count_bytes);
    try {
      registry.emitter(spec.name)->emit(result, spec.options, builtin ? files : own_files);
    } catch (const std::exception& e) {
      const auto* error = dynamic_cast<const Error*>(&e);
      if (builtin && error != nullptr) throw;
      if (builtin) throw ExportError(fmt::format("emitter '{}' failed: {}", spec.name, e.what()));
      const int exit_code = error != nullptr ? error->exitCode() : 1;
      outcome.failed_emitters.push_back({spec.name, e.what(), exit_code});
      continue;
    }
    files.adopt(own_files);
  }
  outcome.written = files.commit();
  outcome.write_seconds = outputIoSeconds() - io_seconds_before;
  return outcome;
}

}  // namespace mexport
