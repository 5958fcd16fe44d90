// Loads a TorchScript model and prepares the graph every strategy tags and the
// lowering converts: inlined, module attributes resolved (tensors become graph
// inputs named by their parameter path, other values constants), tuples
// lowered, then one reference run that records every value's dtype and sizes.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <string>
#include <unordered_map>
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

struct LoadedModel {
  torch::jit::Module module;
  PreparedModel prepared;
  std::vector<at::Tensor> inputs;                 // the example inputs, first graph inputs
  std::vector<Parameter> parameters;              // the remaining graph inputs, in order
  std::vector<const torch::jit::Value*> outputs;  // graph outputs, tuples flattened
  std::vector<at::Tensor> reference_outputs;      // PyTorch's outputs on `inputs`
  std::unordered_map<const torch::jit::Value*, ValueInfo> values;  // from the reference run
};

LoadedModel loadModel(const Config& config);

// Runs the prepared graph on the example inputs again and returns every
// top-level value (and the graph inputs), for comparing intermediates.
std::unordered_map<const torch::jit::Value*, c10::IValue> probeValues(LoadedModel& model);

}  // namespace mexport
