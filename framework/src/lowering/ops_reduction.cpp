// Reductions: sum, mean, prod, amax/amin, max/min (whole, per dim, or
// elementwise with another tensor), argmax/argmin, logsumexp, cumsum, norm.
//
// In opset 13-17 ReduceSum takes its axes as an input while ReduceMean,
// ReduceMax, ReduceMin, ReduceProd and ReduceLogSumExp still take an
// attribute (they move to inputs in opset 18).
#include <cmath>
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// Reduces `x` over `dims` (all dims when empty). The input is cast to the
// result dtype first: sum of an int32 or bool tensor is int64, and a dtype
// argument asks for its own.
std::string reduce(LoweringContext& ctx, const std::string& onnx_op, const std::string& x,
                   const std::vector<int64_t>& dims, bool keepdim) {
  Attributes attributes = {attr::i("keepdims", keepdim ? 1 : 0)};
  if (onnx_op == "ReduceSum") {
    return ctx.op1(onnx_op, {x, dims.empty() ? LoweringContext::none() : ctx.makeInts(dims)},
                   attributes);
  }
  if (!dims.empty()) attributes.push_back(attr::ints("axes", dims));
  return ctx.op1(onnx_op, {x}, attributes);
}

// The dims argument at `index`: an int, an int list, or None (all dims).
std::vector<int64_t> reductionDims(const LoweringContext& ctx, const Node& node, size_t index) {
  if (isAbsent(ctx, node, index)) return {};
  if (node.input(index)->type()->kind() == c10::TypeKind::IntType) {
    return {ctx.constInt(node.input(index))};
  }
  return ctx.constInts(node.input(index));
}

// sum/mean/prod(self, dtype) over everything, or (self, dim, keepdim, dtype)
// over dims; amax/amin(self, dim, keepdim), logsumexp(self, dim, keepdim).
// Every overload with more than two inputs has dims and keepdim at 1 and 2.
ConverterFn reduction(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    std::string x = ctx.inAs(node.input(0), resultType(ctx, node));
    bool whole = node.inputs().size() <= 2;
    std::vector<int64_t> dims = whole ? std::vector<int64_t>{} : reductionDims(ctx, node, 1);
    bool keepdim = !whole && !isAbsent(ctx, node, 2) && ctx.constBool(node.input(2));
    ctx.bind(node.output(0), reduce(ctx, onnx_op, x, dims, keepdim));
  };
}

// any / all(self) over everything, or (self, dim, keepdim): ONNX reduces
// numbers, not bools, so the flags reduce as 0 / 1 by ReduceMax / ReduceMin.
ConverterFn flagReduction(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    const std::string flags = ctx.op1("Cast", {ctx.inAs(node.input(0), c10::kBool)},
                                      {attr::i("to", onnxType(c10::kInt))});
    const bool whole = node.inputs().size() == 1;
    const std::vector<int64_t> dims = whole ? std::vector<int64_t>{} : reductionDims(ctx, node, 1);
    const bool keepdim = !whole && !isAbsent(ctx, node, 2) && ctx.constBool(node.input(2));
    ctx.bind(node.output(0), ctx.op1("Cast", {reduce(ctx, onnx_op, flags, dims, keepdim)},
                                     {attr::i("to", onnxType(c10::kBool))}));
  };
}

// max/min in their three forms: max(self) over everything, max(self, other)
// elementwise, and max(self, dim, keepdim) -> (values, indices).
ConverterFn extremum(const std::string& reduce_op, const std::string& elementwise_op,
                     const std::string& arg_op) {
  return [=](LoweringContext& ctx, const Node& node) {
    c10::ScalarType type = resultType(ctx, node);
    std::string x = ctx.inAs(node.input(0), type);
    if (node.inputs().size() == 1) {
      ctx.bind(node.output(0), reduce(ctx, reduce_op, x, {}, false));
      return;
    }
    if (isTensor(node.input(1))) {
      ctx.bind(node.output(0), ctx.op1(elementwise_op, {x, ctx.inAs(node.input(1), type)}));
      return;
    }
    int64_t dim = ctx.constInt(node.input(1));
    bool keepdim = !isAbsent(ctx, node, 2) && ctx.constBool(node.input(2));
    ctx.bind(node.output(0), reduce(ctx, reduce_op, x, {dim}, keepdim));
    ctx.bind(node.output(1),
             ctx.op1(arg_op, {x}, {attr::i("axis", dim), attr::i("keepdims", keepdim ? 1 : 0)}));
  };
}

// argmax/argmin(self, dim, keepdim); without a dim, over the flattened tensor.
ConverterFn argExtremum(const std::string& arg_op) {
  return [arg_op](LoweringContext& ctx, const Node& node) {
    std::string x = ctx.in(node.input(0));
    bool keepdim = !isAbsent(ctx, node, 2) && ctx.constBool(node.input(2));
    int64_t dim = 0;
    if (isAbsent(ctx, node, 1)) {
      if (keepdim) ctx.fail("keepdim without a dim is not supported");
      x = ctx.op1("Reshape", {x, ctx.makeInts({-1})});
    } else {
      dim = ctx.constInt(node.input(1));
    }
    ctx.bind(node.output(0),
             ctx.op1(arg_op, {x}, {attr::i("axis", dim), attr::i("keepdims", keepdim ? 1 : 0)}));
  };
}

// cumsum(self, dim, dtype): the axis is a 0-d input.
void convertCumsum(LoweringContext& ctx, const Node& node) {
  std::string x = ctx.inAs(node.input(0), resultType(ctx, node));
  ctx.bind(node.output(0),
           ctx.op1("CumSum", {x, ctx.constScalar(ctx.constInt(node.input(1)), c10::kLong)}));
}

// norm(self, p, dim, keepdim[, dtype]) and linalg_vector_norm(self, ord, dim,
// keepdim, dtype) (F.normalize): the 1- and 2-norms are ReduceL1 / ReduceL2,
// the infinity norm ReduceMax of Abs.
void convertNorm(LoweringContext& ctx, const Node& node) {
  std::optional<double> p = isAbsent(ctx, node, 1) ? 2.0 : constNumber(ctx, node.input(1));
  if (!p) ctx.fail("the norm's order must be a constant");
  std::vector<int64_t> dims = reductionDims(ctx, node, 2);
  bool keepdim = !isAbsent(ctx, node, 3) && ctx.constBool(node.input(3));
  std::string x = ctx.inAs(node.input(0), resultType(ctx, node));
  if (*p == 1.0 || *p == 2.0) {
    ctx.bind(node.output(0), reduce(ctx, *p == 1.0 ? "ReduceL1" : "ReduceL2", x, dims, keepdim));
  } else if (std::isinf(*p) && *p > 0) {
    ctx.bind(node.output(0), reduce(ctx, "ReduceMax", ctx.op1("Abs", {x}), dims, keepdim));
  } else {
    ctx.fail("only the 1-, 2- and infinity norms are supported");
  }
}

}  // namespace

void populateReductionOps(ConverterRegistry& registry) {
  const std::string family = "reduction";

  onOps(registry, {"aten::sum"}, 13, family, reduction("ReduceSum"));
  onOps(registry, {"aten::mean"}, 1, family, reduction("ReduceMean"));
  onOps(registry, {"aten::prod"}, 1, family, reduction("ReduceProd"));
  onOps(registry, {"aten::amax"}, 1, family, reduction("ReduceMax"));
  onOps(registry, {"aten::amin"}, 1, family, reduction("ReduceMin"));
  onOps(registry, {"aten::logsumexp"}, 1, family, reduction("ReduceLogSumExp"));
  onOps(registry, {"aten::max"}, 12, family, extremum("ReduceMax", "Max", "ArgMax"));
  onOps(registry, {"aten::min"}, 12, family, extremum("ReduceMin", "Min", "ArgMin"));
  onOps(registry, {"aten::argmax"}, 11, family, argExtremum("ArgMax"));
  onOps(registry, {"aten::argmin"}, 11, family, argExtremum("ArgMin"));
  onOps(registry, {"aten::any"}, 1, family, flagReduction("ReduceMax"));
  onOps(registry, {"aten::all"}, 1, family, flagReduction("ReduceMin"));
  onOps(registry, {"aten::cumsum"}, 11, family, convertCumsum);
  onOps(registry, {"aten::norm", "aten::linalg_vector_norm"}, 1, family, convertNorm);
}

}  // namespace mexport
