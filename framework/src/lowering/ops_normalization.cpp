// Normalization layers: layer_norm, batch_norm (inference), group_norm,
// instance_norm.
#include <string>
#include <vector>

#include <ATen/ops/full.h>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// The affine weight or bias at input `index`, or, when the module has none
// (elementwise_affine=False, affine=False), a constant of `shape` filled with
// `fill` (1 for a weight, 0 for a bias): the ONNX ops require them.
std::string affineParameter(LoweringContext& ctx, const Node& node, size_t index,
                            const std::vector<int64_t>& shape, double fill) {
  c10::ScalarType type = resultType(ctx, node);
  if (!isAbsent(ctx, node, index)) return ctx.inAs(node.input(index), type);
  return ctx.constTensor(at::full(shape, fill, at::TensorOptions().dtype(type)));
}

// The channel count (dim 1) of the node's input, from the reference run. It is
// the size of the parameters, so it cannot be dynamic.
int64_t channels(LoweringContext& ctx, const Node& node) {
  std::vector<int64_t> sizes = ctx.sizes(node.input(0));
  if (sizes.size() < 2) ctx.fail("the input needs a channel dimension (rank >= 2)");
  return sizes[1];
}

// layer_norm(input, normalized_shape, weight, bias, eps, cudnn_enable):
// LayerNormalization (opset 17) over the last len(normalized_shape) dims.
void convertLayerNorm(LoweringContext& ctx, const Node& node) {
  std::vector<int64_t> normalized_shape = ctx.constInts(node.input(1));
  auto axis = -static_cast<int64_t>(normalized_shape.size());
  float eps = static_cast<float>(ctx.constDouble(node.input(4)));
  std::string scale = affineParameter(ctx, node, 2, normalized_shape, 1.0);
  std::string bias = affineParameter(ctx, node, 3, normalized_shape, 0.0);
  ctx.bind(node.output(0), ctx.op1("LayerNormalization", {ctx.in(node.input(0)), scale, bias},
                                   {attr::i("axis", axis), attr::f("epsilon", eps)}));
}

// batch_norm(input, weight, bias, running_mean, running_var, training,
// momentum, eps, cudnn_enabled): inference only, with running statistics.
void convertBatchNorm(LoweringContext& ctx, const Node& node) {
  if (ctx.constBool(node.input(5))) {
    ctx.fail("batch_norm in training mode is not supported: call model.eval() before tracing");
  }
  if (isAbsent(ctx, node, 3) || isAbsent(ctx, node, 4)) {
    ctx.fail("batch_norm without running statistics (track_running_stats=False) is not supported");
  }
  int64_t c = channels(ctx, node);
  c10::ScalarType type = resultType(ctx, node);
  float eps = static_cast<float>(ctx.constDouble(node.input(7)));
  ctx.bind(node.output(0), ctx.op1("BatchNormalization",
                                   {ctx.in(node.input(0)), affineParameter(ctx, node, 1, {c}, 1.0),
                                    affineParameter(ctx, node, 2, {c}, 0.0),
                                    ctx.inAs(node.input(3), type), ctx.inAs(node.input(4), type)},
                                   {attr::f("epsilon", eps)}));
}

// Applies a per-channel weight and bias ([C] each) to a normalized [N, C, ...]
// tensor: they are unsqueezed to [C, 1, ...] to broadcast. Absent ones are
// skipped.
std::string applyChannelAffine(LoweringContext& ctx, const Node& node, std::string normalized,
                               size_t weight_index, size_t bias_index) {
  int64_t rank = ctx.rank(node.input(0));
  auto perChannel = [&](size_t index) {
    std::string value = ctx.inAs(node.input(index), resultType(ctx, node));
    if (rank <= 2) return value;
    return ctx.op1("Unsqueeze", {value, ctx.makeInts(iota(1, rank - 1))});
  };
  if (!isAbsent(ctx, node, weight_index)) {
    normalized = ctx.op1("Mul", {normalized, perChannel(weight_index)});
  }
  if (!isAbsent(ctx, node, bias_index)) {
    normalized = ctx.op1("Add", {normalized, perChannel(bias_index)});
  }
  return normalized;
}

// group_norm(input, num_groups, weight, bias, eps, cudnn_enabled). Opset 17
// has no GroupNormalization: reshape [N, C, ...] to [N, G, -1], normalize each
// group with InstanceNormalization (unit scale, zero bias), reshape back, then
// apply the per-channel weight and bias.
void convertGroupNorm(LoweringContext& ctx, const Node& node) {
  int64_t groups = ctx.constInt(node.input(1));
  int64_t c = channels(ctx, node);
  if (groups <= 0 || c % groups != 0) {
    ctx.fail(std::to_string(c) + " channels cannot be split into " + std::to_string(groups) +
             " groups");
  }
  c10::ScalarType type = resultType(ctx, node);
  float eps = static_cast<float>(ctx.constDouble(node.input(4)));
  std::string x = ctx.in(node.input(0));
  // Reshape's 0 copies the batch size from the input.
  std::string grouped = ctx.op1("Reshape", {x, ctx.makeInts({0, groups, -1})});
  at::TensorOptions options = at::TensorOptions().dtype(type);
  std::string normalized = ctx.op1("InstanceNormalization",
                                   {grouped, ctx.constTensor(at::full({groups}, 1.0, options)),
                                    ctx.constTensor(at::full({groups}, 0.0, options))},
                                   {attr::f("epsilon", eps)});
  normalized = ctx.op1("Reshape", {normalized, ctx.op1("Shape", {x})});
  ctx.bind(node.output(0), applyChannelAffine(ctx, node, normalized, 2, 3));
}

// instance_norm(input, weight, bias, running_mean, running_var,
// use_input_stats, momentum, eps, cudnn_enabled). With use_input_stats
// (the default) each sample is normalized by its own statistics:
// InstanceNormalization. Otherwise (track_running_stats in eval) it is a
// batch norm with the running statistics.
void convertInstanceNorm(LoweringContext& ctx, const Node& node) {
  if (!ctx.constBool(node.input(5))) {
    convertBatchNorm(ctx, node);
    return;
  }
  int64_t c = channels(ctx, node);
  float eps = static_cast<float>(ctx.constDouble(node.input(7)));
  ctx.bind(node.output(0), ctx.op1("InstanceNormalization",
                                   {ctx.in(node.input(0)), affineParameter(ctx, node, 1, {c}, 1.0),
                                    affineParameter(ctx, node, 2, {c}, 0.0)},
                                   {attr::f("epsilon", eps)}));
}

}  // namespace

void populateNormalizationOps(ConverterRegistry& registry) {
  const std::string family = "normalization";

  onOps(registry, {"aten::layer_norm"}, 17, family, convertLayerNorm);
  onOps(registry, {"aten::batch_norm"}, 9, family, convertBatchNorm);
  onOps(registry, {"aten::group_norm"}, 13, family, convertGroupNorm);
  onOps(registry, {"aten::instance_norm"}, 9, family, convertInstanceNorm);
}

}  // namespace mexport
