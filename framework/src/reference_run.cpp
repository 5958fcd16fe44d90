#include "reference_run.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/canonicalize_graph_fuser_ops.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/csrc/jit/runtime/operator.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_set>

#include "deadline.h"
#include "meta_kernels.h"

namespace mexport {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

bool isScalar(const c10::IValue& value) {
  return value.isInt() || value.isDouble() || value.isBool();
}

bool sameScalar(const c10::IValue& a, const c10::IValue& b) {
  if (a.isInt() && b.isInt()) return a.toInt() == b.toInt();
  if (a.isDouble() && b.isDouble()) return a.toDouble() == b.toDouble();
  if (a.isBool() && b.isBool()) return a.toBool() == b.toBool();
  return false;
}

ValueInfo infoOf(const c10::IValue& value) {
  if (value.isTensor()) return {value.toTensor().scalar_type(), value.toTensor().sizes().vec()};
  if (value.isInt()) return {c10::ScalarType::Long, {}};
  if (value.isDouble()) return {c10::ScalarType::Double, {}};
  if (value.isBool()) return {c10::ScalarType::Bool, {}};
  return {};
}

// Folds one more sighting of a value into `seen`: dims that differ become -1.
// False when dtype or rank differ, which no ONNX type can hold.
bool mergeInto(ValueInfo& seen, const ValueInfo& now) {
  if (seen.dtype != now.dtype || seen.sizes.size() != now.sizes.size()) return false;
  for (size_t d = 0; d < seen.sizes.size(); ++d)
    if (seen.sizes[d] != now.sizes[d]) seen.sizes[d] = -1;
  return true;
}

// --- the real run ---------------------------------------------------------------
//
// A copy of the prepared graph gets a mexport::record(value, slot) node after
// every recordable value, branches and loop bodies included. The op reads the
// value's dtype and sizes into the active Recorder and keeps nothing, so the
// interpreter frees each value after its last real use, as when PyTorch runs
// the model: memory stays in proportion to PyTorch's own.

class Recorder {
 public:
  Recorder(size_t slots, std::vector<bool> keep) : entries_(slots), keep_(std::move(keep)) {}

  void record(int64_t slot, const c10::IValue& value) {
    last_slot_.store(slot, std::memory_order_relaxed);
    Entry& entry = entries_.at(static_cast<size_t>(slot));
    if (keep_[slot]) entry.kept = value.toTensor();
    const ValueInfo info = infoOf(value);
    if (info.dtype == c10::ScalarType::Undefined) return;  // None in an Optional
    if (!entry.seen) {
      entry.info = info;
      entry.seen = true;
      if (isScalar(value)) entry.scalar = value;
      return;
    }
    entry.conflict |= !mergeInto(entry.info, info);
    if (entry.scalar && !sameScalar(*entry.scalar, value)) entry.scalar.reset();
  }

  // The slot recorded last (-1 before the first), read by another thread.
  int64_t lastSlot() const { return last_slot_.load(std::memory_order_relaxed); }

  struct Entry {
    bool seen = false;
    bool conflict = false;  // dtype or rank changed between sightings
    ValueInfo info;
    std::optional<c10::IValue> scalar;  // while every sighting had this value
    at::Tensor kept;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
  std::vector<bool> keep_;
  std::atomic<int64_t> last_slot_{-1};
};

thread_local Recorder* active_recorder = nullptr;

const c10::Symbol kRecord = c10::Symbol::fromQualString("mexport::record");

// CONSERVATIVE: the op has side effects, so no pass removes it.
const torch::jit::RegisterOperators kRecordOperator({torch::jit::Operator(
    "mexport::record(Any value, int slot) -> ()",
    [](torch::jit::Stack& stack) {
      const int64_t slot = stack.back().toInt();
      stack.pop_back();
      if (active_recorder != nullptr) active_recorder->record(slot, stack.back());
      stack.pop_back();
    },
    c10::AliasAnalysisKind::CONSERVATIVE)});

// A copy of the prepared graph with record nodes, and the prepared value each
// slot records.
struct InstrumentedGraph {
  std::shared_ptr<torch::jit::Graph> graph;
  std::vector<const Value*> slots;
  std::vector<bool> keep;
};

class Instrumenter {
 public:
  Instrumenter(torch::jit::Graph& prepared, const std::vector<const Value*>& kept)
      : kept_(kept.begin(), kept.end()) {
    result_.graph = prepared.copy();
    pair(prepared.block(), result_.graph->block());
    instrument(result_.graph->block());
  }

  InstrumentedGraph take() { return std::move(result_); }

 private:
  // Maps each value of the copy to the prepared value it was cloned from.
  void pair(const Block* from, Block* to) {
    for (size_t i = 0; i < from->inputs().size(); ++i)
      original_[to->inputs()[i]] = from->inputs()[i];
    auto it = to->nodes().begin();
    for (const Node* node : from->nodes()) {
      Node* twin = *it++;
      for (size_t i = 0; i < node->outputs().size(); ++i)
        original_[twin->outputs()[i]] = node->outputs()[i];
      for (size_t b = 0; b < node->blocks().size(); ++b) pair(node->blocks()[b], twin->blocks()[b]);
    }
  }

  void instrument(Block* block) {
    const std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
    Node* first = block->nodes().front();
    for (Value* input : block->inputs()) addRecord(input, first);
    for (Node* node : nodes) {
      for (Block* sub : node->blocks()) instrument(sub);
      for (Value* output : node->outputs()) addRecord(output, node->next());
    }
  }

  void addRecord(Value* value, Node* before) {
    const Value* original = original_.at(value);
    if (!recordable(original)) return;
    torch::jit::Graph& graph = *before->owningGraph();
    torch::jit::WithInsertPoint guard(before);
    Value* slot = graph.insertConstant(static_cast<int64_t>(result_.slots.size()));
    graph.insertNode(graph.create(kRecord, {value, slot}, 0));
    result_.slots.push_back(original);
    result_.keep.push_back(kept_.count(original) > 0);
  }

  std::unordered_set<const Value*> kept_;
  std::unordered_map<const Value*, const Value*> original_;
  InstrumentedGraph result_;
};

// --- the meta walk --------------------------------------------------------------

// A value as the walk knows it.
struct Abstract {
  c10::IValue value;           // a meta tensor, a scalar, a list, a tuple, None, ...
  std::vector<int64_t> sizes;  // a tensor's, -1 where the dim varies or cannot be known
  bool exact = true;           // `value` is what a real run computes here
};

// A tensor's sizes when they are known, else all -1.
std::vector<int64_t> sizesOf(const at::Tensor& t, bool exact) {
  return exact ? t.sizes().vec() : std::vector<int64_t>(t.dim(), -1);
}

// The tensors `value` holds, lists and tuples included.
void tensorsIn(const c10::IValue& value, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTensorList()) {
    for (const at::Tensor& t : value.toTensorVector()) out.push_back(t);
  } else if (value.isList()) {
    for (const c10::IValue& element : value.toListRef()) tensorsIn(element, out);
  } else if (value.isTuple()) {
    for (const c10::IValue& element : value.toTupleRef().elements()) tensorsIn(element, out);
  }
}

// `value` with `fn` applied to each tensor it holds, lists and tuples
// included. Containers are rebuilt only when a tensor changes: a list that a
// loop appends to must stay one object.
template <typename Fn>
c10::IValue mapTensors(const c10::IValue& value, const Fn& fn) {
  if (value.isTensor()) return fn(value.toTensor());
  std::vector<c10::IValue> elements;
  if (value.isList())
    elements.assign(value.toListRef().begin(), value.toListRef().end());
  else if (value.isTuple())
    elements = value.toTupleRef().elements().vec();
  else
    return value;
  bool changed = false;
  for (c10::IValue& element : elements) {
    c10::IValue mapped = mapTensors(element, fn);
    const bool holds_tensors = element.isTensor() || element.isList() || element.isTuple();
    changed |= holds_tensors && !mapped.isSameIdentity(element);
    element = std::move(mapped);
  }
  if (!changed) return value;
  if (value.isTuple()) return c10::ivalue::Tuple::create(std::move(elements));
  c10::impl::GenericList list(value.toList().elementType());
  for (c10::IValue& element : elements) list.push_back(std::move(element));
  return list;
}

// `value` with its tensors on the meta device (constants, and what factory
// ops without a device argument make), but for 0-d CPU tensors when
// `keep_scalars`: ops take those beside meta tensors as numbers.
c10::IValue toMeta(const c10::IValue& value, bool keep_scalars = false) {
  return mapTensors(value, [keep_scalars](const at::Tensor& t) -> c10::IValue {
    if (!t.defined() || t.is_meta() || (keep_scalars && t.dim() == 0)) return t;
    return t.to(t.options().device(c10::kMeta));
  });
}

bool holdsMetaTensor(const c10::IValue& value) {
  std::vector<at::Tensor> tensors;
  tensorsIn(value, tensors);
  return std::any_of(tensors.begin(), tensors.end(),
                     [](const at::Tensor& t) { return t.defined() && t.is_meta(); });
}

// Values the walk computes for real, on the CPU: results of ops on numbers
// and such small tensors alone, which are sizes, shape arithmetic and
// constants (position ids, masks, a traced 0-d number), never the data of
// the inputs or weights, which are meta tensors.
constexpr int64_t kMaxValueElements = 1024;

bool smallValues(const torch::jit::Stack& values) {
  std::vector<at::Tensor> tensors;
  for (const c10::IValue& value : values) tensorsIn(value, tensors);
  return std::all_of(tensors.begin(), tensors.end(), [](const at::Tensor& t) {
    return !t.defined() || t.numel() <= kMaxValueElements;
  });
}

// A stand-in of the right type for a value the walk cannot compute (the
// result of aten::Bool on a tensor, an item()): its value is never used for
// more than a type, since everything computed from it is inexact.
std::optional<Abstract> standIn(const Value* value) {
  const c10::TypePtr& type = value->type();
  switch (type->kind()) {
    case c10::TypeKind::IntType:
      return Abstract{c10::IValue(int64_t{1}), {}, false};
    case c10::TypeKind::FloatType:
      return Abstract{c10::IValue(1.0), {}, false};
    case c10::TypeKind::BoolType:
      return Abstract{c10::IValue(true), {}, false};
    case c10::TypeKind::NoneType:
      return Abstract{c10::IValue(), {}, false};
    case c10::TypeKind::TensorType: {
      // A traced graph knows the dtype and rank of every tensor.
      const auto tensor = type->expect<c10::TensorType>();
      const auto dtype = tensor->scalarType();
      const auto rank = tensor->dim();
      if (!dtype || !rank) return std::nullopt;
      at::Tensor t = at::empty(std::vector<int64_t>(*rank, 1),
                               at::TensorOptions().dtype(*dtype).device(c10::kMeta));
      return Abstract{t, std::vector<int64_t>(*rank, -1), false};
    }
    default:
      return std::nullopt;
  }
}

// Two sightings of one value (the branches of an If, a Loop's carried value
// before and after an iteration) as one.
std::optional<Abstract> merge(const std::optional<Abstract>& a, const std::optional<Abstract>& b) {
  // One side unknown, or None where the other holds a value (an Optional):
  // the other side's type, its sizes unknown.
  const bool one_none = a && b && a->value.isNone() != b->value.isNone();
  if (!a || !b || one_none) {
    std::optional<Abstract> known = (a && !a->value.isNone()) ? a : b;
    if (known) {
      known->exact = false;
      std::fill(known->sizes.begin(), known->sizes.end(), -1);
    }
    return known;
  }
  // The larger of the two stands for both: an empty tensor makes a poor
  // stand-in (max() of it fails).
  const bool b_larger = a->value.isTensor() && b->value.isTensor() &&
                        b->value.toTensor().numel() > a->value.toTensor().numel();
  Abstract merged = b_larger ? *b : *a;
  merged.exact = a->exact && b->exact;
  if (a->value.isTensor() && b->value.isTensor()) {
    ValueInfo seen{a->value.toTensor().scalar_type(), a->sizes};
    if (!mergeInto(seen, {b->value.toTensor().scalar_type(), b->sizes})) return std::nullopt;
    merged.sizes = seen.sizes;
    merged.exact &= merged.sizes == a->sizes && merged.sizes == b->sizes;
  } else if (isScalar(a->value)) {
    merged.exact &= sameScalar(a->value, b->value);
  } else if (!(a->value.isNone() && b->value.isNone())) {
    merged.exact = false;  // lists and others: no cheap comparison
  }
  return merged;
}

bool sameKnowledge(const std::optional<Abstract>& a, const std::optional<Abstract>& b) {
  if (!a || !b) return !a && !b;
  return a->exact == b->exact && a->sizes == b->sizes;
}

// What the intermediate values of a real run would hold in memory at each
// top-level node: each tensor storage counts once (views share it) from the
// node that makes it to its last reader; the graph's inputs are there already.
class MemoryEstimate {
 public:
  void allocate(const Value* value, const Abstract& a) {
    std::vector<at::Tensor> tensors;
    tensorsIn(a.value, tensors);
    for (const at::Tensor& t : tensors) {
      if (!t.defined() || !t.has_storage() || !a.exact) continue;
      const c10::StorageImpl* storage = t.storage().unsafeGetStorageImpl();
      if (given_.count(storage)) continue;
      auto [use, added] =
          live_.try_emplace(storage, Use{static_cast<int64_t>(t.storage().nbytes())});
      if (added) live_bytes_ += use->second.bytes;
      ++use->second.holders;
      held_[value].push_back(storage);
    }
  }
  void given(const Abstract& a) {
    std::vector<at::Tensor> tensors;
    tensorsIn(a.value, tensors);
    for (const at::Tensor& t : tensors)
      if (t.defined() && t.has_storage()) given_.insert(t.storage().unsafeGetStorageImpl());
  }
  void release(const Value* value) {
    auto it = held_.find(value);
    if (it == held_.end()) return;
    for (const c10::StorageImpl* storage : it->second) {
      auto use = live_.find(storage);
      if (--use->second.holders == 0) {
        live_bytes_ -= use->second.bytes;
        live_.erase(use);
      }
    }
    held_.erase(it);
  }
  // After a top-level node whose blocks made `block_bytes`.
  void observe(const Node* node, int64_t block_bytes) {
    if (live_bytes_ + block_bytes > peak_bytes_) {
      peak_bytes_ = live_bytes_ + block_bytes;
      peak_node_ = node;
    }
  }
  int64_t peakBytes() const { return peak_bytes_; }
  const Node* peakNode() const { return peak_node_; }

 private:
  struct Use {
    int64_t bytes = 0;
    int holders = 0;
  };
  std::unordered_set<const c10::StorageImpl*> given_;
  std::unordered_map<const c10::StorageImpl*, Use> live_;
  std::unordered_map<const Value*, std::vector<const c10::StorageImpl*>> held_;
  int64_t live_bytes_ = 0;
  int64_t peak_bytes_ = 0;
  const Node* peak_node_ = nullptr;
};

class MetaWalker {
 public:
  MetaWalker(const LoadedModel& model, const RunRecords& records)
      : model_(model), records_(records) {}

  MetaWalk walk(std::unordered_map<const Value*, ValueInfo>& values) {
    registerMissingMetaKernels();
    c10::InferenceMode inference;
    const torch::jit::Graph& graph = *model_.prepared.graph;
    std::vector<c10::IValue> inputs(model_.inputs.begin(), model_.inputs.end());
    for (const Parameter& p : model_.parameters) inputs.emplace_back(p.tensor);
    for (size_t i = 0; i < inputs.size(); ++i) {
      const at::Tensor& t = inputs[i].toTensor();
      Abstract a{at::empty_strided(t.sizes(), t.strides(), t.options().device(c10::kMeta)),
                 t.sizes().vec(), true};
      memory_.given(a);
      bind(graph.inputs()[i], std::move(a));
    }
    walkTopLevel(graph);

    MetaWalk result;
    result.complete = complete_;
    result.peak_bytes = memory_.peakBytes();
    if (memory_.peakNode() != nullptr) result.peak_node = describeNode(*memory_.peakNode());
    values.clear();
    collect(graph.block(), values, result.complete);
    return result;
  }

 private:
  // The top-level nodes in order, with the memory a real run holds.
  void walkTopLevel(const torch::jit::Graph& graph) {
    std::unordered_map<const Value*, const Node*> last_reader;
    for (const Node* node : graph.nodes()) {
      std::vector<const Value*> read;
      valuesRead(node, read);
      for (const Value* value : read) last_reader[value] = node;
    }
    for (const Value* output : graph.outputs()) last_reader[output] = graph.return_node();
    for (const Node* node : graph.nodes()) {
      block_bytes_ = 0;
      walkNode(node);
      for (const Value* output : node->outputs()) {
        auto it = env_.find(output);
        if (it != env_.end()) memory_.allocate(output, it->second);
      }
      memory_.observe(node, block_bytes_);
      std::vector<const Value*> read;
      valuesRead(node, read);
      for (const Value* output : node->outputs()) read.push_back(output);
      for (const Value* value : read) {
        auto it = last_reader.find(value);
        if (it == last_reader.end() || it->second == node) memory_.release(value);
      }
    }
  }

  void walkBlock(const Block* block) {
    for (const Node* node : block->nodes()) {
      walkNode(node);
      for (const Value* output : node->outputs()) {
        auto it = env_.find(output);
        if (it == env_.end() || !it->second.exact) continue;
        std::vector<at::Tensor> tensors;
        tensorsIn(it->second.value, tensors);
        for (const at::Tensor& t : tensors)
          if (t.defined() && t.has_storage()) block_bytes_ += static_cast<int64_t>(t.nbytes());
      }
    }
  }

  void walkNode(const Node* node) {
    if (node->kind() == c10::prim::If) return walkIf(node);
    if (node->kind() == c10::prim::Loop) return walkLoop(node);
    if (seeded(node)) return;
    runOp(node);
  }

  // Binds the outputs of `node` from the real run when it saw every one of
  // them exactly; false when the node must be walked.
  bool seeded(const Node* node) {
    if (records_.infos.empty() || node->outputs().empty()) return false;
    std::vector<Abstract> seeds;
    for (const Value* output : node->outputs()) {
      std::optional<Abstract> seed = seedOf(output);
      if (!seed) return false;
      seeds.push_back(std::move(*seed));
    }
    for (size_t i = 0; i < seeds.size(); ++i) bind(node->outputs()[i], std::move(seeds[i]));
    return true;
  }

  std::optional<Abstract> seedOf(const Value* value) const {
    if (auto scalar = records_.scalars.find(value); scalar != records_.scalars.end())
      return Abstract{scalar->second, {}, true};
    auto info = records_.infos.find(value);
    if (info == records_.infos.end() || value->type()->kind() != c10::TypeKind::TensorType)
      return std::nullopt;
    const std::vector<int64_t>& sizes = info->second.sizes;
    if (std::find(sizes.begin(), sizes.end(), -1) != sizes.end()) return std::nullopt;
    return Abstract{
        at::empty(sizes, at::TensorOptions().dtype(info->second.dtype).device(c10::kMeta)), sizes,
        true};
  }

  // Runs the node's op on the abstract values of its inputs: on meta
  // tensors, else (no meta kernel, or an op that reads values) on stand-in
  // CPU tensors of the same dtypes and sizes. An op that cannot run gives
  // stand-ins where the output types allow, else leaves its outputs unknown.
  void runOp(const Node* node) {
    if (node->kind() == c10::prim::Print || node->kind() == c10::aten::warn) return;
    torch::jit::Stack stack;
    bool exact = true;
    for (const Value* input : node->inputs()) {
      auto it = env_.find(input);
      if (it == env_.end()) return unknownOutputs(node);
      stack.push_back(it->second.value);
      exact &= it->second.exact;
    }
    std::optional<std::vector<Abstract>> outputs = runOnMeta(node, stack, exact);
    if (!outputs) outputs = runOnStandIns(node, stack, exact);
    if (!outputs) return unknownOutputs(node);
    for (size_t i = 0; i < outputs->size(); ++i) bind(node->outputs()[i], std::move((*outputs)[i]));
  }

  void unknownOutputs(const Node* node) {
    for (const Value* output : node->outputs()) {
      std::optional<Abstract> stand_in = standIn(output);
      if (!stand_in || output->type()->kind() == c10::TypeKind::TensorType) complete_ = false;
      if (stand_in) bind(output, std::move(*stand_in));
    }
  }

  // The outputs of `node` on `inputs`, or nullopt when it throws. On meta
  // inputs, tensors the op makes are made on the meta device too.
  static std::optional<torch::jit::Stack> execute(const Node* node, torch::jit::Stack stack,
                                                  bool on_meta) {
    try {
      switch (node->kind()) {
        // What the interpreter does itself rather than through an operator.
        case c10::prim::Constant:
          return torch::jit::Stack{*torch::jit::toIValue(node->output())};
        case c10::prim::ListConstruct: {
          c10::impl::GenericList list(
              node->output()->type()->expectRef<c10::ListType>().getElementType());
          for (c10::IValue& element : stack) list.push_back(std::move(element));
          return torch::jit::Stack{c10::IValue(std::move(list))};
        }
        case c10::prim::ListUnpack: {
          const auto elements = stack.at(0).toListRef();
          if (elements.size() != node->outputs().size()) return std::nullopt;
          return torch::jit::Stack(elements.begin(), elements.end());
        }
        case c10::prim::TupleConstruct:
          return torch::jit::Stack{c10::ivalue::Tuple::create(std::move(stack))};
        case c10::prim::TupleUnpack: {
          const auto& elements = stack.at(0).toTupleRef().elements();
          return torch::jit::Stack(elements.begin(), elements.end());
        }
        case c10::prim::TupleIndex:
          return torch::jit::Stack{
              stack[0].toTupleRef().elements().at(static_cast<size_t>(stack[1].toInt()))};
        case c10::prim::unchecked_cast:
          return stack;
        default:
          break;
      }
      const torch::jit::Operator* op = node->maybeOperator();
      if (op == nullptr) return std::nullopt;
      if (on_meta) {
        for (c10::IValue& value : stack) value = toMeta(value, /*keep_scalars=*/true);
        onMetaDevice(*op, stack);
      }
      canonicalScalar(node, stack);
      op->getOperation(node)(stack);
      if (stack.size() != node->outputs().size()) return std::nullopt;
      return stack;
    } catch (...) {  // c10::Error, the interpreter's errors, a raised exception
      return std::nullopt;
    }
  }

  static std::optional<std::vector<Abstract>> runOnMeta(const Node* node,
                                                        const torch::jit::Stack& inputs,
                                                        bool exact) {
    std::optional<torch::jit::Stack> results = execute(node, inputs, true);
    if (!results) return std::nullopt;
    const bool values_only = std::none_of(inputs.begin(), inputs.end(), holdsMetaTensor);
    if (values_only && smallValues(*results) && !node->isNondeterministic()) {
      if (std::optional<torch::jit::Stack> values = execute(node, inputs, false))
        return abstractsOf(*values, exact);
    }
    for (c10::IValue& result : *results) result = toMeta(result);
    return abstractsOf(*results, exact);
  }

  static std::vector<Abstract> abstractsOf(const torch::jit::Stack& results, bool exact) {
    std::vector<Abstract> outputs;
    for (const c10::IValue& value : results) {
      std::vector<int64_t> sizes =
          value.isTensor() ? sizesOf(value.toTensor(), exact) : std::vector<int64_t>{};
      outputs.push_back({value, std::move(sizes), exact});
    }
    return outputs;
  }

  // Runs the op twice on CPU tensors of the inputs' dtypes and sizes, filled
  // with zeros and with ones: what differs between the two depends on the
  // data (nonzero's length, a condition, an item()) and is inexact. Only for
  // inputs small enough that the stand-ins cost nothing.
  static std::optional<std::vector<Abstract>> runOnStandIns(const Node* node,
                                                            const torch::jit::Stack& inputs,
                                                            bool exact) {
    static constexpr int64_t kMaxElements = int64_t{1} << 22;
    std::vector<at::Tensor> tensors;
    for (const c10::IValue& input : inputs) tensorsIn(input, tensors);
    int64_t elements = 0;
    for (const at::Tensor& t : tensors) elements += t.defined() ? t.numel() : 0;
    if (tensors.empty() || elements > kMaxElements) return std::nullopt;
    std::optional<torch::jit::Stack> zeros = execute(node, filled(inputs, 0), false);
    std::optional<torch::jit::Stack> ones = execute(node, filled(inputs, 1), false);
    if (!zeros && !ones) return std::nullopt;
    // One fill the op refuses (max of an empty mask selection): the other
    // gives types only.
    const bool both = zeros && ones;
    const torch::jit::Stack& first = zeros ? *zeros : *ones;
    const torch::jit::Stack& second = ones ? *ones : *zeros;
    std::vector<Abstract> outputs;
    for (size_t i = 0; i < first.size(); ++i) {
      const c10::IValue a = toMeta(first[i]), b = toMeta(second[i]);
      std::optional<Abstract> merged = merge(
          Abstract{a, a.isTensor() ? a.toTensor().sizes().vec() : std::vector<int64_t>{}, exact},
          Abstract{b, b.isTensor() ? b.toTensor().sizes().vec() : std::vector<int64_t>{}, exact});
      if (!merged) return std::nullopt;
      if (!both) merged = merge(merged, std::nullopt);  // every dim unknown
      outputs.push_back(std::move(*merged));
    }
    return outputs;
  }

  // `inputs` with every meta tensor replaced by a CPU tensor full of `fill`.
  static torch::jit::Stack filled(const torch::jit::Stack& inputs, int fill) {
    torch::jit::Stack result;
    for (const c10::IValue& input : inputs)
      result.push_back(mapTensors(input, [fill](const at::Tensor& t) -> c10::IValue {
        if (!t.defined() || !t.is_meta()) return t;
        return at::full(t.sizes(), fill, t.options().device(c10::kCPU));
      }));
    return result;
  }

  // Factory ops and to() make their tensors on the meta device.
  static void onMetaDevice(const torch::jit::Operator& op, torch::jit::Stack& stack) {
    const auto& arguments = op.schema().arguments();
    for (size_t i = 0; i < arguments.size() && i < stack.size(); ++i) {
      const bool device_slot = arguments[i].name() == "device";
      if ((device_slot && stack[i].isNone()) ||
          (stack[i].isDevice() && stack[i].toDevice().is_cpu()))
        stack[i] = c10::Device(c10::kMeta);
    }
  }

  // What the interpreter's CanonicalizeOps does before a real run: a 0-d
  // constant tensor operand of add / sub / mul / div is a Python scalar again,
  // which does not promote (int64 * 2.5 is float32, not float64).
  static void canonicalScalar(const Node* node, torch::jit::Stack& stack) {
    static const char* const kSchemas[] = {
        "aten::add(Tensor self, Tensor other, *, Scalar alpha) -> Tensor",
        "aten::sub(Tensor self, Tensor other, *, Scalar alpha) -> Tensor",
        "aten::mul(Tensor self, Tensor other) -> Tensor",
        "aten::div(Tensor self, Tensor other) -> Tensor"};
    if (node->inputs().size() < 2 || node->input(1)->node()->kind() != c10::prim::Constant) return;
    if (std::none_of(std::begin(kSchemas), std::end(kSchemas),
                     [&](const char* schema) { return node->matches(schema); }))
      return;
    const std::optional<c10::IValue> constant = torch::jit::toIValue(node->input(1));
    if (!constant || !constant->isTensor() || constant->toTensor().dim() != 0) return;
    at::Tensor scalar = constant->toTensor().clone();
    scalar.unsafeGetTensorImpl()->set_wrapped_number(true);
    stack[1] = scalar;
  }

  // Both branches, whatever the condition: each is walked on its own inputs'
  // types, so that the one the example does not take gets its types too.
  void walkIf(const Node* node) {
    const Block* then_block = node->blocks()[0];
    const Block* else_block = node->blocks()[1];
    walkBlock(then_block);
    walkBlock(else_block);
    std::optional<bool> taken;
    if (auto cond = env_.find(node->input(0)); cond != env_.end() && cond->second.exact)
      taken = cond->second.value.toBool();
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      const std::optional<Abstract> then_value = lookup(then_block->outputs()[i]);
      const std::optional<Abstract> else_value = lookup(else_block->outputs()[i]);
      std::optional<Abstract> result;
      if (taken && (*taken ? then_value : else_value))
        result = *taken ? then_value : else_value;
      else
        result = merge(then_value, else_value);
      bindOrForget(node->outputs()[i], result);
    }
  }

  // The body, until the carried values' types stop changing (a dim that
  // differs after an iteration becomes -1), at most kPasses times; then once
  // more with every carried size unknown. The trip count is never read.
  void walkLoop(const Node* node) {
    static constexpr int kPasses = 3;
    const Block* body = node->blocks()[0];
    const size_t carried = node->inputs().size() - 2;
    std::vector<std::optional<Abstract>> state;
    for (size_t i = 0; i < carried; ++i) state.push_back(lookup(node->input(i + 2)));
    for (int pass = 0; pass <= kPasses; ++pass) {
      if (pass == kPasses)  // no fixed point: every carried size unknown
        for (auto& s : state) s = merge(s, std::nullopt);
      bind(body->inputs()[0], Abstract{c10::IValue(int64_t{0}), {}, false});
      for (size_t i = 0; i < carried; ++i) bindOrForget(body->inputs()[i + 1], state[i]);
      walkBlock(body);
      bool changed = false;
      for (size_t i = 0; i < carried; ++i) {
        std::optional<Abstract> next = merge(state[i], lookup(body->outputs()[i + 1]));
        changed |= !sameKnowledge(next, state[i]);
        state[i] = std::move(next);
      }
      if (!changed) break;
    }
    for (size_t i = 0; i < carried; ++i) bindOrForget(node->outputs()[i], state[i]);
  }

  std::optional<Abstract> lookup(const Value* value) const {
    auto it = env_.find(value);
    if (it == env_.end()) return std::nullopt;
    return it->second;
  }

  void bind(const Value* value, Abstract a) {
    if (recordable(value) && (a.value.isTensor() || isScalar(a.value))) {
      const ValueInfo info{
          a.value.isTensor() ? a.value.toTensor().scalar_type() : infoOf(a.value).dtype, a.sizes};
      auto [seen, added] = infos_.try_emplace(value, info);
      if (!added && !mergeInto(seen->second, info)) conflicts_.insert(value);
    }
    env_[value] = std::move(a);
  }

  void bindOrForget(const Value* value, const std::optional<Abstract>& a) {
    if (a)
      bind(value, *a);
    else
      env_.erase(value);
  }

  // model.values: what the real run saw, else what the walk found.
  void collect(const Block* block, std::unordered_map<const Value*, ValueInfo>& values,
               bool& complete) const {
    auto take = [&](const Value* value) {
      if (!recordable(value)) return;
      if (auto seen = records_.infos.find(value); seen != records_.infos.end()) {
        values.emplace(value, seen->second);
      } else if (auto walked = infos_.find(value);
                 walked != infos_.end() && !conflicts_.count(value)) {
        values.emplace(value, walked->second);
      } else if (value->type()->kind() != c10::TypeKind::OptionalType) {
        complete = false;  // an Optional that is None on every path has no type to know
      }
    };
    for (const Value* input : block->inputs()) take(input);
    for (const Node* node : block->nodes()) {
      for (const Value* output : node->outputs()) take(output);
      for (const Block* sub : node->blocks()) collect(sub, values, complete);
    }
  }

  const LoadedModel& model_;
  const RunRecords& records_;
  std::unordered_map<const Value*, Abstract> env_;
  std::unordered_map<const Value*, ValueInfo> infos_;
  std::unordered_set<const Value*> conflicts_;
  MemoryEstimate memory_;
  int64_t block_bytes_ = 0;
  bool complete_ = true;
};

}  // namespace

std::vector<c10::IValue> inputStack(const LoadedModel& model) {
  std::vector<c10::IValue> stack(model.inputs.begin(), model.inputs.end());
  for (const Parameter& p : model.parameters) stack.emplace_back(p.tensor);
  return stack;
}

// The graph executor, as module.forward uses, turns a traced 0-d constant
// operand back into the Python scalar it was (CanonicalizeOps), which does not
// promote: int64 * 2.5 is float32, not float64. The rest of what it does
// (profiling, optimising a copy) took 80 ms of BERT-base's shapes run, so the
// interpreter runs a canonicalised copy instead.
c10::IValue runGraph(const std::shared_ptr<torch::jit::Graph>& graph,
                     std::vector<c10::IValue> stack) {
  c10::InferenceMode inference;
  const std::shared_ptr<torch::jit::Graph> canonical = graph->copy();
  torch::jit::CanonicalizeOps(canonical);
  torch::jit::Code code(canonical, "forward");
  torch::jit::InterpreterState(code).run(stack);
  return stack.at(0);
}

std::optional<int64_t> availableMemoryBytes() {
  std::optional<int64_t> available;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    int64_t kilobytes = 0;
    meminfo >> kilobytes;
    if (key == "MemAvailable:") available = kilobytes * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  // cgroup v2: memory.max is "max" when there is no limit.
  std::ifstream limit_file("/sys/fs/cgroup/memory.max"),
      current_file("/sys/fs/cgroup/memory.current");
  int64_t limit = 0, current = 0;
  if (limit_file >> limit && current_file >> current)
    available = std::min(available.value_or(limit - current), limit - current);
  return available;
}

bool recordable(const Value* value) {
  if (const auto optional = value->type()->cast<c10::OptionalType>())  // when it holds a tensor
    return optional->getElementType()->kind() == c10::TypeKind::TensorType;
  switch (value->type()->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::NumberType:
    case c10::TypeKind::BoolType:
      return true;
    default:
      return false;
  }
}

MetaWalk walkOnMeta(LoadedModel& model, const RunRecords& records) {
  return MetaWalker(model, records).walk(model.values);
}

RunRecords runReference(LoadedModel& model, bool keep_outputs, double timeout_seconds) {
  const InstrumentedGraph run =
      Instrumenter(*model.prepared.graph,
                   keep_outputs ? model.outputs : std::vector<const Value*>{})
          .take();
  auto recorder = std::make_shared<Recorder>(run.slots.size(), run.keep);
  const std::shared_ptr<torch::jit::Graph> graph = run.graph;
  std::vector<c10::IValue> stack = inputStack(model);
  runWithDeadline(
      "the reference run", "export.reference_timeout", timeout_seconds,
      [graph, recorder, stack]() {
        active_recorder = recorder.get();
        runGraph(graph, stack);
        active_recorder = nullptr;
      },
      [&] {
        const int64_t slot = recorder->lastSlot();
        // A block input was recorded as its loop iteration began.
        const Node* node = slot < 0 ? nullptr : run.slots[slot]->node();
        if (node != nullptr && node->kind() == c10::prim::Param)
          node = node->owningBlock()->owningNode();
        return node == nullptr ? std::string("it had run no op")
                               : "it had last reached " + describeNode(*node) +
                                     "; raise the limit or check the model's loops";
      });

  RunRecords records;
  const auto& entries = recorder->entries();
  for (size_t slot = 0; slot < entries.size(); ++slot) {
    const Recorder::Entry& entry = entries[slot];
    if (!entry.seen || entry.conflict) continue;
    records.infos.emplace(run.slots[slot], entry.info);
    if (entry.scalar) records.scalars.emplace(run.slots[slot], *entry.scalar);
  }
  if (keep_outputs)
    for (const Value* output : model.outputs)
      for (size_t slot = 0; slot < entries.size(); ++slot)
        if (run.slots[slot] == output) model.reference_outputs.push_back(entries[slot].kept);
  return records;
}

void valuesRead(const Node* node, std::vector<const Value*>& out) {
  out.insert(out.end(), node->inputs().begin(), node->inputs().end());
  for (const Block* block : node->blocks()) {
    for (const Node* inner : block->nodes()) valuesRead(inner, out);
    valuesRead(block->return_node(), out);
  }
}

std::string describeNode(const Node& node) {
  std::vector<std::string> path;
  if (const auto stack = node.callstack())
    for (const auto& entry : (*stack)->vec())
      if (const auto& instance = std::get<2>(entry);
          instance && instance->instance_name() != "SELF")
        path.push_back(instance->instance_name());
  const std::string location = sourceLocation(node);
  return fmt::format(
      "{}{}{}", node.kind().toQualString(),
      path.empty() ? " in the root module" : fmt::format(" in module '{}'", fmt::join(path, ".")),
      location.empty() ? "" : " at " + location);
}

}  // namespace mexport
