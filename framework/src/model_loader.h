// Loads a TorchScript model and prepares the graph every strategy tags and the
// lowering converts: inlined, module attributes resolved (tensors become graph
// inputs named by their parameter path, other values constants), tuples
// lowered, static None and rank checks folded; then every value's dtype and
// sizes from the meta walk and, where needed, the real run (reference_run.h).
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
  std::vector<int64_t> sizes;  // -1 for a dim that varies (loop iterations, branches) or is unknown
};

// What an export needs from the model's runs.
enum class ReferenceRun {
  // The dtype and sizes of every value, which the lowering reads: from the
  // meta walk, which computes types without arithmetic, branches and loops
  // included, or from the real run where the walk cannot type a value.
  kShapes,
  // PyTorch's outputs too (numeric validation): the real run.
  kOutputs,
};

struct LoadedModel {
  torch::jit::Module module;
  PreparedModel prepared;
  // The example inputs, first graph inputs: meta tensors (dtypes and sizes)
  // unless a real run needed their values.
  std::vector<at::Tensor> inputs;
  std::vector<Parameter> parameters;              // the remaining graph inputs, in order
  std::vector<const torch::jit::Value*> outputs;  // graph outputs, tuples flattened
  std::vector<at::Tensor> reference_outputs;  // PyTorch's outputs on `inputs`; empty for kShapes
  std::unordered_map<const torch::jit::Value*, ValueInfo> values;  // from the walk and the run
  // Seconds per step: "load" (torch::jit::load), "prepare", "shapes" (the meta
  // walk), then "reference" (the real run) if there was one.
  std::vector<std::pair<std::string, double>> timings;
};

// Throws mexport::Error: a missing or corrupt file, inputs that do not match
// forward() (naming its arguments), a real run that would not fit in memory,
// or a forward that fails on the example inputs (naming the op, its source
// line and the inputs that reach it). A real run past config.reference_timeout
// ends the process (deadline.h).
LoadedModel loadModel(const Config& config, ReferenceRun run);

// "file.py:12" of the Python source `node` was generated from, or "".
std::string sourceLocation(const torch::jit::Node& node);

// Runs the prepared graph on the example inputs again and returns every
// top-level value (and the graph inputs), for comparing intermediates.
std::unordered_map<const torch::jit::Value*, c10::IValue> probeValues(LoadedModel& model);

}  // namespace mexport
