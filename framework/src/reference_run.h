// The runs of a prepared model that record what the lowering needs (every
// value's dtype and sizes, branches and loop bodies included) and what
// validation compares (PyTorch's outputs), without ever running user code on
// a path the example inputs do not take:
//  - the meta walk interprets the graph node by node on meta tensors (dtype
//    and sizes, no data): both branches of every If, every Loop body until
//    its carried values' types stop changing. It computes no value, so it can
//    neither loop forever nor fail on a path it should not take, and it
//    estimates what a real run would hold in memory;
//  - the real run executes the model on the example inputs in the TorchScript
//    interpreter, recording each value where it is computed and letting the
//    interpreter free it as usual, under a deadline.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model_loader.h"

namespace mexport {

// What the real run saw of each value it reached: dtype and sizes merged over
// loop iterations (a dim that changed is -1), and the value of each int,
// float and bool that did not change.
struct RunRecords {
  std::unordered_map<const torch::jit::Value*, ValueInfo> infos;
  std::unordered_map<const torch::jit::Value*, c10::IValue> scalars;
};

struct MetaWalk {
  // Every recordable value got a dtype and a rank that do not depend on data
  // the walk cannot see (nonzero, item, an op without a meta kernel).
  bool complete = false;
  // The most bytes of intermediate values a real run would hold at once, and
  // the node where that happens ("aten::_convolution in module 'conv1' at
  // model.py:12").
  int64_t peak_bytes = 0;
  std::string peak_node;
};

// Walks the prepared graph on meta tensors and sets model.values: a value in
// `records` keeps what the real run saw, every other one gets what the walk
// computed, with -1 for a dim that varies (loop iterations, branches) or
// cannot be known.
MetaWalk walkOnMeta(LoadedModel& model, const RunRecords& records);

// Runs the model on the example inputs and returns what it saw; with
// `keep_outputs`, PyTorch's outputs go to model.reference_outputs. Throws what
// the forward throws. After `timeout_seconds` (0: no limit) it ends the
// process with one line naming the node the run had reached.
RunRecords runReference(LoadedModel& model, bool keep_outputs, double timeout_seconds);

// The memory this process can still take, from /proc/meminfo and the cgroup
// limit; nullopt where neither can be read.
std::optional<int64_t> availableMemoryBytes();

// "aten::tanh in module 'cell.lin' at model.py:12": a node for messages.
std::string describeNode(const torch::jit::Node& node);

// Whether the reference run records `value` (tensors, Optional tensors and
// numbers).
bool recordable(const torch::jit::Value* value);

// The values `node` reads, those read inside its blocks included.
void valuesRead(const torch::jit::Node* node, std::vector<const torch::jit::Value*>& out);

// The graph's inputs for a run: the example inputs, then the parameters.
std::vector<c10::IValue> inputStack(const LoadedModel& model);

// Runs `graph` on `stack` in the TorchScript interpreter and returns its
// first output.
c10::IValue runGraph(const std::shared_ptr<torch::jit::Graph>& graph,
                     std::vector<c10::IValue> stack);

}  // namespace mexport
