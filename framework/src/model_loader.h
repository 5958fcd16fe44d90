// Loads a TorchScript model and prepares the graph every strategy tags and the
// lowering converts: inlined, module attributes resolved (tensors become graph
// inputs named by their parameter path, other values constants), tuples
// lowered, then one reference run that records every value's dtype and sizes.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config.h"
#include "mexport/tagging.h"

namespace mexport {

struct Parameter {
  std::string path;  // "encoder.layer.0.attention.self.query.weight"
  at::Tensor tensor;
};

struct ValueInfo {
  c10::ScalarType dtype = c10::ScalarType::Undefined;
  std::vector<int64_t> sizes;
};

// What an export needs from the reference run.
enum class ReferenceRun {
  // The dtype and sizes of every value, which the lowering reads: from a run on
  // meta tensors, which computes shapes without arithmetic, or from the real
  // run where that cannot work (control flow, ops that read tensor values).
  kShapes,
  // PyTorch's outputs too (numeric validation): the real run.
  kOutputs,
};

struct LoadedModel {
  torch::jit::Module module;
  PreparedModel prepared;
  std::vector<at::Tensor> inputs;                 // the example inputs, first graph inputs
  std::vector<Parameter> parameters;              // the remaining graph inputs, in order
  std::vector<const torch::jit::Value*> outputs;  // graph outputs, tuples flattened
  std::vector<at::Tensor> reference_outputs;  // PyTorch's outputs on `inputs`; empty for kShapes
  std::unordered_map<const torch::jit::Value*, ValueInfo> values;  // from the reference run
  // Seconds per step: "load" (torch::jit::load), "prepare", then "shapes" (the
  // meta run) or "reference" (the real run).
  std::vector<std::pair<std::string, double>> timings;
};

// Throws mexport::Error: a missing or corrupt file, inputs that do not match
// forward() (naming its arguments), or a forward that fails on the example
// inputs (naming the op, its source line and the inputs that reach it).
LoadedModel loadModel(const Config& config, ReferenceRun run);

// "file.py:12" of the Python source `node` was generated from, or "".
std::string sourceLocation(const torch::jit::Node& node);

// Runs the prepared graph on the example inputs again and returns every
// top-level value (and the graph inputs), for comparing intermediates.
std::unordered_map<const torch::jit::Value*, c10::IValue> probeValues(LoadedModel& model);

}  // namespace mexport
