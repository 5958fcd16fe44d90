// Everything an export produced, handed to every emitter.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <onnx/onnx_pb.h>

#include "mexport/module_tree.h"
#include "mexport/tagging.h"

namespace mexport {

enum class HierarchyMode { kTags, kAttributes, kNone };

// Where the ONNX file keeps its weights: inside it, or in `<file>.data` beside
// it (ONNX external data). kAuto moves them out when the file would be larger
// than the threshold, below protobuf's 2 GiB limit.
enum class ExternalData { kAuto, kAlways, kNever };
constexpr int64_t kDefaultExternalDataThreshold = 2'000'000'000;  // bytes

struct OnnxNodeInfo {
  std::string source_op;  // the torch op it was lowered from, "aten::linear"
  int module = -1;        // index into the module tree, -1 when untagged
  Provenance provenance = Provenance::kUntagged;
};

// A node of an If or Loop body, at any depth. `owner` indexes the main-graph
// node that holds it; `graph` names the body as "<node name>.<attribute>".
struct SubgraphNodeInfo {
  std::string name;
  std::string graph;
  int owner = -1;
  OnnxNodeInfo info;
};

struct StrategyAttempt {
  std::string name;
  std::string outcome;  // "ok" or "failed"
  std::string reason;
  double seconds = 0;
};

// One output of the numeric validation: the ONNX run by the built-in evaluator
// against PyTorch on the same inputs.
struct NumericCheck {
  std::string output;
  double max_abs_diff = 0;
  double max_rel_diff = 0;
  bool passed = true;
  std::string problem;  // a dtype or shape mismatch, else empty
};

struct Coverage {
  int64_t total = 0, direct = 0, inferred = 0, root = 0, untagged = 0;
  double taggedRatio() const { return total == 0 ? 1.0 : double(total - untagged) / double(total); }
};

struct ExportSettings {
  std::string model_name;
  std::string model_path;
  std::string output_path;  // the .onnx file; other emitters write beside it
  int opset = 17;
  HierarchyMode hierarchy = HierarchyMode::kTags;
  TagStyle tag_style = TagStyle::kClass;
  ExternalData external_data = ExternalData::kAuto;
  int64_t external_data_threshold = kDefaultExternalDataThreshold;
};

struct ExportResult {
  ExportSettings settings;
  std::string strategy;  // the strategy whose tags were used
  onnx::ModelProto model;
  std::vector<OnnxNodeInfo> nodes;               // index-aligned with model.graph().node()
  std::vector<SubgraphNodeInfo> subgraph_nodes;  // depth first, grouped by owner in model order
  ModuleTree tree;
  std::vector<int> execution_order;   // per module: rank of its first op, -1 if never run
  std::vector<int64_t> module_nodes;  // per module: ONNX nodes tagged with it directly
  Coverage coverage;                  // of every node, sub-graph nodes included
  std::vector<StrategyAttempt> attempts;
  std::vector<NumericCheck> numeric_checks;             // empty when numeric validation was off
  std::vector<std::pair<std::string, double>> timings;  // stage, seconds
  std::string tool_version;
};

}  // namespace mexport
