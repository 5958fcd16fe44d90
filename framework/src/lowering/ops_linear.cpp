// Matrix products: linear, matmul, mm, bmm, addmm, baddbmm, einsum.
#include <string>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// addmm/baddbmm's alpha or beta, which must be constant; 1 when absent.
double constantFactor(const LoweringContext& ctx, const Node& node, size_t index) {
  if (isAbsent(ctx, node, index)) return 1.0;
  std::optional<double> value = constNumber(ctx, node.input(index));
  if (!value) ctx.fail("alpha and beta must be constant numbers");
  return *value;
}

// `factor * value`, with the factor read by constantFactor; no Mul for 1.
std::string scaled(LoweringContext& ctx, const Node& node, const std::string& value,
                   size_t factor_index) {
  double factor = constantFactor(ctx, node, factor_index);
  if (factor == 1.0) return value;
  return ctx.op1("Mul", {value, ctx.constScalar(factor, resultType(ctx, node))});
}

// linear(input, weight, bias) = input @ weight^T + bias. A 2-D input with a
// bias is one Gemm (as torch.onnx does for BERT's pooler); any other rank is
// MatMul with the transposed weight (ONNX Runtime folds the Transpose of an
// initializer) plus Add.
void convertLinear(LoweringContext& ctx, const Node& node) {
  const Value* x = node.input(0);
  const Value* weight = node.input(1);
  bool has_bias = !isAbsent(ctx, node, 2);
  if (ctx.rank(x) == 2 && ctx.rank(weight) == 2 && has_bias) {
    ctx.bind(node.output(0), ctx.op1("Gemm", {ctx.in(x), ctx.in(weight), ctx.in(node.input(2))},
                                     {attr::i("transB", 1)}));
    return;
  }
  std::string weight_t = ctx.in(weight);
  if (ctx.rank(weight) == 2)
    weight_t = ctx.op1("Transpose", {weight_t}, {attr::ints("perm", {1, 0})});
  std::string result = ctx.op1("MatMul", {ctx.in(x), weight_t});
  if (has_bias) result = ctx.op1("Add", {result, ctx.in(node.input(2))});
  ctx.bind(node.output(0), result);
}

// matmul, mm and bmm: ONNX MatMul has numpy's matmul semantics, which are
// PyTorch's.
void convertMatMul(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.op1("MatMul", {ctx.in(node.input(0)), ctx.in(node.input(1))}));
}

// addmm(self, mat1, mat2, beta, alpha) = beta * self + alpha * mat1 @ mat2:
// Gemm, whose C input broadcasts like self.
void convertAddmm(LoweringContext& ctx, const Node& node) {
  float beta = static_cast<float>(constantFactor(ctx, node, 3));
  float alpha = static_cast<float>(constantFactor(ctx, node, 4));
  ctx.bind(node.output(0),
           ctx.op1("Gemm", {ctx.in(node.input(1)), ctx.in(node.input(2)), ctx.in(node.input(0))},
                   {attr::f("beta", beta), attr::f("alpha", alpha)}));
}

// baddbmm(self, batch1, batch2, beta, alpha) = beta * self + alpha * batch1 @
// batch2; Gemm is 2-D only, so MatMul, Mul and Add.
void convertBaddbmm(LoweringContext& ctx, const Node& node) {
  std::string product = ctx.op1("MatMul", {ctx.in(node.input(1)), ctx.in(node.input(2))});
  ctx.bind(node.output(0), ctx.op1("Add", {scaled(ctx, node, ctx.in(node.input(0)), 3),
                                           scaled(ctx, node, product, 4)}));
}

// einsum(equation, tensors, path): the path only guides PyTorch's contraction
// order.
void convertEinsum(LoweringContext& ctx, const Node& node) {
  std::optional<std::string> equation = constString(ctx, node.input(0));
  if (!equation) ctx.fail("the equation must be a constant string");
  std::vector<std::string> operands;
  for (const Value* tensor : ctx.listElements(node.input(1))) operands.push_back(ctx.in(tensor));
  ctx.bind(node.output(0), ctx.op1("Einsum", operands, {attr::s("equation", *equation)}));
}

}  // namespace

void populateLinearOps(ConverterRegistry& registry) {
  const std::string family = "linear";

  onOps(registry, {"aten::linear"}, 11, family, convertLinear);
  onOps(registry, {"aten::matmul", "aten::mm", "aten::bmm"}, 9, family, convertMatMul);
  onOps(registry, {"aten::addmm"}, 11, family, convertAddmm);
  onOps(registry, {"aten::baddbmm"}, 9, family, convertBaddbmm);
  onOps(registry, {"aten::einsum"}, 12, family, convertEinsum);
}

}  // namespace mexport
