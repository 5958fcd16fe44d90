// Elementwise ops: arithmetic, unary math, comparisons, logical ops, selection
// (where, masked_fill) and clamping.
//
// Type promotion: PyTorch already decided the result dtype and the reference
// run recorded it, so arithmetic casts every operand to that dtype. Comparisons
// and logical ops return bool, so their operands are promoted among
// themselves with PyTorch's rules (comparisonType below).
#include <string>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// --- type promotion ---------------------------------------------------------

c10::ScalarType promoteSkippingUndefined(c10::ScalarType a, c10::ScalarType b) {
  if (a == c10::ScalarType::Undefined) return b;
  if (b == c10::ScalarType::Undefined) return a;
  return c10::promoteTypes(a, b);
}

// at::native's combine_categories: an operand of lower priority changes the
// result only when it belongs to a higher category (bool < integer < float).
c10::ScalarType combineCategories(c10::ScalarType higher, c10::ScalarType lower) {
  if (c10::isFloatingType(higher) || c10::isComplexType(higher)) return higher;
  if (higher == c10::kBool || c10::isFloatingType(lower) || c10::isComplexType(lower)) {
    return promoteSkippingUndefined(higher, lower);
  }
  return higher != c10::ScalarType::Undefined ? higher : lower;
}

// The dtype PyTorch compares two operands in: tensors with dimensions take
// priority over 0-d tensors, which take priority over plain numbers (a Python
// float counts as the default dtype, float32).
c10::ScalarType comparisonType(const LoweringContext& ctx, const Value* a, const Value* b) {
  c10::ScalarType dimensioned = c10::ScalarType::Undefined;
  c10::ScalarType zero_dim = c10::ScalarType::Undefined;
  c10::ScalarType number = c10::ScalarType::Undefined;
  for (const Value* operand : {a, b}) {
    c10::ScalarType type = dtypeOf(ctx, operand);
    if (!isTensor(operand)) {
      number = promoteSkippingUndefined(number, c10::isFloatingType(type) ? c10::kFloat : type);
    } else if (ctx.rank(operand) == 0) {
      zero_dim = promoteSkippingUndefined(zero_dim, type);
    } else {
      dimensioned = promoteSkippingUndefined(dimensioned, type);
    }
  }
  return combineCategories(dimensioned, combineCategories(zero_dim, number));
}

// Arithmetic on lists or strings (aten::add.t, add.str) has no ONNX form.
void requireNumericResult(const LoweringContext& ctx, const Node& node) {
  switch (node.output(0)->type()->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::NumberType:
      return;
    default:
      ctx.fail("only tensor and number operands are supported, not " +
               node.output(0)->type()->str());
  }
}

// The node's input `index` in the result dtype.
std::string operand(LoweringContext& ctx, const Node& node, size_t index) {
  return ctx.inAs(node.input(index), resultType(ctx, node));
}

// A constant scalar in the result dtype.
std::string scalar(LoweringContext& ctx, const Node& node, double value) {
  return ctx.constScalar(value, resultType(ctx, node));
}

// --- arithmetic -------------------------------------------------------------

// `alpha * input(index)` for the alpha argument of add, sub and rsub; just the
// operand when alpha is absent or 1.
std::string scaledByAlpha(LoweringContext& ctx, const Node& node, size_t index,
                          size_t alpha_index) {
  std::string value = operand(ctx, node, index);
  if (isAbsent(ctx, node, alpha_index) || constNumber(ctx, node.input(alpha_index)) == 1.0) {
    return value;
  }
  return ctx.op1("Mul", {value, operand(ctx, node, alpha_index)});
}

// add(self, other, alpha) and sub(self, other, alpha): self op alpha * other.
ConverterFn addOrSub(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    requireNumericResult(ctx, node);
    ctx.bind(node.output(0),
             ctx.op1(onnx_op, {operand(ctx, node, 0), scaledByAlpha(ctx, node, 1, 2)}));
  };
}

// rsub(self, other, alpha) = other - alpha * self.
void convertRsub(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.op1("Sub", {operand(ctx, node, 1), scaledByAlpha(ctx, node, 0, 2)}));
}

// Binary ops that map one to one: mul, pow, maximum, ...
ConverterFn binary(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    requireNumericResult(ctx, node);
    ctx.bind(node.output(0), ctx.op1(onnx_op, {operand(ctx, node, 0), operand(ctx, node, 1)}));
  };
}

// Integer floor division. ONNX's integer Div truncates toward zero; the two
// differ by one when the remainder is non-zero and its sign differs from the
// divisor's (i.e. the exact quotient is negative).
std::string floorDivideIntegers(LoweringContext& ctx, const Node& node, const std::string& a,
                                const std::string& b) {
  std::string quotient = ctx.op1("Div", {a, b});
  std::string remainder = ctx.op1("Sub", {a, ctx.op1("Mul", {quotient, b})});
  std::string zero = scalar(ctx, node, 0);
  std::string inexact = ctx.op1("Not", {ctx.op1("Equal", {remainder, zero})});
  std::string signs_differ =
      ctx.op1("Xor", {ctx.op1("Less", {remainder, zero}), ctx.op1("Less", {b, zero})});
  std::string needs_fix = ctx.op1("And", {inexact, signs_differ});
  return ctx.op1("Where", {needs_fix, ctx.op1("Sub", {quotient, scalar(ctx, node, 1)}), quotient});
}

// a / b rounded as torch.div's rounding_mode says ("" is true division; the
// result dtype is then floating and Div is exact).
std::string divide(LoweringContext& ctx, const Node& node, const std::string& a,
                   const std::string& b, const std::string& rounding_mode) {
  bool floating = c10::isFloatingType(resultType(ctx, node));
  if (rounding_mode.empty()) return ctx.op1("Div", {a, b});
  if (rounding_mode == "floor") {
    return floating ? ctx.op1("Floor", {ctx.op1("Div", {a, b})})
                    : floorDivideIntegers(ctx, node, a, b);
  }
  if (rounding_mode == "trunc") {
    if (!floating) return ctx.op1("Div", {a, b});
    // Opset 17 has no Trunc: sign(q) * floor(|q|).
    std::string quotient = ctx.op1("Div", {a, b});
    return ctx.op1("Mul",
                   {ctx.op1("Sign", {quotient}), ctx.op1("Floor", {ctx.op1("Abs", {quotient})})});
  }
  ctx.fail("unknown rounding_mode '" + rounding_mode + "'");
}

// div(self, other) and div(self, other, rounding_mode).
void convertDiv(LoweringContext& ctx, const Node& node) {
  requireNumericResult(ctx, node);
  std::string rounding_mode;
  if (!isAbsent(ctx, node, 2)) {
    std::optional<std::string> mode = constString(ctx, node.input(2));
    if (!mode) ctx.fail("rounding_mode must be a constant");
    rounding_mode = *mode;
  }
  ctx.bind(node.output(0),
           divide(ctx, node, operand(ctx, node, 0), operand(ctx, node, 1), rounding_mode));
}

void convertFloorDivide(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           divide(ctx, node, operand(ctx, node, 0), operand(ctx, node, 1), "floor"));
}

// remainder takes the divisor's sign (Python's %). ONNX Mod does that only for
// integers (fmod=0); for floats it is a - floor(a / b) * b.
void convertRemainder(LoweringContext& ctx, const Node& node) {
  std::string a = operand(ctx, node, 0);
  std::string b = operand(ctx, node, 1);
  if (!c10::isFloatingType(resultType(ctx, node))) {
    ctx.bind(node.output(0), ctx.op1("Mod", {a, b}, {attr::i("fmod", 0)}));
    return;
  }
  std::string floored = divide(ctx, node, a, b, "floor");
  ctx.bind(node.output(0), ctx.op1("Sub", {a, ctx.op1("Mul", {floored, b})}));
}

// fmod takes the dividend's sign (C's fmod).
void convertFmod(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           ctx.op1("Mod", {operand(ctx, node, 0), operand(ctx, node, 1)}, {attr::i("fmod", 1)}));
}

// --- unary math -------------------------------------------------------------

// Unary ops that map one to one. The input is cast to the result dtype first:
// sqrt of an integer tensor is a float tensor.
ConverterFn unary(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    ctx.bind(node.output(0), ctx.op1(onnx_op, {operand(ctx, node, 0)}));
  };
}

void convertRsqrt(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.op1("Reciprocal", {ctx.op1("Sqrt", {operand(ctx, node, 0)})}));
}

// --- comparisons and logical ops -------------------------------------------

// Compares in the promoted operand dtype. `negate` turns Equal into ne.
std::string compare(LoweringContext& ctx, const Node& node, const std::string& onnx_op,
                    bool negate) {
  c10::ScalarType type = comparisonType(ctx, node.input(0), node.input(1));
  // ONNX orders numbers only; PyTorch orders bools as 0 < 1.
  if (type == c10::kBool && onnx_op != "Equal") type = c10::kInt;
  std::string result =
      ctx.op1(onnx_op, {ctx.inAs(node.input(0), type), ctx.inAs(node.input(1), type)});
  return negate ? ctx.op1("Not", {result}) : result;
}

ConverterFn comparison(const std::string& onnx_op, bool negate = false) {
  return [onnx_op, negate](LoweringContext& ctx, const Node& node) {
    ctx.bind(node.output(0), compare(ctx, node, onnx_op, negate));
  };
}

// logical_and/or/xor and, on bool tensors, the bitwise ops (&, |, ^): the
// operands are read as bools. ONNX's bitwise ops on integers need opset 18.
ConverterFn logical(const std::string& onnx_op) {
  return [onnx_op](LoweringContext& ctx, const Node& node) {
    if (resultType(ctx, node) != c10::kBool) {
      ctx.fail(
          "bitwise ops on integer tensors need ONNX opset 18; only bool tensors are supported");
    }
    ctx.bind(node.output(0), ctx.op1(onnx_op, {ctx.inAs(node.input(0), c10::kBool),
                                               ctx.inAs(node.input(1), c10::kBool)}));
  };
}

// logical_not reads any tensor as bools; bitwise_not (~) is the same only on
// bool tensors.
ConverterFn negation(bool bool_input_only) {
  return [bool_input_only](LoweringContext& ctx, const Node& node) {
    if (bool_input_only && resultType(ctx, node) != c10::kBool) {
      ctx.fail(
          "bitwise_not on integer tensors needs ONNX opset 18; only bool tensors are supported");
    }
    ctx.bind(node.output(0), ctx.op1("Not", {ctx.inAs(node.input(0), c10::kBool)}));
  };
}

// --- selection --------------------------------------------------------------

// where(condition, self, other); the one-argument form is nonzero().
void convertWhere(LoweringContext& ctx, const Node& node) {
  if (node.inputs().size() != 3) ctx.fail("where(condition) (nonzero) is not supported");
  ctx.bind(node.output(0), ctx.op1("Where", {ctx.inAs(node.input(0), c10::kBool),
                                             operand(ctx, node, 1), operand(ctx, node, 2)}));
}

// masked_fill(self, mask, value) = where(mask, value, self).
void convertMaskedFill(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.op1("Where", {ctx.inAs(node.input(1), c10::kBool),
                                             operand(ctx, node, 2), operand(ctx, node, 0)}));
}

// --- clamping ---------------------------------------------------------------

// Clamps input 0 to [lower, upper]; either bound may be absent (nullptr or
// None). Number bounds use Clip, which wants 0-d bounds; tensor bounds
// broadcast, so they use Max and Min.
void clamp(LoweringContext& ctx, const Node& node, const Value* lower, const Value* upper) {
  auto present = [&](const Value* bound) { return bound != nullptr && !ctx.isNone(bound); };
  bool tensor_bounds = (present(lower) && isTensor(lower)) || (present(upper) && isTensor(upper));
  c10::ScalarType type = resultType(ctx, node);
  std::string result = operand(ctx, node, 0);
  if (!tensor_bounds) {
    result = ctx.op1("Clip", {result, present(lower) ? ctx.inAs(lower, type) : ctx.none(),
                              present(upper) ? ctx.inAs(upper, type) : ctx.none()});
  } else {
    if (present(lower)) result = ctx.op1("Max", {result, ctx.inAs(lower, type)});
    if (present(upper)) result = ctx.op1("Min", {result, ctx.inAs(upper, type)});
  }
  ctx.bind(node.output(0), result);
}

// clamp(self, min, max) and clip(self, min, max).
void convertClamp(LoweringContext& ctx, const Node& node) {
  clamp(ctx, node, node.input(1), node.input(2));
}

void convertClampMin(LoweringContext& ctx, const Node& node) {
  clamp(ctx, node, node.input(1), nullptr);
}

void convertClampMax(LoweringContext& ctx, const Node& node) {
  clamp(ctx, node, nullptr, node.input(1));
}

}  // namespace

void populateElementwiseOps(ConverterRegistry& registry) {
  const std::string family = "elementwise";

  onOps(registry, {"aten::add", "aten::add_"}, 7, family, addOrSub("Add"));
  onOps(registry, {"aten::sub", "aten::sub_", "aten::subtract"}, 7, family, addOrSub("Sub"));
  onOps(registry, {"aten::rsub"}, 7, family, convertRsub);
  onOps(registry, {"aten::mul", "aten::mul_", "aten::multiply"}, 7, family, binary("Mul"));
  onOps(registry, {"aten::div", "aten::div_", "aten::divide", "aten::true_divide"}, 9, family,
        convertDiv);
  onOps(registry, {"aten::floor_divide", "aten::floor_divide_"}, 9, family, convertFloorDivide);
  onOps(registry, {"aten::remainder", "aten::remainder_"}, 10, family, convertRemainder);
  onOps(registry, {"aten::fmod", "aten::fmod_"}, 10, family, convertFmod);
  onOps(registry, {"aten::pow", "aten::pow_"}, 7, family, binary("Pow"));
  onOps(registry, {"aten::maximum"}, 8, family, binary("Max"));
  onOps(registry, {"aten::minimum"}, 8, family, binary("Min"));

  onOps(registry, {"aten::sqrt", "aten::sqrt_"}, 6, family, unary("Sqrt"));
  onOps(registry, {"aten::rsqrt", "aten::rsqrt_"}, 6, family, convertRsqrt);
  onOps(registry, {"aten::exp", "aten::exp_"}, 6, family, unary("Exp"));
  onOps(registry, {"aten::log", "aten::log_"}, 6, family, unary("Log"));
  onOps(registry, {"aten::neg", "aten::neg_", "aten::negative"}, 6, family, unary("Neg"));
  onOps(registry, {"aten::abs", "aten::abs_"}, 6, family, unary("Abs"));
  onOps(registry, {"aten::reciprocal", "aten::reciprocal_"}, 6, family, unary("Reciprocal"));
  onOps(registry, {"aten::floor", "aten::floor_"}, 6, family, unary("Floor"));
  onOps(registry, {"aten::ceil", "aten::ceil_"}, 6, family, unary("Ceil"));
  onOps(registry, {"aten::round", "aten::round_"}, 11, family, unary("Round"));
  onOps(registry, {"aten::sign", "aten::sign_"}, 9, family, unary("Sign"));
  onOps(registry, {"aten::sin", "aten::sin_"}, 7, family, unary("Sin"));
  onOps(registry, {"aten::cos", "aten::cos_"}, 7, family, unary("Cos"));
  onOps(registry, {"aten::erf", "aten::erf_"}, 9, family, unary("Erf"));

  onOps(registry, {"aten::eq", "aten::eq_"}, 11, family, comparison("Equal"));
  onOps(registry, {"aten::ne", "aten::ne_"}, 11, family, comparison("Equal", /*negate=*/true));
  onOps(registry, {"aten::lt", "aten::lt_", "aten::less"}, 9, family, comparison("Less"));
  onOps(registry, {"aten::gt", "aten::gt_", "aten::greater"}, 9, family, comparison("Greater"));
  onOps(registry, {"aten::le", "aten::le_", "aten::less_equal"}, 12, family,
        comparison("LessOrEqual"));
  onOps(registry, {"aten::ge", "aten::ge_", "aten::greater_equal"}, 12, family,
        comparison("GreaterOrEqual"));

  onOps(registry, {"aten::logical_and", "aten::bitwise_and", "aten::__and__"}, 7, family,
        logical("And"));
  onOps(registry, {"aten::logical_or", "aten::bitwise_or", "aten::__or__"}, 7, family,
        logical("Or"));
  onOps(registry, {"aten::logical_xor", "aten::bitwise_xor", "aten::__xor__"}, 7, family,
        logical("Xor"));
  onOps(registry, {"aten::logical_not"}, 1, family, negation(/*bool_input_only=*/false));
  onOps(registry, {"aten::bitwise_not"}, 1, family, negation(/*bool_input_only=*/true));

  onOps(registry, {"aten::where"}, 9, family, convertWhere);
  onOps(registry, {"aten::masked_fill", "aten::masked_fill_"}, 9, family, convertMaskedFill);
  onOps(registry, {"aten::clamp", "aten::clamp_", "aten::clip", "aten::clip_"}, 12, family,
        convertClamp);
  onOps(registry, {"aten::clamp_min", "aten::clamp_min_"}, 12, family, convertClampMin);
  onOps(registry, {"aten::clamp_max", "aten::clamp_max_"}, 12, family, convertClampMax);
}

}  // namespace mexport
