// Rewrites of the prepared graph into forms the lowering takes: tuples taken
// apart, None and rank checks the types decide folded, Optional values split
// into a flag and a tensor. Each keeps every node's call stack, so tags do not
// change.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>
#include <unordered_map>

#include "model_loader.h"

namespace mexport {

// `graph` with every tuple taken apart, those that If and Loop carry (an early
// `return a, b`, a loop over an (h, c) state) included.
std::shared_ptr<torch::jit::Graph> withoutTuples(const std::shared_ptr<torch::jit::Graph>& graph);

// Replaces `x is None` and `x is not None` by a constant where the types
// decide it: x's type cannot hold None (a Tensor), or can hold nothing else.
void foldStaticNoneChecks(torch::jit::Block* block);

// Replaces each aten::dim(x) by x's rank in `values` (the example inputs fix
// every rank, as an ONNX file's inputs do), and `rank in (1, 2)` by its
// answer, so that the rank checks of nn modules (`if input.dim() not in (1,
// 2): raise`) fold away. True when the graph changed.
bool foldRankChecks(torch::jit::Block* block,
                    const std::unordered_map<const torch::jit::Value*, ValueInfo>& values);

// Makes every If and Loop that writes (fill_, copy_, index_put_ through
// slice / select views) a tensor living outside it hand the new value out as
// a result, a Loop carrying it, and the code after it read that result:
// `tokens[step] = token` in a decoder's loop. The lowering rebinds a written
// tensor to its new value, which an ONNX sub-graph cannot do for its parent.
void liftWritesOutOfBlocks(torch::jit::Graph& graph);

// Replaces each list of tensors that a loop appends to and reads (outs[-1],
// len(outs) in the loop) by the stack of its elements when `values` gives
// them one dtype and shape: append becomes a concatenation, carried by the
// loop, len the first dim, indexing a select. Lists a loop only fills and
// that are read after it stay lists: they become the loop's scan outputs.
// True when the graph changed.
bool growingListsAsStacks(torch::jit::Graph& graph,
                          const std::unordered_map<const torch::jit::Value*, ValueInfo>& values);

// Splits every Optional[Tensor] that an If or a Loop produces (`y = None;
// if c: y = f(x)`, a loop that may set `peak`) into a bool flag and a tensor,
// an empty one of the right dtype and rank where the value is None, and
// rewrites `y is None`, `y is not None` and the refined `y` to use them: ONNX
// If and Loop then carry plain tensors once EliminateDeadCode has removed the
// Optional results nothing reads. `values` gives the tensors' dtypes and
// ranks. True when the graph changed.
bool splitOptionals(torch::jit::Graph& graph,
                    const std::unordered_map<const torch::jit::Value*, ValueInfo>& values);

}  // namespace mexport
