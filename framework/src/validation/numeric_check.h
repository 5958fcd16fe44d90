// Numeric validation: the exported ONNX, run by the built-in evaluator on the
// example inputs, against PyTorch's own outputs; when they differ, the first
// torch value whose ONNX tensor differs names the module where the export
// diverges.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lowering/driver.h"
#include "mexport/export_result.h"
#include "model_loader.h"
#include "progress.h"

namespace mexport {

struct Divergence {
  int module = -1;       // tagged module of the torch op that first diverges
  std::string torch_op;  // "aten::gelu"
  std::string onnx_tensor;
  double max_abs_diff = 0;
};

// |onnx - torch| <= atol + rtol * |torch| elementwise, and equal dtype and shape.
NumericCheck compareTensor(const std::string& name, const at::Tensor& onnx, const at::Tensor& torch,
                           double atol, double rtol);

// Runs `model` (an ONNX export of `loaded`) on loaded's example inputs and
// compares every output with PyTorch's.
std::vector<NumericCheck> checkOutputs(
    const onnx::ModelProto& model, const LoadedModel& loaded,
    const std::vector<std::string>& input_names, double atol, double rtol,
    std::unordered_map<std::string, at::Tensor>* onnx_values = nullptr,
    ProgressListener* progress = nullptr);

// The first top-level torch value (graph order) whose ONNX tensor differs.
std::optional<Divergence> findDivergence(
    LoadedModel& loaded, const NodeTags& tags,
    const std::vector<std::pair<const torch::jit::Value*, std::string>>& tensors,
    const std::unordered_map<std::string, at::Tensor>& onnx_values, double atol, double rtol);

// One line: "output 'x': max abs diff 0.31 ...; first divergence in module ...".
std::string describeMismatch(const std::vector<NumericCheck>& checks,
                             const std::optional<Divergence>& divergence, const ModuleTree& tree,
                             double atol, double rtol);

}  // namespace mexport
