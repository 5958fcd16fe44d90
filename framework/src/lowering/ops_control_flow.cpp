// Control flow of scripted models: prim::If and prim::Loop become ONNX If and
// Loop whose sub-graphs are converted like the main graph (every node keeps
// its own tag); aten::Bool and friends are handled in ops_shape.cpp.
#include <optional>
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

bool isTensorOrNumber(const Value* value) {
  switch (value->type()->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::BoolType:
      return true;
    default:
      return false;
  }
}

// The ONNX dtype and rank of a torch value, for sub-graph inputs.
LoweringContext::SubgraphInput subgraphInput(const LoweringContext& ctx, const Value* value,
                                             const Value* typed_like) {
  LoweringContext::SubgraphInput input;
  input.value = value;
  input.dtype = dtypeOf(ctx, typed_like);
  input.rank = isTensor(typed_like) ? ctx.rank(typed_like) : 0;
  return input;
}

// prim::If(cond) with a then and an else block. A constant condition (e.g.
// `if self.training`, resolved at load time) keeps only the taken branch. An
// If without results only guards side effects (raise, warn) that ONNX cannot
// express; like torch.onnx, it is dropped.
void convertIf(LoweringContext& ctx, const Node& node) {
  if (node.outputs().empty()) return;
  const torch::jit::Block& then_block = *node.blocks().at(0);
  const torch::jit::Block& else_block = *node.blocks().at(1);
  if (std::optional<c10::IValue> known = ctx.constant(node.input(0)); known && known->isBool()) {
    std::vector<std::string> results = ctx.inlineBlock(known->toBool() ? then_block : else_block);
    for (size_t i = 0; i < results.size(); ++i) ctx.bind(node.output(i), results[i]);
    return;
  }
  std::string condition = ctx.inAs(node.input(0), c10::kBool);
  onnx::GraphProto then_graph = ctx.subgraph(then_block, {}, {});
  onnx::GraphProto else_graph = ctx.subgraph(else_block, {}, {});
  std::vector<std::string> results =
      ctx.op("If", {condition}, static_cast<int>(node.outputs().size()),
             {attr::g("then_branch", then_graph), attr::g("else_branch", else_graph)});
  for (size_t i = 0; i < results.size(); ++i) ctx.bind(node.output(i), results[i]);
}

// prim::Loop(max_trip_count, condition, carried...) with a body block
// (iteration, carried...) -> (condition, carried...): `for` loops have a
// constant true condition, `while` loops a huge trip count. ONNX's Loop body
// also receives the incoming condition, which the torch body does not read.
// Lists the body fills (scanAppend) become scan outputs, bound to the lists.
void convertLoop(LoweringContext& ctx, const Node& node) {
  const torch::jit::Block& body = *node.blocks().at(0);
  const size_t carried = node.inputs().size() - 2;
  std::vector<LoweringContext::SubgraphInput> inputs;
  inputs.push_back({body.inputs().at(0), c10::kLong, 0});
  inputs.push_back({nullptr, c10::kBool, 0});
  for (size_t i = 0; i < carried; ++i)
    inputs.push_back(subgraphInput(ctx, body.inputs().at(i + 1), node.input(i + 2)));
  for (size_t i = 0; i < carried; ++i)
    if (!isTensorOrNumber(node.input(i + 2)))
      ctx.fail("a loop may carry tensors and numbers only, not " +
               node.input(i + 2)->type()->str());
  std::vector<const Value*> scanned_lists, scanned_values;
  for (const Node* inner : body.nodes())
    if (inner->kind() == c10::aten::append && scanAppend(inner->input(0)) == inner) {
      scanned_lists.push_back(inner->input(0));
      scanned_values.push_back(inner->input(1));
    }
  onnx::GraphProto body_graph = ctx.subgraph(body, inputs, scanned_values);
  std::vector<std::string> loop_inputs = {ctx.inAs(node.input(0), c10::kLong),
                                          ctx.inAs(node.input(1), c10::kBool)};
  for (size_t i = 0; i < carried; ++i) loop_inputs.push_back(ctx.in(node.input(i + 2)));
  std::vector<std::string> results =
      ctx.op("Loop", loop_inputs, static_cast<int>(carried + scanned_lists.size()),
             {attr::g("body", body_graph)});
  for (size_t i = 0; i < carried; ++i) ctx.bind(node.output(i), results[i]);
  for (size_t i = 0; i < scanned_lists.size(); ++i)
    ctx.bind(scanned_lists[i], results[carried + i]);
}

// aten::append(list, value): the loop filling the list makes it a scan output
// (convertLoop). No other list has an ONNX form.
void convertAppend(LoweringContext& ctx, const Node& node) {
  if (scanAppend(node.input(0)) != &node)
    ctx.fail(
        "a list is supported when a loop fills it: built empty before the loop, appended to once "
        "per iteration in the loop's body, read after the loop (torch.stack / torch.cat)");
  ctx.markHandled(node.output(0));
}

}  // namespace

void populateControlFlowOps(ConverterRegistry& registry) {
  const std::string family = "control_flow";

  onOps(registry, {"prim::If"}, 13, family, convertIf);
  onOps(registry, {"prim::Loop"}, 13, family, convertLoop);
  onOps(registry, {"aten::append"}, 13, family, convertAppend);
}

}  // namespace mexport
