// Small helpers shared by the op converter files (internal to the lowering).
// Header-only so that every family file stays a single translation unit.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "mexport/lowering.h"

namespace mexport::ops {

using torch::jit::Node;
using torch::jit::Value;

// A list a loop fills, one element per iteration: built empty (`outs = []`),
// appended to once at the top level of the body of a prim::Loop in the same
// block, and read only after that loop (torch.stack / torch.cat, len,
// indexing, a later loop over it). The Loop gives its elements as one scan
// output, [iterations, element dims...]. Returns the append node, nullptr
// for any other list.
inline const Node* scanAppend(const Value* list) {
  const Node* made = list->node();
  if (made->kind() != c10::prim::ListConstruct || !made->inputs().empty()) return nullptr;
  const Node* append = nullptr;
  for (const torch::jit::Use& use : list->uses()) {
    if (use.user->kind() != c10::aten::append) continue;
    const Node* loop = use.user->owningBlock()->owningNode();
    if (append != nullptr || loop == nullptr || loop->kind() != c10::prim::Loop ||
        loop->owningBlock() != made->owningBlock())
      return nullptr;
    append = use.user;
  }
  if (append == nullptr) return nullptr;
  const Node* loop = append->owningBlock()->owningNode();
  for (const torch::jit::Use& use : list->uses()) {
    if (use.user == append) continue;
    const Node* holder = use.user;  // the reader, or the If / Loop around it
    while (holder != nullptr && holder->owningBlock() != made->owningBlock())
      holder = holder->owningBlock()->owningNode();
    if (holder == nullptr || !holder->isAfter(loop)) return nullptr;
  }
  return append;
}

// Registers one converter under several op kinds, e.g. an op and its in-place
// variant: traced graphs use the in-place node's output like a fresh value.
inline void onOps(ConverterRegistry& registry, std::initializer_list<const char*> ops,
                  int since_opset, const std::string& family, const ConverterFn& fn) {
  for (const char* op : ops) registry.onOp(op, since_opset, family, fn);
}

inline bool isTensor(const Value* value) {
  return value->type()->kind() == c10::TypeKind::TensorType;
}

// The dtype of a value's ONNX tensor: the reference run's dtype for tensors;
// for torch scalars the lowering's convention (int -> int64, float -> double,
// bool -> bool), known from the type alone.
inline c10::ScalarType dtypeOf(const LoweringContext& ctx, const Value* value) {
  switch (value->type()->kind()) {
    case c10::TypeKind::IntType:
      return c10::kLong;
    case c10::TypeKind::FloatType:
      return c10::kDouble;
    case c10::TypeKind::BoolType:
      return c10::kBool;
    default:
      return ctx.scalarType(value);
  }
}

// The dtype PyTorch computed for the node's (first) result.
inline c10::ScalarType resultType(const LoweringContext& ctx, const Node& node) {
  return dtypeOf(ctx, node.output(0));
}

// An optional argument that the node does not pass, or passes as None.
inline bool isAbsent(const LoweringContext& ctx, const Node& node, size_t index) {
  return index >= node.inputs().size() || ctx.isNone(node.input(index));
}

// The value of a constant int, float or bool argument (or of a constant
// one-element tensor, as traces record some Python numbers), else nullopt.
inline std::optional<double> constNumber(const LoweringContext& ctx, const Value* value) {
  std::optional<c10::IValue> constant = ctx.constant(value);
  if (!constant) return std::nullopt;
  if (constant->isDouble()) return constant->toDouble();
  if (constant->isInt()) return static_cast<double>(constant->toInt());
  if (constant->isBool()) return constant->toBool() ? 1.0 : 0.0;
  if (constant->isTensor() && constant->toTensor().numel() == 1) {
    return constant->toTensor().item().toDouble();
  }
  return std::nullopt;
}

// The value of a constant string argument (gelu's approximate, div's
// rounding_mode), else nullopt.
inline std::optional<std::string> constString(const LoweringContext& ctx, const Value* value) {
  std::optional<c10::IValue> constant = ctx.constant(value);
  if (!constant || !constant->isString()) return std::nullopt;
  return constant->toStringRef();
}

// A dim in [0, rank). PyTorch counts negative dims from the end; some ONNX
// attributes (Transpose's perm) and all lookups in recorded sizes do not.
inline int64_t normalizeDim(const LoweringContext& ctx, int64_t dim, int64_t rank) {
  if (dim < -rank || dim >= rank) {
    ctx.fail("dim " + std::to_string(dim) + " is out of range for a tensor of rank " +
             std::to_string(rank));
  }
  return dim < 0 ? dim + rank : dim;
}

// The integers begin, begin + 1, ..., end - 1 (e.g. axes to unsqueeze).
inline std::vector<int64_t> iota(int64_t begin, int64_t end) {
  std::vector<int64_t> values;
  for (int64_t i = begin; i < end; ++i) values.push_back(i);
  return values;
}

// A torch int as a 1-D int64 tensor of one element, whether it is a constant or
// computed at run time (e.g. from aten::size): Slice wants 1-D starts/ends.
inline std::string intAs1D(LoweringContext& ctx, const Value* value) {
  if (auto constant = ctx.constant(value); constant && constant->isInt()) {
    return ctx.makeInts({constant->toInt()});
  }
  return ctx.op1("Unsqueeze", {ctx.inAs(value, c10::kLong), ctx.makeInts({0})});
}

// Makes the node's result the same ONNX tensor as its first input: ops that
// only change memory layout or are no-ops at inference emit nothing.
inline void bindToInput(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.in(node.input(0)));
}

// The exact GELU, x * (1 + erf(x / sqrt(2))) * 0.5, in `type`: the node
// sequence torch.onnx writes (Div, Erf, Add, Mul, Mul).
inline std::string erfGelu(LoweringContext& ctx, const std::string& x, c10::ScalarType type) {
  std::string erf = ctx.op1("Erf", {ctx.op1("Div", {x, ctx.constScalar(M_SQRT2, type)})});
  std::string one_plus_erf = ctx.op1("Add", {erf, ctx.constScalar(1.0, type)});
  return ctx.op1("Mul", {ctx.op1("Mul", {x, one_plus_erf}), ctx.constScalar(0.5, type)});
}

}  // namespace mexport::ops
