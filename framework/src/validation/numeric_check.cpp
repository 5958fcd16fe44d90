#include "validation/numeric_check.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <algorithm>

#include "validation/onnx_evaluator.h"

namespace mexport {

NumericCheck compareTensor(const std::string& name, const at::Tensor& onnx, const at::Tensor& torch,
                           double atol, double rtol) {
  NumericCheck check{name, 0.0, 0.0, true, ""};
  if (onnx.scalar_type() != torch.scalar_type()) {
    check.passed = false;
    check.problem =
        fmt::format("dtype {} where PyTorch gives {}", c10::toString(onnx.scalar_type()),
                    c10::toString(torch.scalar_type()));
    return check;
  }
  if (onnx.sizes() != torch.sizes()) {
    check.passed = false;
    check.problem = fmt::format("shape {} where PyTorch gives {}", fmt::join(onnx.sizes(), "x"),
                                fmt::join(torch.sizes(), "x"));
    return check;
  }
  // In float64, a piece at a time: the temporaries of a whole large output
  // would outweigh the output itself several times over.
  constexpr int64_t kPiece = int64_t{1} << 18;
  const at::Tensor all_onnx = onnx.reshape(-1), all_torch = torch.reshape(-1);
  for (int64_t start = 0; start < all_onnx.numel(); start += kPiece) {
    const int64_t length = std::min(kPiece, all_onnx.numel() - start);
    const at::Tensor a = all_onnx.narrow(0, start, length).to(at::kDouble);
    const at::Tensor b = all_torch.narrow(0, start, length).to(at::kDouble);
    const at::Tensor diff = (a - b).abs();
    // NaN in the same places counts as equal, as in numpy.allclose(equal_nan=True).
    const at::Tensor both_nan = at::isnan(a) & at::isnan(b);
    const at::Tensor bad = (diff > atol + rtol * b.abs()) & ~both_nan;
    const at::Tensor finite_diff = at::where(both_nan, at::zeros_like(diff), diff);
    check.max_abs_diff = std::max(check.max_abs_diff, finite_diff.max().item<double>());
    check.max_rel_diff =
        std::max(check.max_rel_diff, (finite_diff / b.abs().clamp_min(1e-12)).max().item<double>());
    check.passed &= !bad.any().item<bool>();
  }
  return check;
}

std::vector<NumericCheck> checkOutputs(const onnx::ModelProto& model, const LoadedModel& loaded,
                                       const std::vector<std::string>& input_names, double atol,
                                       double rtol,
                                       std::unordered_map<std::string, at::Tensor>* onnx_values,
                                       ProgressListener* progress) {
  std::map<std::string, at::Tensor> inputs;
  for (size_t i = 0; i < input_names.size() && i < loaded.inputs.size(); ++i)
    inputs[input_names[i]] = loaded.inputs[i];
  // Intermediates are freed as the run goes, as PyTorch frees its own; only a
  // mismatch, to find where it starts, runs again keeping them all.
  const OnnxEvaluator evaluator(model);
  auto values = evaluator.run(inputs, progress, OnnxEvaluator::Keep::kOutputs);
  std::vector<NumericCheck> checks;
  const auto& outputs = model.graph().output();
  for (int i = 0; i < outputs.size() && i < static_cast<int>(loaded.reference_outputs.size()); ++i)
    checks.push_back(compareTensor(outputs[i].name(), values.at(outputs[i].name()),
                                   loaded.reference_outputs[i], atol, rtol));
  const bool passed =
      std::all_of(checks.begin(), checks.end(), [](const NumericCheck& c) { return c.passed; });
  if (onnx_values != nullptr) *onnx_values = passed ? std::move(values) : evaluator.run(inputs);
  return checks;
}

std::optional<Divergence> findDivergence(
    LoadedModel& loaded, const NodeTags& tags,
    const std::vector<std::pair<const torch::jit::Value*, std::string>>& tensors,
    const std::unordered_map<std::string, at::Tensor>& onnx_values, double atol, double rtol) {
  const auto torch_values = probeValues(loaded);
  for (const auto& [value, name] : tensors) {
    auto t = torch_values.find(value);
    auto o = onnx_values.find(name);
    if (t == torch_values.end() || o == onnx_values.end() || !t->second.isTensor()) continue;
    // Ints and scalars travel as 0-d tensors of another dtype: compare values only.
    const at::Tensor reference = t->second.toTensor();
    const at::Tensor onnx = o->second.scalar_type() == reference.scalar_type()
                                ? o->second
                                : o->second.to(reference.scalar_type());
    if (compareTensor(name, onnx, reference, atol, rtol).passed) continue;
    const auto tag = tags.find(value->node());
    return Divergence{tag == tags.end() ? -1 : tag->second.module,
                      value->node()->kind().toQualString(), name,
                      compareTensor(name, onnx, reference, atol, rtol).max_abs_diff};
  }
  return std::nullopt;
}

std::string describeMismatch(const std::vector<NumericCheck>& checks,
                             const std::optional<Divergence>& divergence, const ModuleTree& tree,
                             double atol, double rtol) {
  std::vector<std::string> parts;
  for (const auto& c : checks) {
    if (c.passed) continue;
    parts.push_back(c.problem.empty()
                        ? fmt::format("output '{}' max abs diff {:.3g}, max rel diff {:.3g}",
                                      c.output, c.max_abs_diff, c.max_rel_diff)
                        : fmt::format("output '{}': {}", c.output, c.problem));
  }
  std::string line = fmt::format("{} (atol {:g}, rtol {:g})", fmt::join(parts, "; "), atol, rtol);
  if (divergence) {
    const std::string module =
        divergence->module >= 0 ? tree.at(divergence->module).tag : "(untagged)";
    line += fmt::format(
        "; first divergence in module {} at {} (ONNX tensor '{}', max abs diff {:.3g})", module,
        divergence->torch_op, divergence->onnx_tensor, divergence->max_abs_diff);
  }
  return line;
}

}  // namespace mexport
