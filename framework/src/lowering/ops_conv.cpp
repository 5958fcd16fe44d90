// Convolutions and pooling: _convolution, convolution, conv1d/2d/3d,
// conv_transpose1d/2d/3d, max_pool, avg_pool, adaptive_avg_pool,
// adaptive_max_pool.
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// A per-spatial-dim list argument (stride=2 may arrive as [2]), widened to
// `spatial_dims` entries.
std::vector<int64_t> perDim(const LoweringContext& ctx, const Value* value, size_t spatial_dims) {
  std::vector<int64_t> values = ctx.constInts(value);
  if (values.size() == 1 && spatial_dims > 1) values.assign(spatial_dims, values.front());
  if (values.size() != spatial_dims) {
    ctx.fail("expected " + std::to_string(spatial_dims) + " values per spatial dim, got " +
             std::to_string(values.size()));
  }
  return values;
}

// ONNX pads list the begin of every spatial dim, then the end; PyTorch pads
// both ends of a dim by the same amount.
std::vector<int64_t> symmetricPads(const std::vector<int64_t>& padding) {
  std::vector<int64_t> pads = padding;
  pads.insert(pads.end(), padding.begin(), padding.end());
  return pads;
}

// --- convolution ------------------------------------------------------------

struct ConvArgs {
  const Value* input = nullptr;
  const Value* weight = nullptr;
  const Value* bias = nullptr;  // nullptr or None: no bias
  std::vector<int64_t> stride, pads, dilation, output_padding;
  int64_t groups = 1;
  bool transposed = false;
};

// Conv or ConvTranspose; both take weights in PyTorch's layout.
void emitConv(LoweringContext& ctx, const Node& node, const ConvArgs& args) {
  std::vector<int64_t> weight_sizes = ctx.sizes(args.weight);
  std::vector<int64_t> kernel_shape(weight_sizes.begin() + 2, weight_sizes.end());
  std::vector<std::string> inputs = {ctx.in(args.input), ctx.in(args.weight)};
  if (args.bias != nullptr && !ctx.isNone(args.bias)) inputs.push_back(ctx.in(args.bias));
  Attributes attributes = {attr::ints("kernel_shape", kernel_shape),
                           attr::ints("strides", args.stride), attr::ints("pads", args.pads),
                           attr::ints("dilations", args.dilation), attr::i("group", args.groups)};
  bool any_output_padding = false;
  for (int64_t value : args.output_padding) any_output_padding |= value != 0;
  if (any_output_padding) attributes.push_back(attr::ints("output_padding", args.output_padding));
  ctx.bind(node.output(0), ctx.op1(args.transposed ? "ConvTranspose" : "Conv", inputs, attributes));
}

// The spatial dim count of a convolution: its weight is [C_out, C_in / groups,
// k1, ...] (transposed: [C_in, C_out / groups, k1, ...]).
size_t spatialDims(const LoweringContext& ctx, const Value* weight) {
  int64_t rank = ctx.rank(weight);
  if (rank < 3) ctx.fail("a convolution weight needs rank >= 3, got " + std::to_string(rank));
  return static_cast<size_t>(rank - 2);
}

// _convolution(input, weight, bias, stride, padding, dilation, transposed,
// output_padding, groups, benchmark, deterministic, cudnn_enabled, ...) and
// convolution(input, weight, bias, stride, padding, dilation, transposed,
// output_padding, groups): what traced nn.ConvNd and nn.ConvTransposeNd record.
void convertConvolution(LoweringContext& ctx, const Node& node) {
  size_t dims = spatialDims(ctx, node.input(1));
  ConvArgs args;
  args.input = node.input(0);
  args.weight = node.input(1);
  args.bias = node.input(2);
  args.stride = perDim(ctx, node.input(3), dims);
  args.pads = symmetricPads(perDim(ctx, node.input(4), dims));
  args.dilation = perDim(ctx, node.input(5), dims);
  args.transposed = ctx.constBool(node.input(6));
  args.output_padding = perDim(ctx, node.input(7), dims);
  args.groups = ctx.constInt(node.input(8));
  emitConv(ctx, node, args);
}

// Pads for conv's padding="same" (stride 1): the total dilation * (k - 1),
// with the odd one at the end, as PyTorch does.
std::vector<int64_t> samePads(const std::vector<int64_t>& kernel_shape,
                              const std::vector<int64_t>& dilation) {
  size_t dims = kernel_shape.size();
  std::vector<int64_t> pads(2 * dims);
  for (size_t i = 0; i < dims; ++i) {
    int64_t total = dilation[i] * (kernel_shape[i] - 1);
    pads[i] = total / 2;
    pads[i + dims] = total - total / 2;
  }
  return pads;
}

// conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups), where
// padding is a list or "valid" / "same"; traces record the string form as
// _convolution_mode, with the same arguments.
void convertConvNd(LoweringContext& ctx, const Node& node) {
  size_t dims = spatialDims(ctx, node.input(1));
  ConvArgs args;
  args.input = node.input(0);
  args.weight = node.input(1);
  args.bias = node.input(2);
  args.stride = perDim(ctx, node.input(3), dims);
  args.dilation = perDim(ctx, node.input(5), dims);
  args.groups = ctx.constInt(node.input(6));
  if (std::optional<std::string> mode = constString(ctx, node.input(4))) {
    std::vector<int64_t> weight_sizes = ctx.sizes(args.weight);
    if (*mode == "valid") {
      args.pads.assign(2 * dims, 0);
    } else if (*mode == "same") {
      args.pads = samePads({weight_sizes.begin() + 2, weight_sizes.end()}, args.dilation);
    } else {
      ctx.fail("unknown padding mode '" + *mode + "'");
    }
  } else {
    args.pads = symmetricPads(perDim(ctx, node.input(4), dims));
  }
  emitConv(ctx, node, args);
}

// conv_transpose1d/2d/3d(input, weight, bias, stride, padding, output_padding,
// groups, dilation).
void convertConvTransposeNd(LoweringContext& ctx, const Node& node) {
  size_t dims = spatialDims(ctx, node.input(1));
  ConvArgs args;
  args.input = node.input(0);
  args.weight = node.input(1);
  args.bias = node.input(2);
  args.stride = perDim(ctx, node.input(3), dims);
  args.pads = symmetricPads(perDim(ctx, node.input(4), dims));
  args.output_padding = perDim(ctx, node.input(5), dims);
  args.groups = ctx.constInt(node.input(6));
  args.dilation = perDim(ctx, node.input(7), dims);
  args.transposed = true;
  emitConv(ctx, node, args);
}

// --- pooling ----------------------------------------------------------------

// The kernel and strides of a pooling op; PyTorch's empty stride means "the
// kernel size".
struct PoolWindow {
  std::vector<int64_t> kernel, stride, pads;
};

PoolWindow poolWindow(const LoweringContext& ctx, const Node& node) {
  PoolWindow window;
  window.kernel = ctx.constInts(node.input(1));
  size_t dims = window.kernel.size();
  bool default_stride = ctx.constInts(node.input(2)).empty();
  window.stride = default_stride ? window.kernel : perDim(ctx, node.input(2), dims);
  window.pads = symmetricPads(perDim(ctx, node.input(3), dims));
  return window;
}

// max_pool1d/2d/3d(self, kernel_size, stride, padding, dilation, ceil_mode).
void convertMaxPool(LoweringContext& ctx, const Node& node) {
  PoolWindow window = poolWindow(ctx, node);
  std::vector<int64_t> dilation = perDim(ctx, node.input(4), window.kernel.size());
  bool ceil_mode = ctx.constBool(node.input(5));
  ctx.bind(node.output(0),
           ctx.op1("MaxPool", {ctx.in(node.input(0))},
                   {attr::ints("kernel_shape", window.kernel), attr::ints("strides", window.stride),
                    attr::ints("pads", window.pads), attr::ints("dilations", dilation),
                    attr::i("ceil_mode", ceil_mode ? 1 : 0)}));
}

// avg_pool1d/2d/3d(self, kernel_size, stride, padding, ceil_mode,
// count_include_pad[, divisor_override]).
void convertAvgPool(LoweringContext& ctx, const Node& node) {
  if (!isAbsent(ctx, node, 6)) ctx.fail("avg_pool with divisor_override is not supported");
  PoolWindow window = poolWindow(ctx, node);
  bool ceil_mode = ctx.constBool(node.input(4));
  bool count_include_pad = ctx.constBool(node.input(5));
  ctx.bind(node.output(0),
           ctx.op1("AveragePool", {ctx.in(node.input(0))},
                   {attr::ints("kernel_shape", window.kernel), attr::ints("strides", window.stride),
                    attr::ints("pads", window.pads), attr::i("ceil_mode", ceil_mode ? 1 : 0),
                    attr::i("count_include_pad", count_include_pad ? 1 : 0)}));
}

// An adaptive pool whose output size does not divide the input size, one
// spatial dim at a time: output cell i of a dim reduces input cells
// [floor(i * in / out), ceil((i + 1) * in / out)), as PyTorch's kernel does.
// Reducing dim by dim is exact for mean and max, since every window of a dim
// has the same length whatever the other dims.
std::string separableAdaptivePool(LoweringContext& ctx, std::string x,
                                  const std::vector<int64_t>& spatial,
                                  const std::vector<int64_t>& output_size, int64_t first_axis,
                                  const std::string& reduce_op) {
  for (size_t d = 0; d < spatial.size(); ++d) {
    const int64_t in = spatial[d];
    const int64_t out = output_size[d];
    const int64_t axis = first_axis + static_cast<int64_t>(d);
    if (in == out) continue;
    std::vector<std::string> cells;
    for (int64_t i = 0; i < out; ++i) {
      const int64_t start = (i * in) / out;
      const int64_t end = ((i + 1) * in + out - 1) / out;
      std::string window =
          ctx.op1("Slice", {x, ctx.makeInts({start}), ctx.makeInts({end}), ctx.makeInts({axis})});
      cells.push_back(
          ctx.op1(reduce_op, {window}, {attr::ints("axes", {axis}), attr::i("keepdims", 1)}));
    }
    x = ctx.op1("Concat", cells, {attr::i("axis", axis)});
  }
  return x;
}

// adaptive_avg_poolNd(self, output_size) and adaptive_max_poolNd: a global
// pool when every output size is 1; a plain pool with kernel = stride =
// input / output when the output size divides the input size; otherwise
// separableAdaptivePool (the spatial sizes come from the reference run, as
// the windows depend on them).
ConverterFn adaptivePool(const std::string& pool_op, const std::string& global_op) {
  return [pool_op, global_op](LoweringContext& ctx, const Node& node) {
    // adaptive_max_pool also returns the argmax indices, which ONNX's
    // MaxPool does not compute the way PyTorch lays them out.
    if (node.outputs().size() > 1 && node.output(1)->hasUses()) {
      ctx.fail("the indices output of adaptive_max_pool is not supported");
    }
    std::vector<int64_t> output_size = ctx.constInts(node.input(1));
    std::vector<int64_t> input_sizes = ctx.sizes(node.input(0));
    if (input_sizes.size() < output_size.size()) ctx.fail("output_size has too many dims");
    std::vector<int64_t> spatial(input_sizes.end() - output_size.size(), input_sizes.end());
    bool global = true;
    for (int64_t size : output_size) global &= size == 1;
    std::string x = ctx.in(node.input(0));
    if (global) {
      ctx.bind(node.output(0), ctx.op1(global_op, {x}));
      return;
    }
    std::vector<int64_t> kernel;
    for (size_t i = 0; i < spatial.size(); ++i) {
      if (output_size[i] <= 0) ctx.fail("output sizes must be positive");
      if (spatial[i] % output_size[i] != 0) {
        const auto first_axis = static_cast<int64_t>(input_sizes.size() - spatial.size());
        ctx.bind(node.output(0),
                 separableAdaptivePool(ctx, x, spatial, output_size, first_axis,
                                       pool_op == "MaxPool" ? "ReduceMax" : "ReduceMean"));
        return;
      }
      kernel.push_back(spatial[i] / output_size[i]);
    }
    ctx.bind(
        node.output(0),
        ctx.op1(pool_op, {x}, {attr::ints("kernel_shape", kernel), attr::ints("strides", kernel)}));
  };
}

}  // namespace

void populateConvOps(ConverterRegistry& registry) {
  const std::string family = "conv";

  onOps(registry, {"aten::_convolution", "aten::convolution"}, 11, family, convertConvolution);
  onOps(registry, {"aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::_convolution_mode"}, 11,
        family, convertConvNd);
  onOps(registry, {"aten::conv_transpose1d", "aten::conv_transpose2d", "aten::conv_transpose3d"},
        11, family, convertConvTransposeNd);
  onOps(registry, {"aten::max_pool1d", "aten::max_pool2d", "aten::max_pool3d"}, 12, family,
        convertMaxPool);
  onOps(registry, {"aten::avg_pool1d", "aten::avg_pool2d", "aten::avg_pool3d"}, 11, family,
        convertAvgPool);
  onOps(registry,
        {"aten::adaptive_avg_pool1d", "aten::adaptive_avg_pool2d", "aten::adaptive_avg_pool3d"}, 11,
        family, adaptivePool("AveragePool", "GlobalAveragePool"));
  onOps(registry,
        {"aten::adaptive_max_pool1d", "aten::adaptive_max_pool2d", "aten::adaptive_max_pool3d"}, 12,
        family, adaptivePool("MaxPool", "GlobalMaxPool"));
}

}  // namespace mexport
