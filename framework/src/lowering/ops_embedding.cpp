// Lookups by index: embedding, index_select, gather.
#include <string>

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

}  // namespace

void populateEmbeddingOps(ConverterRegistry& registry) {
  const std::string family = "embedding";

  onOps(registry, {"aten::embedding"}, 11, family, convertEmbedding);
  onOps(registry, {"aten::index_select"}, 11, family, convertIndexSelect);
  onOps(registry, {"aten::gather"}, 11, family, convertGather);
}

}  // namespace mexport
