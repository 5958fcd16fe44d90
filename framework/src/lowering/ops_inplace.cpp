// In-place writes through views: fill_ and zero_ on a tensor or on a chain of
// slice / select views of it (`mask[h0:h1, w0:w1] = count`, as Swin builds its
// shifted-window mask). ONNX values are immutable, so the write becomes a new
// tensor, Where(region, value, base), and later readers of the base tensor
// read that one: the lowering visits nodes in program order, so rebinding the
// base is the mutation. Views taken before the write and read after it would
// still see the old values; traces of such code are rare and not detected.
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

bool isView(const Node* node) {
  const std::string kind = node->kind().toQualString();
  return (kind == "aten::slice" || kind == "aten::select") && isTensor(node->input(0));
}

// A 0-d int64 index normalised like Python's: negative counts from `size`,
// and the result is clamped to [0, size].
std::string normalizedIndex(LoweringContext& ctx, const std::string& index,
                            const std::string& size) {
  std::string zero = ctx.constScalar(0, c10::kLong);
  std::string wrapped =
      ctx.op1("Where", {ctx.op1("Less", {index, zero}), ctx.op1("Add", {index, size}), index});
  return ctx.op1("Min", {ctx.op1("Max", {wrapped, zero}), size});
}

// Where a view chain writes in its base: a bool tensor that broadcasts
// against the base, true inside the region. One slice or select per base dim.
std::string regionMask(LoweringContext& ctx, const std::vector<const Node*>& chain,
                       const Value* base) {
  const int64_t rank = ctx.rank(base);
  std::vector<int64_t> base_dim_of = iota(0, rank);  // view dim -> base dim
  std::vector<bool> constrained(rank, false);
  const std::string shape = ctx.op1("Shape", {ctx.in(base)});
  std::string mask;
  for (const Node* view : chain) {  // from the base outwards
    const int64_t view_rank = static_cast<int64_t>(base_dim_of.size());
    const int64_t dim = normalizeDim(ctx, ctx.constInt(view->input(1)), view_rank);
    const int64_t base_dim = base_dim_of[dim];
    if (constrained[base_dim]) ctx.fail("two views on the same dim of a written tensor");
    constrained[base_dim] = true;
    std::string size =
        ctx.op1("Gather", {shape, ctx.constScalar(base_dim, c10::kLong)}, {attr::i("axis", 0)});
    std::string positions =
        ctx.op1("Range", {ctx.constScalar(0, c10::kLong), size, ctx.constScalar(1, c10::kLong)});
    std::string inside;
    if (std::string(view->kind().toQualString()) == "aten::select") {
      std::string index = normalizedIndex(ctx, ctx.inAs(view->input(2), c10::kLong), size);
      inside = ctx.op1("Equal", {positions, index});
      base_dim_of.erase(base_dim_of.begin() + dim);
    } else {
      std::string start = ctx.isNone(view->input(2))
                              ? ctx.constScalar(0, c10::kLong)
                              : normalizedIndex(ctx, ctx.inAs(view->input(2), c10::kLong), size);
      std::string end = ctx.isNone(view->input(3))
                            ? size
                            : normalizedIndex(ctx, ctx.inAs(view->input(3), c10::kLong), size);
      inside = ctx.op1("And", {ctx.op1("Not", {ctx.op1("Less", {positions, start})}),
                               ctx.op1("Less", {positions, end})});
      if (!isAbsent(ctx, *view, 4) && ctx.constInt(view->input(4)) != 1) {
        std::string step = ctx.inAs(view->input(4), c10::kLong);
        std::string offset = ctx.op1("Sub", {positions, start});
        std::string on_step = ctx.op1(
            "Equal",
            {ctx.op1("Mod", {offset, step}, {attr::i("fmod", 0)}), ctx.constScalar(0, c10::kLong)});
        inside = ctx.op1("And", {inside, on_step});
      }
    }
    // [size] -> [1, ..., size, ..., 1] along base_dim.
    std::vector<int64_t> axes;
    for (int64_t d = 0; d < rank; ++d)
      if (d != base_dim) axes.push_back(d);
    if (!axes.empty()) inside = ctx.op1("Unsqueeze", {inside, ctx.makeInts(axes)});
    mask = mask.empty() ? inside : ctx.op1("And", {mask, inside});
  }
  return mask;
}

// fill_(self, value) and zero_(self).
ConverterFn fill(bool zero) {
  return [zero](LoweringContext& ctx, const Node& node) {
    std::vector<const Node*> chain;  // from the written view down to the base
    const Value* base = node.input(0);
    while (isView(base->node())) {
      chain.push_back(base->node());
      base = base->node()->input(0);
    }
    const c10::ScalarType type = ctx.scalarType(node.input(0));
    std::string value = zero ? ctx.constScalar(0, type) : ctx.inAs(node.input(1), type);
    if (!zero && isTensor(node.input(1)) && ctx.rank(node.input(1)) > 0)
      value = ctx.op1("Reshape", {value, ctx.makeInts({})});
    std::string filled_view = ctx.op1("Expand", {value, ctx.op1("Shape", {ctx.in(node.input(0))})});
    ctx.bind(node.output(0), filled_view);
    if (chain.empty()) {
      ctx.bind(base, filled_view);
      return;
    }
    std::vector<const Node*> outwards(chain.rbegin(), chain.rend());
    ctx.bind(base, ctx.op1("Where", {regionMask(ctx, outwards, base), value, ctx.in(base)}));
  };
}

}  // namespace

void populateInplaceOps(ConverterRegistry& registry) {
  const std::string family = "inplace";

  onOps(registry, {"aten::fill_"}, 9, family, fill(/*zero=*/false));
  onOps(registry, {"aten::zero_"}, 9, family, fill(/*zero=*/true));
}

}  // namespace mexport
