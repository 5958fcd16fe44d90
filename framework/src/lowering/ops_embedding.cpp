// Lookups by index: embedding, index_select, gather, index (advanced indexing).
#include <algorithm>
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse): rows of
// the weight. padding_idx and the rest only affect training.
void convertEmbedding(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           ctx.op1("Gather", {ctx.in(node.input(0)), ctx.in(node.input(1))}, {attr::i("axis", 0)}));
}

// index_select(self, dim, index): whole slices along dim.
void convertIndexSelect(LoweringContext& ctx, const Node& node) {
  int64_t dim = ctx.constInt(node.input(1));
  ctx.bind(node.output(0), ctx.op1("Gather", {ctx.in(node.input(0)), ctx.in(node.input(2))},
                                   {attr::i("axis", dim)}));
}

// gather(self, dim, index, sparse_grad): one element per index, as ONNX's
// GatherElements.
void convertGather(LoweringContext& ctx, const Node& node) {
  int64_t dim = ctx.constInt(node.input(1));
  ctx.bind(node.output(0), ctx.op1("GatherElements", {ctx.in(node.input(0)), ctx.in(node.input(2))},
                                   {attr::i("axis", dim)}));
}

// index(self, indices): advanced indexing x[..., idx, ...] with a list of
// optional index tensors (None for the dims taken whole). One integer index
// is a Gather on its dim; several on the leading dims are broadcast against
// each other and stacked for GatherND. A bool mask on the leading dims,
// x[mask], selects the positions NonZero lists, in row-major order, as torch
// does: GatherND of them (the result's first dim depends on the data).
void convertIndex(LoweringContext& ctx, const Node& node) {
  std::vector<const Value*> indices = ctx.listElements(node.input(1));
  std::vector<size_t> present;
  bool mask = false;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (ctx.isNone(indices[i])) continue;
    mask = mask || ctx.scalarType(indices[i]) == c10::kBool;
    present.push_back(i);
  }
  if (present.empty()) {
    bindToInput(ctx, node);
    return;
  }
  std::string x = ctx.in(node.input(0));
  if (mask) {
    if (present.size() != 1 || present[0] != 0)
      ctx.fail("a bool mask index is supported alone and on the leading dims only (x[mask])");
    const std::string positions = ctx.op1("Transpose", {ctx.op1("NonZero", {ctx.in(indices[0])})},
                                          {attr::ints("perm", {1, 0})});
    ctx.bind(node.output(0), ctx.op1("GatherND", {x, positions}));
    return;
  }
  if (present.size() == 1) {
    ctx.bind(node.output(0), ctx.op1("Gather", {x, ctx.inAs(indices[present[0]], c10::kLong)},
                                     {attr::i("axis", static_cast<int64_t>(present[0]))}));
    return;
  }
  for (size_t i = 0; i < present.size(); ++i)
    if (present[i] != i) ctx.fail("several index tensors are supported on the leading dims only");
  // Broadcast every index to the common shape, then stack them on a new last
  // axis: GatherND's [..., k] index tuples. The elementwise Max of the shapes
  // is the broadcast shape (every dim is equal or 1) once the ranks agree.
  int64_t rank = 0;
  for (size_t i : present) rank = std::max(rank, ctx.rank(indices[i]));
  std::vector<std::string> stacked;
  for (size_t i : present) {
    std::string index = ctx.inAs(indices[i], c10::kLong);
    int64_t missing = rank - ctx.rank(indices[i]);
    if (missing > 0) {
      std::vector<int64_t> axes;
      for (int64_t a = 0; a < missing; ++a) axes.push_back(a);
      index = ctx.op1("Unsqueeze", {index, ctx.makeInts(axes)});
    }
    stacked.push_back(index);
  }
  std::string common;
  for (const std::string& index : stacked) {
    std::string shape = ctx.op1("Shape", {index});
    common = common.empty() ? shape : ctx.op1("Max", {common, shape});
  }
  std::vector<std::string> columns;
  for (const std::string& index : stacked)
    columns.push_back(
        ctx.op1("Unsqueeze", {ctx.op1("Expand", {index, common}), ctx.makeInts({-1})}));
  std::string tuples = ctx.op1("Concat", columns, {attr::i("axis", -1)});
  ctx.bind(node.output(0), ctx.op1("GatherND", {x, tuples}));
}

}  // namespace

void populateEmbeddingOps(ConverterRegistry& registry) {
  const std::string family = "embedding";

  onOps(registry, {"aten::embedding"}, 11, family, convertEmbedding);
  onOps(registry, {"aten::index_select"}, 11, family, convertIndexSelect);
  onOps(registry, {"aten::gather"}, 11, family, convertGather);
  onOps(registry, {"aten::index"}, 13, family, convertIndex);
}

}  // namespace mexport
