// Shape and layout ops: size, view/reshape, permute/transpose, (un)squeeze,
// flatten, expand, repeat, slice/select, roll, cat/stack, split/chunk/unbind with
// prim::ListUnpack, pad, triu/tril; no-op aliases (contiguous, dropout, ...);
// dtype conversions (to, type_as, NumToTensor, Int, Float); tensor creation
// (ones, zeros, full, arange and their _like / new_ forms).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

bool isList(const Value* value) { return value->type()->kind() == c10::TypeKind::ListType; }

// Whether a torch int argument is the constant `expected`.
bool isConstInt(const LoweringContext& ctx, const Value* value, int64_t expected) {
  std::optional<c10::IValue> constant = ctx.constant(value);
  return constant && constant->isInt() && constant->toInt() == expected;
}

// Cast of `name` from dtype `from` to `to`; no node when they are equal.
std::string castTo(LoweringContext& ctx, const std::string& name, c10::ScalarType from,
                   c10::ScalarType to) {
  if (from == to) return name;
  return ctx.op1("Cast", {name}, {attr::i("to", onnxType(to))});
}

// --- sizes ------------------------------------------------------------------

// size(self) -> int[] and size(self, dim) -> int, read at run time so that
// dynamic axes stay dynamic.
void convertSize(LoweringContext& ctx, const Node& node) {
  std::string shape = ctx.op1("Shape", {ctx.in(node.input(0))});
  if (node.inputs().size() == 1) {
    ctx.bind(node.output(0), shape);
    return;
  }
  // A 0-d index makes Gather return a 0-d int64, the form of a torch int.
  int64_t dim = ctx.constInt(node.input(1));
  ctx.bind(node.output(0),
           ctx.op1("Gather", {shape, ctx.constScalar(dim, c10::kLong)}, {attr::i("axis", 0)}));
}

// dim(self): the rank is fixed by the trace.
void convertDim(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0), ctx.constScalar(ctx.rank(node.input(0)), c10::kLong));
}

// numel(self) = product of the run-time shape.
void convertNumel(LoweringContext& ctx, const Node& node) {
  std::string shape = ctx.op1("Shape", {ctx.in(node.input(0))});
  ctx.bind(node.output(0), ctx.op1("ReduceProd", {shape}, {attr::i("keepdims", 0)}));
}

// --- reshaping --------------------------------------------------------------

// view(self, size) and reshape(self, shape). The size list may hold values
// computed at run time (x.size(0)), so it is read with in(), not as a constant.
void convertReshape(LoweringContext& ctx, const Node& node) {
  if (!isList(node.input(1))) ctx.fail("view(dtype) (reinterpreting bits) is not supported");
  ctx.bind(node.output(0), ctx.op1("Reshape", {ctx.in(node.input(0)), ctx.in(node.input(1))}));
}

// view_as(self, other) and reshape_as(self, other).
void convertReshapeAs(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           ctx.op1("Reshape", {ctx.in(node.input(0)), ctx.op1("Shape", {ctx.in(node.input(1))})}));
}

// flatten(self, start_dim, end_dim): merges dims start..end into one.
void convertFlatten(LoweringContext& ctx, const Node& node) {
  std::string x = ctx.in(node.input(0));
  int64_t rank = ctx.rank(node.input(0));
  if (rank == 0) {  // PyTorch flattens a 0-d tensor to [1]
    ctx.bind(node.output(0), ctx.op1("Reshape", {x, ctx.makeInts({1})}));
    return;
  }
  int64_t start = normalizeDim(ctx, ctx.constInt(node.input(1)), rank);
  int64_t end = normalizeDim(ctx, ctx.constInt(node.input(2)), rank);
  if (start > end) ctx.fail("flatten's start_dim comes after its end_dim");
  if (start == end) {
    bindToInput(ctx, node);
    return;
  }
  if (start == 1 && end == rank - 1) {  // ONNX Flatten is exactly this case
    ctx.bind(node.output(0), ctx.op1("Flatten", {x}, {attr::i("axis", 1)}));
    return;
  }
  std::string target;
  if (end == rank - 1) {
    // Reshape's 0 copies the input's size at that position: [0, ..., 0, -1].
    std::vector<int64_t> shape(start, 0);
    shape.push_back(-1);
    target = ctx.makeInts(shape);
  } else {
    // The dims after `end` move, so their sizes are read at run time.
    std::vector<std::string> pieces;
    if (start > 0) pieces.push_back(ctx.op1("Shape", {x}, {attr::i("end", start)}));
    pieces.push_back(ctx.makeInts({-1}));
    pieces.push_back(ctx.op1("Shape", {x}, {attr::i("start", end + 1)}));
    target = ctx.op1("Concat", pieces, {attr::i("axis", 0)});
  }
  ctx.bind(node.output(0), ctx.op1("Reshape", {x, target}));
}

// unsqueeze(self, dim): a negative dim counts from the end of the result, in
// PyTorch and ONNX alike.
void convertUnsqueeze(LoweringContext& ctx, const Node& node) {
  int64_t dim = ctx.constInt(node.input(1));
  ctx.bind(node.output(0), ctx.op1("Unsqueeze", {ctx.in(node.input(0)), ctx.makeInts({dim})}));
}

// squeeze(self) drops every size-1 dim; squeeze(self, dim) drops `dim` only if
// its size is 1 and is a no-op otherwise. ONNX Squeeze rejects a dim whose size
// is not 1, so the reference run's size decides.
void convertSqueeze(LoweringContext& ctx, const Node& node) {
  std::string x = ctx.in(node.input(0));
  if (node.inputs().size() == 1) {
    ctx.bind(node.output(0), ctx.op1("Squeeze", {x}));
    return;
  }
  std::vector<int64_t> sizes = ctx.sizes(node.input(0));
  if (sizes.empty()) {
    bindToInput(ctx, node);
    return;
  }
  int64_t dim = normalizeDim(ctx, ctx.constInt(node.input(1)), static_cast<int64_t>(sizes.size()));
  if (sizes[dim] != 1) {
    bindToInput(ctx, node);
    return;
  }
  ctx.bind(node.output(0), ctx.op1("Squeeze", {x, ctx.makeInts({dim})}));
}

// --- transposes -------------------------------------------------------------

std::string transpose(LoweringContext& ctx, const Node& node, const std::vector<int64_t>& perm) {
  return ctx.op1("Transpose", {ctx.in(node.input(0))}, {attr::ints("perm", perm)});
}

// permute(self, dims); ONNX's perm must not be negative.
void convertPermute(LoweringContext& ctx, const Node& node) {
  int64_t rank = ctx.rank(node.input(0));
  std::vector<int64_t> perm = ctx.constInts(node.input(1));
  for (int64_t& dim : perm) dim = normalizeDim(ctx, dim, rank);
  ctx.bind(node.output(0), transpose(ctx, node, perm));
}

// transpose(self, dim0, dim1): swaps two dims.
void convertTranspose(LoweringContext& ctx, const Node& node) {
  int64_t rank = ctx.rank(node.input(0));
  if (rank < 2) {
    bindToInput(ctx, node);
    return;
  }
  int64_t dim0 = normalizeDim(ctx, ctx.constInt(node.input(1)), rank);
  int64_t dim1 = normalizeDim(ctx, ctx.constInt(node.input(2)), rank);
  std::vector<int64_t> perm = iota(0, rank);
  std::swap(perm[dim0], perm[dim1]);
  ctx.bind(node.output(0), transpose(ctx, node, perm));
}

// t(self): transposes a matrix; vectors and scalars are returned as they are.
void convertT(LoweringContext& ctx, const Node& node) {
  if (ctx.rank(node.input(0)) < 2) {
    bindToInput(ctx, node);
    return;
  }
  ctx.bind(node.output(0), transpose(ctx, node, {1, 0}));
}

// --- broadcasting and tiling ------------------------------------------------

// expand(self, size, implicit): -1 keeps a dim. ONNX Expand broadcasts, so a
// 1 keeps a dim there; -1 becomes 1 (at run time if the size list is not
// constant).
void convertExpand(LoweringContext& ctx, const Node& node) {
  std::string target;
  if (ctx.constant(node.input(1))) {
    std::vector<int64_t> sizes = ctx.constInts(node.input(1));
    std::replace(sizes.begin(), sizes.end(), int64_t{-1}, int64_t{1});
    target = ctx.makeInts(sizes);
  } else {
    std::string sizes = ctx.in(node.input(1));
    std::string keep = ctx.op1("Equal", {sizes, ctx.makeInts({-1})});
    target = ctx.op1("Where", {keep, ctx.makeInts({1}), sizes});
  }
  ctx.bind(node.output(0), ctx.op1("Expand", {ctx.in(node.input(0)), target}));
}

// expand_as(self, other).
void convertExpandAs(LoweringContext& ctx, const Node& node) {
  ctx.bind(node.output(0),
           ctx.op1("Expand", {ctx.in(node.input(0)), ctx.op1("Shape", {ctx.in(node.input(1))})}));
}

// repeat(self, repeats): Tile; extra leading repeats add leading dims.
void convertRepeat(LoweringContext& ctx, const Node& node) {
  size_t count = ctx.constant(node.input(1)) ? ctx.constInts(node.input(1)).size()
                                             : ctx.listElements(node.input(1)).size();
  int64_t rank = ctx.rank(node.input(0));
  auto extra = static_cast<int64_t>(count) - rank;
  if (extra < 0) ctx.fail("repeat needs at least one repeat count per dim");
  std::string x = ctx.in(node.input(0));
  if (extra > 0) x = ctx.op1("Unsqueeze", {x, ctx.makeInts(iota(0, extra))});
  ctx.bind(node.output(0), ctx.op1("Tile", {x, ctx.in(node.input(1))}));
}

// --- slicing and indexing ---------------------------------------------------

// slice(self, dim, start, end, step) on tensors, and slice(list, start, end,
// step) on int lists (1-D int64 tensors here). start and end may be computed
// at run time; None means the beginning or the end.
void convertSlice(LoweringContext& ctx, const Node& node) {
  bool on_list = isList(node.input(0));
  size_t first = on_list ? 1 : 2;  // index of `start`
  int64_t dim = on_list ? 0 : ctx.constInt(node.input(1));
  const Value* start = node.input(first);
  const Value* end = node.input(first + 1);
  bool step_absent = isAbsent(ctx, node, first + 2);
  const int64_t kEnd = std::numeric_limits<int64_t>::max();
  bool from_start = ctx.isNone(start) || isConstInt(ctx, start, 0);
  bool to_end = ctx.isNone(end) || isConstInt(ctx, end, kEnd);
  bool unit_step = step_absent || isConstInt(ctx, node.input(first + 2), 1);
  if (from_start && to_end && unit_step) {  // x[:, :] and friends copy nothing
    bindToInput(ctx, node);
    return;
  }
  std::string starts = ctx.isNone(start) ? ctx.makeInts({0}) : intAs1D(ctx, start);
  std::string ends = ctx.isNone(end) ? ctx.makeInts({kEnd}) : intAs1D(ctx, end);
  std::string steps = step_absent ? ctx.makeInts({1}) : intAs1D(ctx, node.input(first + 2));
  ctx.bind(node.output(0),
           ctx.op1("Slice", {ctx.in(node.input(0)), starts, ends, ctx.makeInts({dim}), steps}));
}

// len(list): a list literal has its length at export time; a list a loop
// filled (its scan output), or an int list computed at run time (size()), is
// an ONNX tensor whose first dim is the length.
void convertLen(LoweringContext& ctx, const Node& node) {
  const Value* list = node.input(0);
  if (list->node()->kind() == c10::prim::ListConstruct && scanAppend(list) == nullptr) {
    ctx.bind(node.output(0),
             ctx.constScalar(static_cast<int64_t>(ctx.listElements(list).size()), c10::kLong));
    return;
  }
  ctx.bind(node.output(0),
           ctx.op1("Gather", {ctx.op1("Shape", {ctx.in(list)}), ctx.constScalar(0, c10::kLong)},
                   {attr::i("axis", 0)}));
}

// select(self, dim, index) = x[..., index, ...], and list indexing
// (select.t, __getitem__.t): a 0-d index makes Gather drop the dim. A list of
// tensors is indexed at export time, but for a list a loop filled, whose
// scan output is indexed along its first dim.
void convertSelect(LoweringContext& ctx, const Node& node) {
  if (isList(node.input(0))) {
    const Value* index = node.input(1);
    auto element_type = node.input(0)->type()->containedTypes().at(0);
    if (element_type->kind() == c10::TypeKind::TensorType && !scanAppend(node.input(0))) {
      std::vector<const Value*> elements = ctx.listElements(node.input(0));
      int64_t i = normalizeDim(ctx, ctx.constInt(index), static_cast<int64_t>(elements.size()));
      ctx.bind(node.output(0), ctx.in(elements[i]));
      return;
    }
    ctx.bind(node.output(0), ctx.op1("Gather", {ctx.in(node.input(0)), ctx.inAs(index, c10::kLong)},
                                     {attr::i("axis", 0)}));
    return;
  }
  int64_t dim = ctx.constInt(node.input(1));
  ctx.bind(node.output(0),
           ctx.op1("Gather", {ctx.in(node.input(0)), ctx.inAs(node.input(2), c10::kLong)},
                   {attr::i("axis", dim)}));
}

// roll(self, shifts, dims): per dim, the last `shift` elements move to the
// front: Concat(x[-shift:], x[:-shift]). The shift is reduced modulo the
// reference run's size of that dim; without dims the flattened tensor rolls.
void convertRoll(LoweringContext& ctx, const Node& node) {
  std::vector<int64_t> shifts = ctx.constInts(node.input(1));
  std::vector<int64_t> dims = ctx.constInts(node.input(2));
  std::string x = ctx.in(node.input(0));
  std::vector<int64_t> sizes = ctx.sizes(node.input(0));
  const bool flat = dims.empty();
  if (flat) {
    int64_t count = 1;
    for (int64_t size : sizes) count *= size;
    sizes = {count};
    dims = {0};
    x = ctx.op1("Reshape", {x, ctx.makeInts({-1})});
  }
  if (shifts.size() != dims.size()) ctx.fail("roll needs one shift per dim");
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t dim = normalizeDim(ctx, dims[i], static_cast<int64_t>(sizes.size()));
    int64_t size = sizes[dim];
    int64_t shift = size == 0 ? 0 : ((shifts[i] % size) + size) % size;
    if (shift == 0) continue;
    const std::string axes = ctx.makeInts({dim});
    std::string tail = ctx.op1(
        "Slice",
        {x, ctx.makeInts({-shift}), ctx.makeInts({std::numeric_limits<int64_t>::max()}), axes});
    std::string head = ctx.op1("Slice", {x, ctx.makeInts({0}), ctx.makeInts({-shift}), axes});
    x = ctx.op1("Concat", {tail, head}, {attr::i("axis", dim)});
  }
  if (flat) x = ctx.op1("Reshape", {x, ctx.op1("Shape", {ctx.in(node.input(0))})});
  ctx.bind(node.output(0), x);
}

// --- joining ----------------------------------------------------------------

// A loop's scan output, [n, element dims...], with its first axis moved to
// `dim` (dims of the result, which has the same rank).
std::string scanAxisTo(LoweringContext& ctx, const std::string& scanned, int64_t dim,
                       int64_t rank) {
  if (dim == 0) return scanned;
  std::vector<int64_t> perm = iota(1, dim + 1);
  perm.push_back(0);
  for (int64_t d = dim + 1; d < rank; ++d) perm.push_back(d);
  return ctx.op1("Transpose", {scanned}, {attr::ints("perm", perm)});
}

// cat and stack of a list a loop filled (scanAppend): its scan output, the
// loop axis moved to `dim`, and for cat merged with the axis after it.
void joinScanned(LoweringContext& ctx, const Node& node, bool stack) {
  const Value* element = scanAppend(node.input(0))->input(1);
  const int64_t element_rank = ctx.rank(element);
  int64_t dim = isAbsent(ctx, node, 1) ? 0 : ctx.constInt(node.input(1));
  dim = normalizeDim(ctx, dim, element_rank + (stack ? 1 : 0));
  std::string scanned = ctx.in(node.input(0));
  const c10::ScalarType type = resultType(ctx, node);
  if (ctx.scalarType(element) != type)
    scanned = ctx.op1("Cast", {scanned}, {attr::i("to", onnxType(type))});
  std::string joined = scanAxisTo(ctx, scanned, dim, element_rank + 1);
  if (!stack) {
    const std::string shape = ctx.op1("Shape", {joined});
    std::vector<std::string> parts;
    if (dim > 0) parts.push_back(ctx.op1("Slice", {shape, ctx.makeInts({0}), ctx.makeInts({dim})}));
    parts.push_back(ctx.makeInts({-1}));
    parts.push_back(
        ctx.op1("Slice", {shape, ctx.makeInts({dim + 2}), ctx.makeInts({element_rank + 1})}));
    joined = ctx.op1("Reshape", {joined, ctx.op1("Concat", parts, {attr::i("axis", 0)})});
  }
  ctx.bind(node.output(0), joined);
}

// cat(tensors, dim): PyTorch promotes the inputs' dtypes, ONNX Concat needs one.
void convertCat(LoweringContext& ctx, const Node& node) {
  if (scanAppend(node.input(0)) != nullptr) return joinScanned(ctx, node, /*stack=*/false);
  c10::ScalarType type = resultType(ctx, node);
  std::vector<std::string> inputs;
  for (const Value* tensor : ctx.listElements(node.input(0)))
    inputs.push_back(ctx.inAs(tensor, type));
  int64_t dim = isAbsent(ctx, node, 1) ? 0 : ctx.constInt(node.input(1));
  ctx.bind(node.output(0), ctx.op1("Concat", inputs, {attr::i("axis", dim)}));
}

// stack(tensors, dim): each tensor gains the new dim, then Concat along it.
void convertStack(LoweringContext& ctx, const Node& node) {
  if (scanAppend(node.input(0)) != nullptr) return joinScanned(ctx, node, /*stack=*/true);
  c10::ScalarType type = resultType(ctx, node);
  std::vector<const Value*> tensors = ctx.listElements(node.input(0));
  if (tensors.empty()) ctx.fail("stack of an empty list");
  int64_t dim = isAbsent(ctx, node, 1) ? 0 : ctx.constInt(node.input(1));
  dim = normalizeDim(ctx, dim, ctx.rank(tensors.front()) + 1);
  std::string axes = ctx.makeInts({dim});
  std::vector<std::string> inputs;
  for (const Value* tensor : tensors) {
    inputs.push_back(ctx.op1("Unsqueeze", {ctx.inAs(tensor, type), axes}));
  }
  ctx.bind(node.output(0), ctx.op1("Concat", inputs, {attr::i("axis", dim)}));
}

// --- splitting --------------------------------------------------------------
//
// split, chunk and unbind return a Tensor[] that traces take apart with
// prim::ListUnpack. An ONNX value cannot be a list, so the producer emits the
// Split and binds its outputs straight to the ListUnpack's outputs; the
// ListUnpack then has nothing left to do.

bool isSplitKind(const Node& node) {
  static const char* const kinds[] = {"aten::split",        "aten::split_with_sizes",
                                      "aten::unsafe_split", "aten::unsafe_split_with_sizes",
                                      "aten::chunk",        "aten::unsafe_chunk",
                                      "aten::unbind"};
  std::string kind = node.kind().toQualString();
  return std::any_of(std::begin(kinds), std::end(kinds), [&](const char* k) { return kind == k; });
}

// split(self, split_size, dim), split_with_sizes(self, sizes, dim),
// chunk(self, chunks, dim), unbind(self, dim). The piece lengths along dim are
// those of the reference run's pieces (chunk's depend on the size, and the
// trace fixed the number of pieces anyway).
void convertSplit(LoweringContext& ctx, const Node& node) {
  const Value* list = node.output(0);
  if (list->uses().size() != 1 || list->uses()[0].user->kind() != c10::prim::ListUnpack) {
    ctx.fail("the list of pieces must be read by exactly one prim::ListUnpack");
  }
  const Node& unpack = *list->uses()[0].user;
  bool unbind = node.kind().toQualString() == std::string("aten::unbind");
  size_t dim_index = unbind ? 1 : 2;
  const Value* x = node.input(0);
  int64_t dim = isAbsent(ctx, node, dim_index) ? 0 : ctx.constInt(node.input(dim_index));
  dim = normalizeDim(ctx, dim, ctx.rank(x));
  std::vector<int64_t> lengths;
  for (const Value* piece : unpack.outputs()) {
    lengths.push_back(unbind ? 1 : ctx.sizes(piece).at(dim));
  }
  std::vector<std::string> pieces =
      ctx.op("Split", {ctx.in(x), ctx.makeInts(lengths)}, static_cast<int>(lengths.size()),
             {attr::i("axis", dim)});
  std::string axes = unbind ? ctx.makeInts({dim}) : std::string();
  for (size_t i = 0; i < pieces.size(); ++i) {
    ctx.bind(unpack.output(i), unbind ? ctx.op1("Squeeze", {pieces[i], axes}) : pieces[i]);
  }
  ctx.markHandled(list);
}

// prim::ListUnpack of a split/chunk/unbind result (already done by the
// producer), of a prim::ListConstruct (the elements themselves) or of an int
// list such as size() (one Gather per element).
void convertListUnpack(LoweringContext& ctx, const Node& node) {
  const Value* list = node.input(0);
  const Node& producer = *list->node();
  if (isSplitKind(producer)) return;
  if (producer.kind() == c10::prim::ListConstruct) {
    std::vector<const Value*> elements = ctx.listElements(list);
    for (size_t i = 0; i < node.outputs().size(); ++i)
      ctx.bind(node.output(i), ctx.in(elements.at(i)));
    return;
  }
  if (list->type()->containedTypes().at(0)->kind() == c10::TypeKind::IntType) {
    std::string values = ctx.in(list);
    for (size_t i = 0; i < node.outputs().size(); ++i) {
      ctx.bind(node.output(i),
               ctx.op1("Gather", {values, ctx.constScalar(static_cast<double>(i), c10::kLong)},
                       {attr::i("axis", 0)}));
    }
    return;
  }
  ctx.fail("unpacking a list made by " + std::string(producer.kind().toQualString()) +
           " is not supported");
}

// --- padding and masking ----------------------------------------------------

// pad(self, pad, mode, value) and constant_pad_nd(self, pad, value). PyTorch's
// pad list starts at the last dim: [last_begin, last_end, prev_begin, ...];
// ONNX wants the begins of all dims, then the ends.
// The ONNX pads of a PyTorch pad list computed at run time (sizes, as Swin
// pads to a multiple of its window): a Gather that reorders the list, with an
// appended 0 for the dims the list does not mention.
std::string runtimePads(LoweringContext& ctx, const Value* pad_list, int64_t rank) {
  const auto count = static_cast<int64_t>(ctx.listElements(pad_list).size());
  if (count % 2 != 0 || count > 2 * rank) {
    ctx.fail("invalid pad list of " + std::to_string(count) + " values");
  }
  std::vector<int64_t> positions(2 * rank, count);  // `count` is the appended 0
  for (int64_t i = 0; i < count / 2; ++i) {
    int64_t dim = rank - 1 - i;
    positions[dim] = 2 * i;
    positions[dim + rank] = 2 * i + 1;
  }
  std::string padded =
      ctx.op1("Concat", {ctx.in(pad_list), ctx.makeInts({0})}, {attr::i("axis", 0)});
  return ctx.op1("Gather", {padded, ctx.makeInts(positions)}, {attr::i("axis", 0)});
}

void emitPad(LoweringContext& ctx, const Node& node, const std::string& mode,
             const Value* fill_value) {
  int64_t rank = ctx.rank(node.input(0));
  std::string pads_tensor;
  if (!ctx.constant(node.input(1))) {
    pads_tensor = runtimePads(ctx, node.input(1), rank);
  } else {
    std::vector<int64_t> pad = ctx.constInts(node.input(1));
    if (pad.size() % 2 != 0 || static_cast<int64_t>(pad.size()) > 2 * rank) {
      ctx.fail("invalid pad list of " + std::to_string(pad.size()) + " values");
    }
    std::vector<int64_t> pads(2 * rank, 0);
    for (size_t i = 0; i < pad.size() / 2; ++i) {
      int64_t dim = rank - 1 - static_cast<int64_t>(i);
      pads[dim] = pad[2 * i];
      pads[dim + rank] = pad[2 * i + 1];
    }
    pads_tensor = ctx.makeInts(pads);
  }
  std::vector<std::string> inputs = {ctx.in(node.input(0)), pads_tensor};
  if (fill_value != nullptr && !ctx.isNone(fill_value)) {
    inputs.push_back(ctx.inAs(fill_value, resultType(ctx, node)));
  }
  ctx.bind(node.output(0), ctx.op1("Pad", inputs, {attr::s("mode", mode)}));
}

void convertPad(LoweringContext& ctx, const Node& node) {
  std::string mode = "constant";
  if (!isAbsent(ctx, node, 2)) {
    std::optional<std::string> value = constString(ctx, node.input(2));
    if (!value) ctx.fail("the pad mode must be a constant string");
    mode = *value;
  }
  // PyTorch's "replicate" is ONNX's "edge"; "circular" needs opset 19's "wrap".
  if (mode == "replicate") mode = "edge";
  if (mode != "constant" && mode != "reflect" && mode != "edge") {
    ctx.fail("pad mode '" + mode + "' is not supported");
  }
  emitPad(ctx, node, mode,
          mode == "constant" && node.inputs().size() > 3 ? node.input(3) : nullptr);
}

void convertConstantPadNd(LoweringContext& ctx, const Node& node) {
  emitPad(ctx, node, "constant", node.inputs().size() > 2 ? node.input(2) : nullptr);
}

// triu(self, diagonal) and tril(self, diagonal): ONNX Trilu.
ConverterFn trilu(bool upper) {
  return [upper](LoweringContext& ctx, const Node& node) {
    std::vector<std::string> inputs = {ctx.in(node.input(0))};
    if (!isAbsent(ctx, node, 1)) inputs.push_back(ctx.inAs(node.input(1), c10::kLong));
    ctx.bind(node.output(0), ctx.op1("Trilu", inputs, {attr::i("upper", upper ? 1 : 0)}));
  };
}

// --- aliases ------------------------------------------------------------------

// contiguous, clone, detach, ..., and prim::unchecked_cast (a value whose
// Optional type a None check refined): the same values, so the same ONNX
// tensor.
void convertAlias(LoweringContext& ctx, const Node& node) { bindToInput(ctx, node); }

// dropout(input, p, train) and its variants are the identity at inference,
// and in training with p = 0 (torchvision's Swin calls F.dropout(p=0.0,
// training=True) in eval mode).
void convertDropout(LoweringContext& ctx, const Node& node) {
  if (node.inputs().size() > 2 && ctx.constBool(node.input(2)) &&
      constNumber(ctx, node.input(1)) != 0.0) {
    ctx.fail("dropout in training mode is not supported: call model.eval() before tracing");
  }
  bindToInput(ctx, node);
}

// --- dtype conversions --------------------------------------------------------

// to(...) in all its overloads, type_as, NumToTensor, and tensor(data, ...) of
// a number or an int list (an ONNX tensor already, see LoweringContext::in): the
// result is the input in the dtype the reference run recorded, whatever the
// arguments say (device, copy and memory format do not matter in ONNX).
void convertToResultType(LoweringContext& ctx, const Node& node) {
  const Value* input = node.input(0);
  ctx.bind(node.output(0), castTo(ctx, ctx.in(input), dtypeOf(ctx, input), resultType(ctx, node)));
}

// Int(tensor), Float(tensor), Bool(tensor), ScalarImplicit(tensor): a
// one-element tensor becomes a number (a 0-d tensor here) of that kind; a
// Scalar (ScalarImplicit) keeps the tensor's dtype.
void convertTensorToNumber(LoweringContext& ctx, const Node& node) {
  const Value* input = node.input(0);
  std::string value = ctx.in(input);
  if (isTensor(input) && ctx.rank(input) > 0) {
    value = ctx.op1("Reshape", {value, ctx.makeInts({})});
  }
  c10::ScalarType from = dtypeOf(ctx, input);
  bool is_scalar = node.output(0)->type()->kind() == c10::TypeKind::NumberType;
  ctx.bind(node.output(0), castTo(ctx, value, from, is_scalar ? from : resultType(ctx, node)));
}

// --- creation -----------------------------------------------------------------

// A tensor of `shape` (a 1-D int64 ONNX tensor) filled with the 0-d `value`.
void bindFilled(LoweringContext& ctx, const Node& node, const std::string& value,
                const std::string& shape) {
  ctx.bind(node.output(0), ctx.op1("Expand", {value, shape}));
}

// ones(size, ...), zeros(size, ...): the size may be computed at run time.
ConverterFn filledWith(double value) {
  return [value](LoweringContext& ctx, const Node& node) {
    bindFilled(ctx, node, ctx.constScalar(value, resultType(ctx, node)), ctx.in(node.input(0)));
  };
}

// new_ones(self, size, ...), new_zeros(self, size, ...).
ConverterFn newFilledWith(double value) {
  return [value](LoweringContext& ctx, const Node& node) {
    bindFilled(ctx, node, ctx.constScalar(value, resultType(ctx, node)), ctx.in(node.input(1)));
  };
}

// ones_like(self, ...), zeros_like(self, ...).
ConverterFn likeFilledWith(double value) {
  return [value](LoweringContext& ctx, const Node& node) {
    bindFilled(ctx, node, ctx.constScalar(value, resultType(ctx, node)),
               ctx.op1("Shape", {ctx.in(node.input(0))}));
  };
}

// full(size, fill_value, ...).
void convertFull(LoweringContext& ctx, const Node& node) {
  bindFilled(ctx, node, ctx.inAs(node.input(1), resultType(ctx, node)), ctx.in(node.input(0)));
}

// full_like(self, fill_value, ...).
void convertFullLike(LoweringContext& ctx, const Node& node) {
  bindFilled(ctx, node, ctx.inAs(node.input(1), resultType(ctx, node)),
             ctx.op1("Shape", {ctx.in(node.input(0))}));
}

// arange(end, dtype, layout, device, pin_memory), arange(start, end, ...) and
// arange(start, end, step, ...), told apart by their argument count.
void convertArange(LoweringContext& ctx, const Node& node) {
  c10::ScalarType type = resultType(ctx, node);
  size_t count = node.inputs().size();
  if (count < 5 || count > 7) ctx.fail("unexpected arange overload");
  size_t numbers = count - 4;  // 1, 2 or 3 leading Scalars
  std::string start = numbers >= 2 ? ctx.inAs(node.input(0), type) : ctx.constScalar(0, type);
  std::string end = ctx.inAs(node.input(numbers >= 2 ? 1 : 0), type);
  std::string step = numbers == 3 ? ctx.inAs(node.input(2), type) : ctx.constScalar(1, type);
  ctx.bind(node.output(0), ctx.op1("Range", {start, end, step}));
}

}  // namespace

void populateShapeOps(ConverterRegistry& registry) {
  const std::string family = "shape";

  onOps(registry, {"aten::size"}, 1, family, convertSize);
  onOps(registry, {"aten::dim"}, 1, family, convertDim);
  onOps(registry, {"aten::numel"}, 1, family, convertNumel);

  onOps(registry, {"aten::view", "aten::reshape", "aten::_unsafe_view"}, 5, family, convertReshape);
  onOps(registry, {"aten::view_as", "aten::reshape_as"}, 5, family, convertReshapeAs);
  onOps(registry, {"aten::flatten"}, 15, family, convertFlatten);
  onOps(registry, {"aten::unsqueeze", "aten::unsqueeze_"}, 13, family, convertUnsqueeze);
  onOps(registry, {"aten::squeeze", "aten::squeeze_"}, 13, family, convertSqueeze);

  onOps(registry, {"aten::permute"}, 1, family, convertPermute);
  onOps(registry, {"aten::transpose", "aten::transpose_", "aten::swapaxes"}, 1, family,
        convertTranspose);
  onOps(registry, {"aten::t", "aten::t_"}, 1, family, convertT);

  onOps(registry, {"aten::expand"}, 9, family, convertExpand);
  onOps(registry, {"aten::expand_as"}, 8, family, convertExpandAs);
  onOps(registry, {"aten::repeat"}, 13, family, convertRepeat);

  onOps(registry, {"aten::slice"}, 13, family, convertSlice);
  onOps(registry, {"aten::select", "aten::__getitem__"}, 11, family, convertSelect);
  onOps(registry, {"aten::len"}, 11, family, convertLen);
  onOps(registry, {"aten::roll"}, 13, family, convertRoll);
  onOps(registry, {"aten::cat", "aten::concat", "aten::concatenate"}, 11, family, convertCat);
  onOps(registry, {"aten::stack"}, 13, family, convertStack);

  onOps(registry,
        {"aten::split", "aten::split_with_sizes", "aten::unsafe_split",
         "aten::unsafe_split_with_sizes", "aten::chunk", "aten::unsafe_chunk", "aten::unbind"},
        13, family, convertSplit);
  onOps(registry, {"prim::ListUnpack"}, 13, family, convertListUnpack);

  onOps(registry, {"aten::pad"}, 11, family, convertPad);
  onOps(registry, {"aten::constant_pad_nd"}, 11, family, convertConstantPadNd);
  onOps(registry, {"aten::triu"}, 14, family, trilu(/*upper=*/true));
  onOps(registry, {"aten::tril"}, 14, family, trilu(/*upper=*/false));

  onOps(registry,
        {"aten::contiguous", "aten::clone", "aten::detach", "aten::detach_", "aten::lift_fresh",
         "aten::alias", "prim::unchecked_cast"},
        1, family, convertAlias);
  onOps(registry,
        {"aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::feature_dropout_",
         "aten::alpha_dropout", "aten::alpha_dropout_", "aten::feature_alpha_dropout",
         "aten::feature_alpha_dropout_"},
        1, family, convertDropout);

  onOps(registry,
        {"aten::to", "aten::type_as", "aten::_to_copy", "prim::NumToTensor", "aten::tensor"}, 6,
        family, convertToResultType);
  onOps(registry, {"aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit"}, 6, family,
        convertTensorToNumber);

  onOps(registry, {"aten::ones"}, 8, family, filledWith(1.0));
  onOps(registry, {"aten::zeros"}, 8, family, filledWith(0.0));
  onOps(registry, {"aten::new_ones"}, 8, family, newFilledWith(1.0));
  onOps(registry, {"aten::new_zeros"}, 8, family, newFilledWith(0.0));
  onOps(registry, {"aten::ones_like"}, 8, family, likeFilledWith(1.0));
  onOps(registry, {"aten::zeros_like"}, 8, family, likeFilledWith(0.0));
  // Memory torch leaves unset has no value to match: zeros, as torch.onnx
  // gives. A model that reads it before writing it differs from itself.
  onOps(registry, {"aten::empty"}, 8, family, filledWith(0.0));
  onOps(registry, {"aten::new_empty"}, 8, family, newFilledWith(0.0));
  onOps(registry, {"aten::empty_like"}, 8, family, likeFilledWith(0.0));
  onOps(registry, {"aten::full"}, 8, family, convertFull);
  onOps(registry, {"aten::full_like"}, 8, family, convertFullLike);
  onOps(registry, {"aten::arange"}, 11, family, convertArange);
}

}  // namespace mexport
