// In-place writes through views: fill_, zero_ and copy_ on a tensor or on a
// chain of slice / select views of it (`mask[h0:h1, w0:w1] = count`, as Swin
// builds its shifted-window mask; `cache[:, pos] = state`), and index_put_
// with one index on the leading dims (`x[mask] = v`, `x[idx] = v`). ONNX values are
// immutable, so the write becomes a new tensor, Where(region, value, base) or
// ScatterND(base, region positions, values), and later readers of the base
// tensor read that one: the lowering visits nodes in program order, so
// rebinding the base is the mutation. Views taken before the write and read
// after it would still see the old values; traces of such code are rare and
// not detected.
#include <limits>
#include <optional>
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

// The tensor a write goes to and the views it is reached through.
struct ViewChain {
  const Value* base = nullptr;
  std::vector<const Node*> outwards;  // slice / select nodes, from the base outwards
};

ViewChain viewChain(const Value* written) {
  ViewChain chain;
  chain.base = written;
  while (isView(chain.base->node())) {
    chain.outwards.insert(chain.outwards.begin(), chain.base->node());
    chain.base = chain.base->node()->input(0);
  }
  return chain;
}

// fill_(self, value) and zero_(self).
ConverterFn fill(bool zero) {
  return [zero](LoweringContext& ctx, const Node& node) {
    const ViewChain views = viewChain(node.input(0));
    const c10::ScalarType type = ctx.scalarType(node.input(0));
    std::string value = zero ? ctx.constScalar(0, type) : ctx.inAs(node.input(1), type);
    if (!zero && isTensor(node.input(1)) && ctx.rank(node.input(1)) > 0)
      value = ctx.op1("Reshape", {value, ctx.makeInts({})});
    std::string filled_view = ctx.op1("Expand", {value, ctx.op1("Shape", {ctx.in(node.input(0))})});
    ctx.bind(node.output(0), filled_view);
    if (views.outwards.empty()) {
      ctx.bind(views.base, filled_view);
      return;
    }
    ctx.bind(views.base, ctx.op1("Where", {regionMask(ctx, views.outwards, views.base), value,
                                           ctx.in(views.base)}));
  };
}

// copy_(self, src, non_blocking): src broadcast to the view, in its dtype.
// The region's positions in the base, listed by NonZero in row-major order,
// are the view's elements in its own row-major order (slices step forwards,
// selects drop a dim), so the view's values flattened are ScatterND's updates.
void convertCopy(LoweringContext& ctx, const Node& node) {
  const ViewChain views = viewChain(node.input(0));
  const std::string copied =
      ctx.op1("Expand", {ctx.inAs(node.input(1), ctx.scalarType(node.input(0))),
                         ctx.op1("Shape", {ctx.in(node.input(0))})});
  ctx.bind(node.output(0), copied);
  if (views.outwards.empty()) {
    ctx.bind(views.base, copied);
    return;
  }
  const std::string base = ctx.in(views.base);
  const std::string region =
      ctx.op1("Expand", {regionMask(ctx, views.outwards, views.base), ctx.op1("Shape", {base})});
  const std::string positions =
      ctx.op1("Transpose", {ctx.op1("NonZero", {region})}, {attr::ints("perm", {1, 0})});
  ctx.bind(views.base, ctx.op1("ScatterND", {base, positions,
                                             ctx.op1("Reshape", {copied, ctx.makeInts({-1})})}));
}

// index_put_(self, indices, values, accumulate) and index_put: `values`
// written where one index on the leading dims points, a bool mask (over the
// first k dims) or an integer tensor (into dim 0, negative from the end). The
// positions become ScatterND's index tuples and `values` is broadcast to the
// slices they select, as torch broadcasts it.
void convertIndexPut(LoweringContext& ctx, const Node& node) {
  const Value* self = node.input(0);
  if (isView(self->node()))
    ctx.fail("index_put_ into a slice or select view is not supported; index the whole tensor");
  const std::optional<c10::IValue> accumulate = ctx.constant(node.input(3));
  if (!accumulate || !accumulate->isBool() || accumulate->toBool())
    ctx.fail("index_put_ is supported with accumulate=False only");
  const std::vector<const Value*> indices = ctx.listElements(node.input(1));
  if (indices.size() != 1 || ctx.isNone(indices[0]))
    ctx.fail(
        "index_put_ is supported with one index on the leading dims (x[mask] = v, x[idx] = v)");
  const std::string x = ctx.in(self);
  const std::string index = ctx.in(indices[0]);
  std::string positions, covered;  // [n, k] tuples, and k: the leading dims they index
  if (ctx.scalarType(indices[0]) == c10::kBool) {
    positions = ctx.op1("Transpose", {ctx.op1("NonZero", {index})}, {attr::ints("perm", {1, 0})});
    covered = ctx.makeInts({ctx.rank(indices[0])});
  } else {
    const std::string first = ctx.op1("Gather", {ctx.op1("Shape", {x}), ctx.makeInts({0})});
    const std::string as_long = ctx.inAs(indices[0], c10::kLong);
    const std::string wrapped =
        ctx.op1("Where", {ctx.op1("Less", {as_long, ctx.constScalar(0, c10::kLong)}),
                          ctx.op1("Add", {as_long, first}), as_long});
    positions = ctx.op1("Unsqueeze", {wrapped, ctx.makeInts({-1})});
    covered = ctx.makeInts({1});
  }
  // ScatterND's updates: [tuples..., the dims after the k indexed ones].
  const std::string shape = ctx.op1("Shape", {x});
  const std::string tuples = ctx.op1("Shape", {positions});
  const std::string updates_shape = ctx.op1(
      "Concat",
      {ctx.op1("Slice", {tuples, ctx.makeInts({0}), ctx.makeInts({-1})}),
       ctx.op1("Slice", {shape, covered, ctx.makeInts({std::numeric_limits<int64_t>::max()})})},
      {attr::i("axis", 0)});
  const std::string updates =
      ctx.op1("Expand", {ctx.inAs(node.input(2), ctx.scalarType(self)), updates_shape});
  const std::string written = ctx.op1("ScatterND", {x, positions, updates});
  ctx.bind(node.output(0), written);
  if (std::string(node.kind().toQualString()) == "aten::index_put_") ctx.bind(self, written);
}

}  // namespace

void populateInplaceOps(ConverterRegistry& registry) {
  const std::string family = "inplace";

  onOps(registry, {"aten::fill_"}, 9, family, fill(/*zero=*/false));
  onOps(registry, {"aten::zero_"}, 9, family, fill(/*zero=*/true));
  onOps(registry, {"aten::copy_"}, 13, family, convertCopy);
  onOps(registry, {"aten::index_put_", "aten::index_put"}, 13, family, convertIndexPut);
}

}  // namespace mexport
