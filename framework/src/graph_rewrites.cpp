#include "graph_rewrites.h"

#include <fmt/format.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/lower_tuples.h>

#include <algorithm>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "lowering/ops_util.h"
#include "mexport/errors.h"
#include "reference_run.h"

namespace mexport {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

// Gives an If whose result is a tuple built in each branch (an early
// `return a, b`) one result per element, and rebuilds the tuple after it, for
// LowerSimpleTuples to take apart: no tuple crosses the If any more.
// LowerAllTuples would do this too, but it fails an internal assertion on
// some scripted graphs.
void splitTupleResults(torch::jit::Block* block) {
  for (Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) splitTupleResults(sub);
    if (node->kind() != c10::prim::If) continue;
    for (size_t i = 0; i < node->outputs().size();) {
      const auto tuple = node->output(i)->type()->cast<c10::TupleType>();
      const bool built =
          tuple &&
          std::all_of(node->blocks().begin(), node->blocks().end(), [&](torch::jit::Block* branch) {
            return branch->outputs()[i]->node()->kind() == c10::prim::TupleConstruct;
          });
      if (!built) {
        ++i;
        continue;
      }
      std::vector<Value*> elements;
      for (const c10::TypePtr& type : tuple->elements())
        elements.push_back(node->addOutput()->setType(type));
      for (torch::jit::Block* branch : node->blocks()) {
        Node* construct = branch->outputs()[i]->node();
        for (Value* element : construct->inputs()) branch->registerOutput(element);
        branch->eraseOutput(i);
      }
      torch::jit::Graph& graph = *node->owningGraph();
      torch::jit::WithInsertPoint guard(node->next());
      node->output(i)->replaceAllUsesWith(graph.insertNode(graph.createTuple(elements))->output());
      node->eraseOutput(i);
    }
  }
}

// --- writes inside If and Loop --------------------------------------------------------

// The tensor a chain of slice / select views looks into.
Value* baseOf(Value* value) {
  while (
      (value->node()->kind() == c10::aten::select || value->node()->kind() == c10::aten::slice) &&
      value->node()->input(0)->type()->kind() == c10::TypeKind::TensorType)
    value = value->node()->input(0);
  return value;
}

// The node of `block` that holds `node` (itself, or an If / Loop around it),
// nullptr when `node` is not in `block`.
Node* holderIn(Node* node, const Block* block) {
  while (node != nullptr && node->owningBlock() != block) node = node->owningBlock()->owningNode();
  return node;
}

// Makes uses of `old` after `node` (in its block, or nested in a later node
// there) read `now`.
void replaceUsesAfter(Value* old, const Node* node, Value* now) {
  const std::vector<torch::jit::Use> uses = old->uses();
  for (const torch::jit::Use& use : uses) {
    Node* holder = holderIn(use.user, node->owningBlock());
    if (holder == nullptr || holder == node) continue;
    // The block's outputs come after every node (isAfter does not order the
    // return node).
    if (holder == node->owningBlock()->return_node() || holder->isAfter(node))
      use.user->replaceInput(use.offset, now);
  }
}

// Rewrites the If and Loop nodes of a block so that every tensor one writes
// and that lives outside it flows out as a result (a Loop also carries it),
// read after the node instead of the old value. The writes are those the
// lowering takes (ops_inplace.cpp: fill_, zero_, copy_, index_put_ through
// views), whose tensor it rebinds to the new value, which an ONNX sub-graph
// cannot do for its parent; and appends to the growing lists given, whose
// versions (carried values, results) join them.
class WriteLifter {
 public:
  explicit WriteLifter(std::unordered_set<const Value*> growing_lists = {})
      : growing_lists_(std::move(growing_lists)) {}

  // Returns, for each tensor (or list) written in `block`, its value at the
  // block's end.
  std::unordered_map<Value*, Value*> lift(Block* block) {
    std::unordered_map<Value*, Value*> latest;
    const std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
    for (Node* node : nodes) {
      if (Value* written = writtenBy(node)) {
        latest.emplace(written, written);  // rebound in place by the lowering
        continue;
      }
      std::vector<Value*> written;  // outer values the node's blocks write
      if (node->kind() == c10::prim::Loop) {
        Block* body = node->blocks()[0];
        std::vector<Value*> inside;
        writtenIn(body, inside);
        for (Value* value : inside)
          if (holderIn(value->node(), node->owningBlock()) != node) written.push_back(value);
        std::vector<Value*> carried;
        for (Value* value : written) {
          node->addInput(value);
          Value* current = version(value, body->addInput());
          const std::vector<torch::jit::Use> uses = value->uses();
          for (const torch::jit::Use& use : uses)
            if (holderIn(use.user, body) != nullptr) use.user->replaceInput(use.offset, current);
          carried.push_back(current);
        }
        const std::unordered_map<Value*, Value*> at_end = lift(body);
        for (Value* current : carried) {
          auto last = at_end.find(current);
          body->registerOutput(last != at_end.end() ? last->second : current);
        }
      } else if (node->kind() == c10::prim::If) {
        std::vector<std::unordered_map<Value*, Value*>> at_end;
        for (Block* branch : node->blocks()) {
          at_end.push_back(lift(branch));
          for (const auto& [value, last] : at_end.back())
            if (holderIn(value->node(), block) != node &&
                std::find(written.begin(), written.end(), value) == written.end())
              written.push_back(value);
        }
        for (Value* value : written)
          for (size_t b = 0; b < node->blocks().size(); ++b) {
            auto last = at_end[b].find(value);
            node->blocks()[b]->registerOutput(last != at_end[b].end() ? last->second : value);
          }
      } else {
        continue;
      }
      for (Value* value : written) {
        Value* after = version(value, node->addOutput());
        replaceUsesAfter(value, node, after);
        latest[value] = after;
      }
    }
    return latest;
  }

  // The growing lists given and every version of them lifting made.
  const std::unordered_set<const Value*>& growingLists() const { return growing_lists_; }

 private:
  // What `node` writes, or nullptr.
  Value* writtenBy(const Node* node) const {
    if (node->kind() == c10::aten::fill_ || node->kind() == c10::aten::zero_ ||
        node->kind() == c10::aten::copy_ || node->kind() == c10::aten::index_put_)
      return baseOf(node->input(0));
    if (node->kind() == c10::aten::append && growing_lists_.count(node->input(0)))
      return node->input(0);
    return nullptr;
  }

  // What is written in `block`, at any depth.
  void writtenIn(Block* block, std::vector<Value*>& out) const {
    for (Node* node : block->nodes()) {
      Value* written = writtenBy(node);
      if (written != nullptr && std::find(out.begin(), out.end(), written) == out.end())
        out.push_back(written);
      for (Block* sub : node->blocks()) writtenIn(sub, out);
    }
  }

  // `made` as a new version of `value`: its type, and a growing list if it is.
  Value* version(const Value* value, Value* made) {
    made->setType(value->type());
    if (growing_lists_.count(value)) growing_lists_.insert(made);
    return made;
  }

  std::unordered_set<const Value*> growing_lists_;
};

// --- growing lists ------------------------------------------------------------------

// A list of tensors appended to in a loop and read there (outs[-1], len(outs))
// has no ONNX form as a list, but as the stack of its elements it does when
// they all have one shape: append is a Concat, len the first dim, outs[i] a
// Gather. The lists a loop only fills and that are read after it are the
// loop's scan outputs already (ops::scanAppend).
class GrowingLists {
 public:
  GrowingLists(torch::jit::Graph& graph, const std::unordered_map<const Value*, ValueInfo>& values)
      : graph_(graph), values_(values) {}

  bool run() {
    std::vector<Node*> lists;
    candidates(graph_.block(), lists);
    for (Node* construct : lists) {
      const std::optional<ValueInfo> element = elementOf(construct->output());
      if (!element || !readsAreStackable(construct->output())) continue;
      WriteLifter lifter({construct->output()});
      lifter.lift(graph_.block());
      asStack(construct, lifter.growingLists(), *element);
      changed_ = true;
    }
    return changed_;
  }

 private:
  void candidates(Block* block, std::vector<Node*>& out) const {
    for (Node* node : block->nodes()) {
      for (Block* sub : node->blocks()) candidates(sub, out);
      if (node->kind() != c10::prim::ListConstruct ||
          node->output()->type()->expectRef<c10::ListType>().getElementType()->kind() !=
              c10::TypeKind::TensorType ||
          ops::scanAppend(node->output()) != nullptr)
        continue;
      const auto& uses = node->output()->uses();
      if (std::any_of(uses.begin(), uses.end(), [](const torch::jit::Use& use) {
            return use.user->kind() == c10::aten::append &&
                   use.user->owningBlock()->owningNode() != nullptr;
          }))
        out.push_back(node);
    }
  }

  // The one dtype and shape of the list's elements, from the meta walk.
  std::optional<ValueInfo> elementOf(const Value* list) const {
    std::vector<const Value*> elements(list->node()->inputs().begin(),
                                       list->node()->inputs().end());
    for (const torch::jit::Use& use : list->uses())
      if (use.user->kind() == c10::aten::append) elements.push_back(use.user->input(1));
    std::optional<ValueInfo> shared;
    for (const Value* element : elements) {
      auto info = values_.find(element);
      if (info == values_.end() ||
          std::find(info->second.sizes.begin(), info->second.sizes.end(), -1) !=
              info->second.sizes.end() ||
          (shared && (shared->dtype != info->second.dtype || shared->sizes != info->second.sizes)))
        return std::nullopt;
      shared = info->second;
    }
    return shared;
  }

  static bool isListRead(const Node* node) {
    return node->kind() == c10::aten::len || node->kind() == c10::aten::__getitem__ ||
           node->kind() == c10::aten::select;
  }

  // Whether every reader of the list has a form on its stack.
  static bool readsAreStackable(const Value* list) {
    for (const torch::jit::Use& use : list->uses()) {
      const Node* user = use.user;
      if (use.offset != 0) return false;
      if (user->kind() == c10::aten::append || isListRead(user)) continue;
      const std::optional<c10::IValue> dim =
          user->kind() == c10::aten::stack ? torch::jit::toIValue(user->input(1)) : c10::nullopt;
      if (!dim || !dim->isInt() || dim->toInt() != 0) return false;
    }
    return true;
  }

  // Replaces the list and its versions by the stack of its elements.
  void asStack(Node* construct, const std::unordered_set<const Value*>& versions,
               const ValueInfo& element) {
    for (const Value* version : versions)
      const_cast<Value*>(version)->setType(c10::TensorType::get());
    std::unordered_set<const Value*> stacks(versions.begin(), versions.end());
    Value* list = construct->output();
    {
      torch::jit::WithInsertPoint guard(construct->next());
      Value* stack = nullptr;
      if (construct->inputs().empty()) {
        std::vector<int64_t> sizes = element.sizes;
        sizes.insert(sizes.begin(), 0);
        stack = made(construct, c10::aten::zeros,
                     {graph_.insertConstant(sizes),
                      graph_.insertConstant(static_cast<int64_t>(element.dtype)),
                      graph_.insertConstant(c10::IValue()), graph_.insertConstant(c10::IValue()),
                      graph_.insertConstant(c10::IValue())});
      } else {
        Node* elements =
            graph_.insertNode(graph_.createList(c10::TensorType::get(), construct->inputs()));
        elements->copyMetadata(construct);
        stack = made(construct, c10::aten::stack, {elements->output(), graph_.insertConstant(0)});
      }
      list->replaceAllUsesWith(stack);
      stacks.insert(stack);
    }
    construct->destroy();
    std::vector<Node*> readers;
    collectReaders(graph_.block(), stacks, readers);
    for (Node* reader : readers) rewriteReader(reader, stacks);
  }

  void collectReaders(Block* block, const std::unordered_set<const Value*>& stacks,
                      std::vector<Node*>& out) const {
    for (Node* node : block->nodes()) {
      if (!node->inputs().empty() && stacks.count(node->input(0)) &&
          (node->kind() == c10::aten::append || node->kind() == c10::aten::stack ||
           isListRead(node)))
        out.push_back(node);
      for (Block* sub : node->blocks()) collectReaders(sub, stacks, out);
    }
  }

  // append(outs, x) -> cat([outs, x[None]]), read after it instead of outs;
  // len(outs) -> outs.size(0); outs[i] -> outs.select(0, i); stack(outs, 0) -> outs.
  void rewriteReader(Node* reader, std::unordered_set<const Value*>& stacks) {
    Value* stack = reader->input(0);
    torch::jit::WithInsertPoint guard(reader);
    Value* result = nullptr;
    if (reader->kind() == c10::aten::append) {
      Value* row = made(reader, c10::aten::unsqueeze, {reader->input(1), graph_.insertConstant(0)});
      Node* pair = graph_.insertNode(graph_.createList(c10::TensorType::get(), {stack, row}));
      pair->copyMetadata(reader);
      result = made(reader, c10::aten::cat, {pair->output(), graph_.insertConstant(0)});
      replaceUsesAfter(stack, reader, result);
      stacks.insert(result);
    } else if (reader->kind() == c10::aten::len) {
      result =
          made(reader, c10::aten::size, {stack, graph_.insertConstant(0)}, c10::IntType::get());
    } else if (isListRead(reader)) {
      result = made(reader, c10::aten::select, {stack, graph_.insertConstant(0), reader->input(1)});
    } else {
      result = stack;  // stack(outs, 0)
    }
    reader->output()->replaceAllUsesWith(result);
    reader->destroy();
  }

  // A new node of `kind` on `inputs` before the insertion point, with
  // `origin`'s call stack (so it keeps its tag); returns its output.
  Value* made(const Node* origin, c10::Symbol kind, const std::vector<Value*>& inputs,
              const c10::TypePtr& type = c10::TensorType::get()) {
    Node* node = graph_.insertNode(graph_.create(kind, inputs));
    node->output()->setType(type);
    node->copyMetadata(const_cast<Node*>(origin));
    for (Value* input : inputs)
      if (input->node()->kind() == c10::prim::Constant)
        input->node()->copyMetadata(const_cast<Node*>(origin));
    return node->output();
  }

  torch::jit::Graph& graph_;
  const std::unordered_map<const Value*, ValueInfo>& values_;
  bool changed_ = false;
};

// --- Optional values ---------------------------------------------------------------

bool isOptionalTensor(const Value* value) {
  const auto optional = value->type()->cast<c10::OptionalType>();
  return optional && optional->getElementType()->kind() == c10::TypeKind::TensorType;
}

bool isNone(const Value* value) { return value->type()->kind() == c10::TypeKind::NoneType; }

// An Optional[Tensor] as a flag (whether it holds a tensor) and the tensor.
struct Split {
  Value* present;
  Value* tensor;
};

class OptionalSplitter {
 public:
  OptionalSplitter(torch::jit::Graph& graph,
                   const std::unordered_map<const Value*, ValueInfo>& values)
      : graph_(graph), values_(values) {}

  bool run() {
    visit(graph_.block());
    for (auto it = carried_.rbegin(); it != carried_.rend(); ++it) dropCarriedOptional(*it);
    return changed_;
  }

 private:
  void visit(Block* block) {
    const std::vector<Node*> nodes(block->nodes().begin(), block->nodes().end());
    for (Node* node : nodes) {
      if (node->kind() == c10::prim::Loop) {
        splitLoop(node);
        continue;
      }
      for (Block* sub : node->blocks()) visit(sub);
      if (node->kind() == c10::prim::If) splitIf(node);
      rewriteUse(node);
    }
  }

  // `value` (a branch's result, a loop's initial or next value) as a split,
  // made before `before`; nullopt when it is an Optional this pass could not
  // split.
  std::optional<Split> splitOf(Value* value, const ValueInfo& info, Node* before,
                               const Node* origin) {
    if (auto known = splits_.find(value); known != splits_.end()) return known->second;
    if (!isNone(value) && value->type()->kind() != c10::TypeKind::TensorType) return std::nullopt;
    torch::jit::WithInsertPoint guard(before);
    Value* present = graph_.insertConstant(!isNone(value));
    present->node()->copyMetadata(const_cast<Node*>(origin));
    if (!isNone(value)) return Split{present, value};
    // An empty tensor of the payload's dtype and rank stands for None.
    Value* sizes = graph_.insertConstant(std::vector<int64_t>(info.sizes.size(), 0));
    Value* dtype = graph_.insertConstant(static_cast<int64_t>(info.dtype));
    Value* none = graph_.insertConstant(c10::IValue());
    Node* empty =
        graph_.insertNode(graph_.create(c10::aten::zeros, {sizes, dtype, none, none, none}));
    empty->output()->setType(c10::TensorType::get());
    for (Value* constant : {sizes, dtype, none})
      constant->node()->copyMetadata(const_cast<Node*>(origin));
    empty->copyMetadata(const_cast<Node*>(origin));
    return Split{present, empty->output()};
  }

  std::optional<ValueInfo> payloadOf(const Value* value) const {
    auto info = values_.find(value);
    if (info == values_.end()) return std::nullopt;
    return info->second;
  }

  void splitIf(Node* node) {
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      Value* result = node->output(i);
      const std::optional<ValueInfo> info =
          isOptionalTensor(result) ? payloadOf(result) : std::nullopt;
      if (!info) continue;
      std::vector<Split> branches;
      for (Block* branch : node->blocks())
        if (auto split = splitOf(branch->outputs()[i], *info, branch->return_node(), node))
          branches.push_back(*split);
      if (branches.size() != node->blocks().size()) continue;
      for (size_t b = 0; b < branches.size(); ++b) {
        node->blocks()[b]->registerOutput(branches[b].present);
        node->blocks()[b]->registerOutput(branches[b].tensor);
      }
      splits_[result] = {node->addOutput()->setType(c10::BoolType::get()),
                         node->addOutput()->setType(c10::TensorType::get())};
      changed_ = true;
    }
  }

  // Loop(max, cond, carried...) with body (i, carried...) -> (cond,
  // carried...): each Optional carried value gains a flag and a tensor
  // carried after the others.
  void splitLoop(Node* node) {
    Block* body = node->blocks()[0];
    const size_t carried = node->inputs().size() - 2;
    std::vector<std::pair<size_t, ValueInfo>> pending;
    for (size_t i = 0; i < carried; ++i) {
      const std::optional<ValueInfo> info =
          isOptionalTensor(node->output(i)) ? payloadOf(node->output(i)) : std::nullopt;
      if (!info) continue;
      const std::optional<Split> initial = splitOf(node->input(i + 2), *info, node, node);
      if (!initial) continue;
      node->addInput(initial->present);
      node->addInput(initial->tensor);
      splits_[body->inputs()[i + 1]] = {body->addInput()->setType(c10::BoolType::get()),
                                        body->addInput()->setType(c10::TensorType::get())};
      pending.emplace_back(i, *info);
    }
    visit(body);
    for (const auto& [i, info] : pending) {
      const std::optional<Split> next =
          splitOf(body->outputs()[i + 1], info, body->return_node(), node);
      if (!next)
        throw ExportError(fmt::format(
            "{}: the loop carries an Optional value whose next value is neither "
            "None, a tensor nor an Optional made by an if or a loop; assign it None or a "
            "tensor in the loop's body",
            describeNode(*node)));
      body->registerOutput(next->present);
      body->registerOutput(next->tensor);
      carried_.push_back(node->output(i));
      splits_[node->output(i)] = {node->addOutput()->setType(c10::BoolType::get()),
                                  node->addOutput()->setType(c10::TensorType::get())};
      changed_ = true;
    }
  }

  // `y is None`, `y is not None`, and the refined `y` of a split Optional.
  void rewriteUse(Node* node) {
    const bool is = node->kind() == c10::aten::__is__;
    if (is || node->kind() == c10::aten::__isnot__) {
      Value* a = node->input(0);
      Value* b = node->input(1);
      Value* optional = isNone(b) ? a : isNone(a) ? b : nullptr;
      auto split = optional ? splits_.find(optional) : splits_.end();
      if (split == splits_.end()) return;
      Value* answer = split->second.present;
      if (is) {
        torch::jit::WithInsertPoint guard(node);
        Node* negation = graph_.insertNode(graph_.create(c10::aten::__not__, {answer}));
        negation->output()->setType(c10::BoolType::get());
        negation->copyMetadata(node);
        answer = negation->output();
      }
      node->output()->replaceAllUsesWith(answer);
    } else if (node->kind() == c10::prim::unchecked_cast) {
      auto split = splits_.find(node->input(0));
      if (split == splits_.end()) return;
      node->output()->replaceAllUsesWith(split->second.tensor);
    } else {
      return;
    }
    node->destroy();  // so that the Optional loses this reader (dropCarriedOptional)
    changed_ = true;
  }

  // The Optional a loop carried, once nothing reads its result: the body
  // input flows only to the body's next value, perhaps through If results
  // that flow the same way, a cycle EliminateDeadCode keeps. Drops them all.
  void dropCarriedOptional(Value* result) {
    Node* loop = result->node();
    Block* body = loop->blocks()[0];
    const size_t i = result->offset();
    std::vector<Value*> if_results;  // in the order the flow reaches them
    if (result->hasUses() || !flowsOnlyTo(body->inputs()[i + 1], body, i + 1, if_results)) return;
    body->eraseOutput(i + 1);
    // Readers first: an If result last reached is read by none of the others.
    for (auto it = if_results.rbegin(); it != if_results.rend(); ++it) {
      Value* dead = *it;
      if (dead->hasUses()) continue;  // reached twice: erased already
      Node* node = dead->node();
      const size_t index = dead->offset();
      for (Block* branch : node->blocks()) branch->eraseOutput(index);
      node->eraseOutput(index);
    }
    body->eraseInput(i + 1);
    loop->removeInput(i + 2);
    loop->eraseOutput(i);
  }

  // Whether every use of `value` is the body's output `index`, or an If
  // branch's result whose If output flows the same way.
  static bool flowsOnlyTo(Value* value, Block* body, size_t index,
                          std::vector<Value*>& if_results) {
    for (const torch::jit::Use& use : value->uses()) {
      if (use.user == body->return_node() && use.offset == index) continue;
      Node* owner = use.user->owningBlock()->owningNode();
      if (use.user != use.user->owningBlock()->return_node() || owner == nullptr ||
          owner->kind() != c10::prim::If)
        return false;
      if_results.push_back(owner->output(use.offset));
      if (!flowsOnlyTo(owner->output(use.offset), body, index, if_results)) return false;
    }
    return true;
  }

  torch::jit::Graph& graph_;
  const std::unordered_map<const Value*, ValueInfo>& values_;
  std::unordered_map<const Value*, Split> splits_;
  std::vector<Value*> carried_;  // Optional results of loops, now split
  bool changed_ = false;
};

}  // namespace

std::shared_ptr<torch::jit::Graph> withoutTuples(const std::shared_ptr<torch::jit::Graph>& graph) {
  splitTupleResults(graph->block());
  std::shared_ptr<torch::jit::Graph> lowered = graph->copy();
  try {
    torch::jit::LowerAllTuples(lowered);
    return lowered;
  } catch (const std::exception&) {  // a tuple it cannot take apart (TupleIndex by a variable)
    torch::jit::LowerSimpleTuples(graph);
    return graph;
  }
}

void foldStaticNoneChecks(torch::jit::Block* block) {
  for (Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) foldStaticNoneChecks(sub);
    const bool is = node->kind() == c10::aten::__is__;
    if (!is && node->kind() != c10::aten::__isnot__) continue;
    std::optional<bool> same;  // whether the two are both None
    const c10::TypePtr& a = node->input(0)->type();
    const c10::TypePtr& b = node->input(1)->type();
    const auto none = c10::NoneType::get();
    const auto canBeNone = [&](const c10::TypePtr& t) { return none->isSubtypeOf(*t); };
    if (*a == *none && *b == *none)
      same = true;
    else if ((*a == *none && !canBeNone(b)) || (*b == *none && !canBeNone(a)))
      same = false;
    if (!same) continue;
    torch::jit::WithInsertPoint guard(node);
    node->output()->replaceAllUsesWith(node->owningGraph()->insertConstant(is == *same));
  }
}

bool foldRankChecks(torch::jit::Block* block,
                    const std::unordered_map<const Value*, ValueInfo>& values) {
  bool changed = false;
  for (Node* node : block->nodes()) {
    for (torch::jit::Block* sub : node->blocks()) changed |= foldRankChecks(sub, values);
    std::optional<c10::IValue> answer;
    if (node->kind() == c10::aten::dim) {
      if (auto info = values.find(node->input(0)); info != values.end())
        answer = static_cast<int64_t>(info->second.sizes.size());
    } else if (node->kind() == c10::aten::__contains__ &&
               node->input(0)->node()->kind() == c10::prim::ListConstruct) {
      const std::optional<c10::IValue> element = torch::jit::toIValue(node->input(1));
      bool all_known = element.has_value() && element->isInt();
      bool found = false;
      for (const Value* item : node->input(0)->node()->inputs()) {
        const std::optional<c10::IValue> known = torch::jit::toIValue(item);
        all_known &= known.has_value() && known->isInt();
        found |= all_known && known->toInt() == element->toInt();
      }
      if (all_known) answer = found;
    }
    if (!answer) continue;
    torch::jit::WithInsertPoint guard(node);
    node->output()->replaceAllUsesWith(node->owningGraph()->insertConstant(*answer));
    changed = true;
  }
  return changed;
}

bool splitOptionals(torch::jit::Graph& graph,
                    const std::unordered_map<const Value*, ValueInfo>& values) {
  return OptionalSplitter(graph, values).run();
}

void liftWritesOutOfBlocks(torch::jit::Graph& graph) { WriteLifter().lift(graph.block()); }

bool growingListsAsStacks(torch::jit::Graph& graph,
                          const std::unordered_map<const Value*, ValueInfo>& values) {
  return GrowingLists(graph, values).run();
}

}  // namespace mexport
