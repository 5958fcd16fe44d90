// Converts the prepared torch graph to an ONNX model through the converter
// registry; every ONNX node inherits the tag of the torch node it came from.
#pragma once

#include <vector>

#include "config.h"
#include "mexport/export_result.h"
#include "mexport/lowering.h"
#include "model_loader.h"
#include "progress.h"

namespace mexport {

struct LoweredModel {
  onnx::ModelProto model;
  std::vector<OnnxNodeInfo> nodes;  // index-aligned with model.graph().node()
  std::vector<SubgraphNodeInfo> subgraph_nodes;
  // The ONNX tensor of each top-level torch value, in graph order; numeric
  // validation compares them to find where an export first diverges.
  std::vector<std::pair<const torch::jit::Value*, std::string>> tensors;
};

// How the parameters' bytes reach the initializers.
enum class WeightBytes {
  kCopy,
  // Moved where loadModel read them into movable buffers (weight_buffers.h),
  // copied otherwise. The model's parameters then point into the returned
  // ModelProto: the model must not run once the ModelProto is gone, and can
  // be lowered only once.
  kMove,
};

// Reports the main graph's nodes as they are converted when `progress` is given.
LoweredModel lowerToOnnx(const LoadedModel& model, const NodeTags& tags,
                         const ConverterRegistry& converters, const Config& config,
                         const std::string& producer_version, WeightBytes weight_bytes,
                         ProgressListener* progress = nullptr);

// Op kinds the lowering itself materialises on use (constants, int lists) or
// leaves alone (tuple and list plumbing of the outputs).
bool isMaterializedOnUse(c10::Symbol kind);

}  // namespace mexport
