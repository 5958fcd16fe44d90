// Activation functions: relu, hardtanh/relu6, gelu, tanh, sigmoid, silu,
// hardswish, hardsigmoid, softmax/log_softmax, leaky_relu, elu, ...
#include <cmath>
#include <string>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// The node's input tensor, in the result dtype (softmax's dtype argument may
// ask for another one than the input's).
std::string input(LoweringContext& ctx, const Node& node) {
  return ctx.inAs(node.input(0), resultType(ctx, node));
}

// A constant scalar in the result dtype.
std::string scalar(LoweringContext& ctx, const Node& node, double value) {
  return ctx.constScalar(value, resultType(ctx, node));
}

// A constant number argument (leaky_relu's slope, elu's alpha, ...): ONNX
// takes them as attributes.
double numberArgument(const LoweringContext& ctx, const Node& node, size_t index) {
  std::optional<double> value = constNumber(ctx, node.input(index));
  if (!value) ctx.fail("argument " + std::to_string(index) + " must be a constant number");
  return *value;
}

// Activations that are one ONNX op with fixed attributes.
ConverterFn single(const std::string& onnx_op, const Attributes& attributes = {}) {
  return [onnx_op, attributes](LoweringContext& ctx, const Node& node) {
    ctx.bind(node.output(0), ctx.op1(onnx_op, {input(ctx, node)}, attributes));
  };
}

// hardtanh(self, min_val, max_val); nn.ReLU6 traces to hardtanh(x, 0, 6).
void convertHardtanh(LoweringContext& ctx, const Node& node) {
  c10::ScalarType type = resultType(ctx, node);
  ctx.bind(node.output(0), ctx.op1("Clip", {input(ctx, node), ctx.inAs(node.input(1), type),
                                            ctx.inAs(node.input(2), type)}));
}

void convertRelu6(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           ctx.op1("Clip", {input(ctx, node), scalar(ctx, node, 0.0), scalar(ctx, node, 6.0)}));
}

// gelu(self, approximate). "none": x * (1 + erf(x / sqrt(2))) * 0.5, the node
// sequence torch.onnx writes (Div, Erf, Add, Mul, Mul). "tanh":
// 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
void convertGelu(LoweringContext& ctx, const Node& node) {
  std::string approximate = "none";
  if (!isAbsent(ctx, node, 1)) {
    std::optional<std::string> value = constString(ctx, node.input(1));
    if (!value) ctx.fail("approximate must be a constant string");
    approximate = *value;
  }
  std::string x = input(ctx, node);
  std::string result;
  if (approximate == "none") {
    result = erfGelu(ctx, x, resultType(ctx, node));
  } else if (approximate == "tanh") {
    const double kBeta = std::sqrt(2.0 / M_PI);
    const double kKappa = 0.044715;
    std::string cube = ctx.op1("Mul", {x, ctx.op1("Mul", {x, x})});
    std::string inner =
        ctx.op1("Mul", {scalar(ctx, node, kBeta),
                        ctx.op1("Add", {x, ctx.op1("Mul", {scalar(ctx, node, kKappa), cube})})});
    std::string one_plus_tanh = ctx.op1("Add", {scalar(ctx, node, 1.0), ctx.op1("Tanh", {inner})});
    result = ctx.op1("Mul", {scalar(ctx, node, 0.5), ctx.op1("Mul", {x, one_plus_tanh})});
  } else {
    ctx.fail("unknown approximate '" + approximate + "'");
  }
  ctx.bind(node.output(0), result);
}

// silu(x) = x * sigmoid(x).
void convertSilu(LoweringContext& ctx, const Node& node) {
  std::string x = input(ctx, node);
  ctx.bind(node.output(0), ctx.op1("Mul", {x, ctx.op1("Sigmoid", {x})}));
}

// mish(x) = x * tanh(softplus(x)).
void convertMish(LoweringContext& ctx, const Node& node) {
  std::string x = input(ctx, node);
  ctx.bind(node.output(0), ctx.op1("Mul", {x, ctx.op1("Tanh", {ctx.op1("Softplus", {x})})}));
}

// softmax(self, dim, dtype) and log_softmax: the optional dtype is the result
// dtype, which input() casts to. Opset 13 made `axis` a single axis.
ConverterFn softmax(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    int64_t dim = ctx.constInt(node.input(1));
    ctx.bind(node.output(0), ctx.op1(onnx_op, {input(ctx, node)}, {attr::i("axis", dim)}));
  };
}

// leaky_relu(self, negative_slope).
void convertLeakyRelu(LoweringContext& ctx, const Node& node) {
  float slope = isAbsent(ctx, node, 1) ? 0.01f : static_cast<float>(numberArgument(ctx, node, 1));
  ctx.bind(node.output(0), ctx.op1("LeakyRelu", {input(ctx, node)}, {attr::f("alpha", slope)}));
}

// elu(self, alpha, scale, input_scale) = scale * (x > 0 ? x : alpha * (exp(x *
// input_scale) - 1)). ONNX Elu has alpha only; scale is a Mul after it, and
// input_scale (which applies to the negative side only) is not supported.
void convertElu(LoweringContext& ctx, const Node& node) {
  double alpha = isAbsent(ctx, node, 1) ? 1.0 : numberArgument(ctx, node, 1);
  double scale = isAbsent(ctx, node, 2) ? 1.0 : numberArgument(ctx, node, 2);
  double input_scale = isAbsent(ctx, node, 3) ? 1.0 : numberArgument(ctx, node, 3);
  if (input_scale != 1.0) ctx.fail("elu with input_scale != 1 is not supported");
  std::string result =
      ctx.op1("Elu", {input(ctx, node)}, {attr::f("alpha", static_cast<float>(alpha))});
  if (scale != 1.0) result = ctx.op1("Mul", {result, scalar(ctx, node, scale)});
  ctx.bind(node.output(0), result);
}

// celu(self, alpha).
void convertCelu(LoweringContext& ctx, const Node& node) {
  double alpha = isAbsent(ctx, node, 1) ? 1.0 : numberArgument(ctx, node, 1);
  ctx.bind(node.output(0),
           ctx.op1("Celu", {input(ctx, node)}, {attr::f("alpha", static_cast<float>(alpha))}));
}

// softplus(self, beta, threshold) = log(1 + exp(beta * x)) / beta. PyTorch
// returns x itself above `threshold` to avoid overflow; ONNX Softplus is stable
// there anyway, so threshold is ignored (as torch.onnx does).
void convertSoftplus(LoweringContext& ctx, const Node& node) {
  double beta = isAbsent(ctx, node, 1) ? 1.0 : numberArgument(ctx, node, 1);
  std::string x = input(ctx, node);
  if (beta == 1.0) {
    ctx.bind(node.output(0), ctx.op1("Softplus", {x}));
    return;
  }
  std::string beta_value = scalar(ctx, node, beta);
  std::string softplus = ctx.op1("Softplus", {ctx.op1("Mul", {x, beta_value})});
  ctx.bind(node.output(0), ctx.op1("Div", {softplus, beta_value}));
}

// prelu(self, weight): the weight has one slope per channel (dim 1), so it is
// reshaped to [C, 1, ..., 1] to broadcast against [N, C, d1, ...].
void convertPrelu(LoweringContext& ctx, const Node& node) {
  std::string slope = ctx.inAs(node.input(1), resultType(ctx, node));
  int64_t rank = ctx.rank(node.input(0));
  if (rank > 2 && ctx.rank(node.input(1)) == 1) {
    slope = ctx.op1("Unsqueeze", {slope, ctx.makeInts(iota(1, rank - 1))});
  }
  ctx.bind(node.output(0), ctx.op1("PRelu", {input(ctx, node), slope}));
}

}  // namespace

void populateActivationOps(ConverterRegistry& registry) {
  const std::string family = "activation";

  onOps(registry, {"aten::relu", "aten::relu_"}, 6, family, single("Relu"));
  onOps(registry, {"aten::hardtanh", "aten::hardtanh_"}, 12, family, convertHardtanh);
  onOps(registry, {"aten::relu6", "aten::relu6_"}, 12, family, convertRelu6);
  onOps(registry, {"aten::gelu", "aten::gelu_"}, 9, family, convertGelu);
  onOps(registry, {"aten::tanh", "aten::tanh_"}, 6, family, single("Tanh"));
  onOps(registry, {"aten::sigmoid", "aten::sigmoid_"}, 6, family, single("Sigmoid"));
  onOps(registry, {"aten::silu", "aten::silu_"}, 6, family, convertSilu);
  onOps(registry, {"aten::mish", "aten::mish_"}, 6, family, convertMish);
  onOps(registry, {"aten::hardswish", "aten::hardswish_"}, 14, family, single("HardSwish"));
  // PyTorch's hardsigmoid is relu6(x + 3) / 6.
  onOps(registry, {"aten::hardsigmoid", "aten::hardsigmoid_"}, 6, family,
        single("HardSigmoid", {attr::f("alpha", 1.0f / 6.0f), attr::f("beta", 0.5f)}));
  onOps(registry, {"aten::softmax", "aten::_softmax"}, 13, family, softmax("Softmax"));
  onOps(registry, {"aten::log_softmax", "aten::_log_softmax"}, 13, family, softmax("LogSoftmax"));
  onOps(registry, {"aten::leaky_relu", "aten::leaky_relu_"}, 6, family, convertLeakyRelu);
  onOps(registry, {"aten::elu", "aten::elu_"}, 6, family, convertElu);
  // ONNX Selu's default alpha and gamma are PyTorch's constants.
  onOps(registry, {"aten::selu", "aten::selu_"}, 6, family, single("Selu"));
  onOps(registry, {"aten::celu", "aten::celu_"}, 12, family, convertCelu);
  onOps(registry, {"aten::softplus"}, 1, family, convertSoftplus);
  onOps(registry, {"aten::prelu"}, 13, family, convertPrelu);
}

}  // namespace mexport
