// FX-style symbolic strategy: like torch.fx's `call_module`, it reads the
// model's own code. It walks the original `forward` graphs of the loaded
// module, following every prim::CallMethod into the called submodule (found
// through the prim::GetAttr chain from `self`) and every prim::CallFunction,
// and records each op with the module whose method it was written in. It never
// reads the inlined call stacks of the prepared graph.
//
// Mapping the walk onto the prepared graph. The prepared graph was made by
// torch::jit::Inline, which copies each callee's *optimised* graph (peephole,
// constant propagation and constant pooling ran on it), then by attribute
// resolution, tuple lowering and dead-code elimination. None of these reorders
// or invents non-constant ops; they drop ops, fold them into constants or
// hoist constants. So the prepared graph's non-constant nodes are a
// subsequence of the walked ops, in the same order, and fx aligns the two in
// one forward pass: a prepared node matches the next walked op with the same
// kind and source range (inlining copies source ranges).
//
// That key repeats when instances of one scripted class share their code (all
// the `Linear(8, 8)` of a scripted model run one graph), and an op dropped in
// one instance but not in the other would shift every later match. So among
// the candidates with the key, the first whose inputs agree with the prepared
// node's wins: a weight input must be the same tensor (the walk knows
// `self.weight` of which module it read, the prepared graph names its input by
// parameter path), and an input made by an already matched op must come from
// that op. Constants, and the few nodes made by preparation that match
// nothing, get the deepest module their users (else producers) share, as
// `inferred`.
//
// fx tags straight-line code only: a prim::If or prim::Loop left in the
// prepared graph makes it refuse, naming the construct and its module.
#include <fmt/format.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mexport/plugin.h"
#include "mexport/strategy.h"

namespace mexport {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;
using ObjectPtr = c10::intrusive_ptr<c10::ivalue::Object>;

constexpr int kNoOp = -1;

// Where a value comes from, as far as the alignment cares: the walked op that
// made it, or the module attribute it was read from (a weight or buffer; the
// tensor is looked up only when two candidates must be told apart).
struct Origin {
  int op = kNoOp;
  int attribute_owner = -1;
  const std::string* attribute = nullptr;  // the prim::GetAttr node's name
};

// One op met while walking the model's code.
struct WalkedOp {
  const Node* node;            // in a method's own (not inlined) graph
  int module;                  // the module whose method it was written in
  std::vector<Origin> inputs;  // per input
};

// What the alignment compares first: op kind and source range.
using OpKey = std::tuple<c10::Symbol, const void*, size_t, size_t>;

OpKey keyOf(const Node* node) {
  const auto& range = node->sourceRange();
  return {node->kind(), range.source().get(), range.start(), range.end()};
}

// One past the largest Value::unique() of a block's values: values of one
// graph are numbered densely, so per-graph tables can be plain vectors.
size_t valueCount(const Block& block) {
  size_t count = 0;
  for (const Value* input : block.inputs()) count = std::max(count, input->unique() + 1);
  for (const Node* node : block.nodes()) {
    for (const Value* output : node->outputs()) count = std::max(count, output->unique() + 1);
    for (const Block* sub : node->blocks()) count = std::max(count, valueCount(*sub));
  }
  return count;
}

// The script objects of the modules, by module tree index.
class ModuleObjects {
 public:
  ModuleObjects(const torch::jit::Module& root, const ModuleTree& tree)
      : tree_(tree), objects_(tree.size()) {
    objects_[ModuleTree::kRoot] = root._ivalue();
  }

  const ObjectPtr& at(int module) {
    ObjectPtr& object = objects_.at(module);
    if (!object) {
      const ModuleInfo& info = tree_.at(module);
      object = at(info.parent)->getAttr(info.name).toObject();
    }
    return object;
  }

  // The tensor attribute `name` of a module holds, or nullptr.
  const c10::TensorImpl* tensor(int module, const std::string& name) {
    const auto slot = at(module)->type()->findAttributeSlot(name);
    if (!slot) return nullptr;
    const c10::IValue& value = at(module)->getSlot(*slot);
    return value.isTensor() ? value.toTensor().unsafeGetTensorImpl() : nullptr;
  }

  // The tensor at a parameter path ("encoder.layer.0.output.dense.weight").
  const c10::TensorImpl* tensor(const std::string& path) {
    const size_t dot = path.rfind('.');
    const int owner = tree_.findPath(dot == std::string::npos ? "" : path.substr(0, dot));
    return owner < 0 ? nullptr : tensor(owner, path.substr(dot + 1));
  }

 private:
  const ModuleTree& tree_;
  std::vector<ObjectPtr> objects_;
};

// Walks method graphs from the root's forward through calls, as inlining
// would, recording each op with its module and where its inputs come from.
class CodeWalker {
 public:
  explicit CodeWalker(const ModuleTree& tree) : tree_(tree) {}

  // `expected_ops`: a capacity hint (the prepared graph's node count).
  std::vector<WalkedOp> walk(const torch::jit::Module& root, size_t expected_ops) {
    ops_.reserve(expected_ops);
    values_.reserve(8 * expected_ops);
    const auto graph = root.get_method("forward").graph();
    walkGraph(*graph, ModuleTree::kRoot, /*has_self=*/true, {});
    return std::move(ops_);
  }

 private:
  // What the walk knows about a value: where it comes from, or which module
  // instance it holds.
  struct ValueState {
    Origin origin;
    int module = -1;
  };

  // The values of a graph being walked: its range of values_, by
  // Value::unique(). A graph walked twice (a class shared by two instances)
  // reuses its range: graphs are SSA and TorchScript has no recursion, so each
  // walk sets a value before reading it.
  struct Frame {
    size_t base;
    int module;
  };

  ValueState& state(const Frame& frame, const Value* value) {
    return values_[frame.base + value->unique()];
  }

  std::vector<Origin> walkGraph(const Graph& graph, int module, bool has_self,
                                const std::vector<Origin>& arguments) {
    auto known = base_of_graph_.find(&graph);
    if (known == base_of_graph_.end()) {
      known = base_of_graph_.emplace(&graph, values_.size()).first;
      values_.resize(values_.size() + valueCount(*graph.block()));
    }
    const Frame frame{known->second, module};
    for (size_t i = 0; i < graph.inputs().size(); ++i)
      state(frame, graph.inputs()[i]) = {i < arguments.size() ? arguments[i] : Origin{}, -1};
    if (has_self) state(frame, graph.inputs()[0]).module = module;
    walkBlock(*graph.block(), frame);
    std::vector<Origin> results;
    for (const Value* output : graph.outputs()) results.push_back(state(frame, output).origin);
    return results;
  }

  void walkBlock(const Block& block, const Frame& frame) {
    for (const Node* node : block.nodes()) {
      const c10::Symbol kind = node->kind();
      if (kind == c10::prim::GetAttr) {
        readAttribute(node, frame);
      } else if (kind == c10::prim::CallMethod && state(frame, node->input(0)).module >= 0) {
        callMethod(node, frame);
      } else if (kind == c10::prim::CallFunction) {
        callFunction(node, frame);
      } else if (kind == c10::prim::Constant) {
        state(frame, node->output()) = {};
      } else {
        record(node, frame);
      }
    }
  }

  // `self.encoder` is a submodule instance, `self.weight` a tensor; other
  // attribute values (flags, sizes) become constants in preparation.
  void readAttribute(const Node* node, const Frame& frame) {
    const int owner = state(frame, node->input()).module;
    ValueState& out = state(frame, node->output());
    out = {};
    if (owner < 0) return;
    const std::string& name = node->s(c10::attr::name);
    for (int child : tree_.at(owner).children)
      if (tree_.at(child).name == name) {
        out.module = child;
        return;
      }
    out.origin.attribute_owner = owner;
    out.origin.attribute = &name;
  }

  void callMethod(const Node* node, const Frame& frame) {
    const int callee_module = state(frame, node->input(0)).module;
    auto type = node->input(0)->type()->cast<c10::ClassType>();
    auto* function =
        type ? torch::jit::tryToGraphFunction(type->getMethod(node->s(c10::attr::name))) : nullptr;
    if (function == nullptr) return record(node, frame);
    std::vector<Origin> arguments;
    for (const Value* input : node->inputs()) arguments.push_back(state(frame, input).origin);
    bind(node, walkGraph(*function->graph(), callee_module, /*has_self=*/true, arguments), frame);
  }

  // A plain function runs in the module that called it.
  void callFunction(const Node* node, const Frame& frame) {
    auto type = node->input(0)->type()->cast<c10::FunctionType>();
    auto* function = type ? torch::jit::tryToGraphFunction(*type->function()) : nullptr;
    if (function == nullptr) return record(node, frame);
    std::vector<Origin> arguments;
    for (size_t i = 1; i < node->inputs().size(); ++i)
      arguments.push_back(state(frame, node->input(i)).origin);
    bind(node, walkGraph(*function->graph(), frame.module, /*has_self=*/false, arguments), frame);
  }

  void bind(const Node* call, const std::vector<Origin>& results, const Frame& frame) {
    for (size_t i = 0; i < call->outputs().size(); ++i)
      state(frame, call->output(i)) = {i < results.size() ? results[i] : Origin{}, -1};
  }

  void record(const Node* node, const Frame& frame) {
    WalkedOp op{node, frame.module, {}};
    op.inputs.reserve(node->inputs().size());
    for (const Value* input : node->inputs()) op.inputs.push_back(state(frame, input).origin);
    const int index = static_cast<int>(ops_.size());
    ops_.push_back(std::move(op));
    for (const Value* output : node->outputs()) state(frame, output) = {{index, -1, nullptr}, -1};

    // Tuples and lists built on one side of a call and taken apart on the
    // other disappear in the prepared graph; see through them.
    const c10::Symbol kind = node->kind();
    if (kind == c10::prim::TupleUnpack || kind == c10::prim::ListUnpack) {
      const int literal = ops_.back().inputs.at(0).op;
      const c10::Symbol made_by = literal == kNoOp ? c10::Symbol() : ops_[literal].node->kind();
      if ((made_by == c10::prim::TupleConstruct || made_by == c10::prim::ListConstruct) &&
          ops_[literal].inputs.size() == node->outputs().size())
        for (size_t i = 0; i < node->outputs().size(); ++i)
          state(frame, node->output(i)).origin = ops_[literal].inputs[i];
    }
    for (const Block* sub : node->blocks()) {
      for (const Value* input : sub->inputs()) state(frame, input) = {};
      walkBlock(*sub, frame);
    }
  }

  const ModuleTree& tree_;
  std::vector<WalkedOp> ops_;
  std::vector<ValueState> values_;
  std::unordered_map<const Graph*, size_t> base_of_graph_;
};

// Aligns the prepared graph's top-level nodes with the walked ops.
class Aligner {
 public:
  Aligner(const std::vector<WalkedOp>& ops, const PreparedModel& model, ModuleObjects& objects)
      : ops_(ops), model_(model), objects_(objects), op_matched_(ops.size(), false) {
    // Walked ops by key, then by order: one sorted table, searched per node.
    by_key_.reserve(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) by_key_.emplace_back(keyOf(ops[i].node), int(i));
    std::sort(by_key_.begin(), by_key_.end());
  }

  // The walked op of each top-level node of `prepared`, in order; kNoOp when
  // it matches none.
  std::vector<int> align(const Graph& prepared) {
    op_of_value_.assign(valueCount(*prepared.block()), kNoOp);
    std::vector<int> matches;
    int cursor = 0;
    for (const Node* node : prepared.nodes()) {
      const int chosen = node->kind() == c10::prim::Constant ? kNoOp : choose(node, cursor);
      matches.push_back(chosen);
      if (chosen == kNoOp) continue;
      op_matched_[chosen] = true;
      for (const Value* output : node->outputs()) op_of_value_[output->unique()] = chosen;
      cursor = chosen + 1;
    }
    return matches;
  }

 private:
  // The first walked op at or after `cursor` with the node's key, unless
  // there are several and a later one's inputs agree better.
  int choose(const Node* node, int cursor) const {
    const OpKey key = keyOf(node);
    auto first = std::lower_bound(by_key_.begin(), by_key_.end(), std::make_pair(key, cursor));
    auto last = first;
    while (last != by_key_.end() && last->first == key) ++last;
    if (first == last) return kNoOp;
    if (last - first > 1)
      for (auto it = first; it != last; ++it)
        if (inputsAgree(node, ops_[it->second])) return it->second;
    return first->second;
  }

  bool inputsAgree(const Node* node, const WalkedOp& op) const {
    for (size_t i = 0; i < node->inputs().size() && i < op.inputs.size(); ++i) {
      const Value* input = node->input(i);
      const Origin& walked = op.inputs[i];
      if (walked.attribute != nullptr) {
        const c10::TensorImpl* tensor = parameterTensor(input);
        if (tensor != nullptr &&
            tensor != objects_.tensor(walked.attribute_owner, *walked.attribute))
          return false;
      } else if (walked.op != kNoOp && op_matched_[walked.op]) {
        const int producer = op_of_value_[input->unique()];
        if (producer != kNoOp && producer != walked.op) return false;
      }
    }
    return true;
  }

  // The tensor a parameter input of the prepared graph holds, or nullptr.
  const c10::TensorImpl* parameterTensor(const Value* input) const {
    auto path = model_.parameters.find(input);
    return path == model_.parameters.end() ? nullptr : objects_.tensor(path->second);
  }

  const std::vector<WalkedOp>& ops_;
  const PreparedModel& model_;
  ModuleObjects& objects_;
  std::vector<std::pair<OpKey, int>> by_key_;
  std::vector<bool> op_matched_;
  std::vector<int> op_of_value_;  // by Value::unique() of the prepared graph
};

std::string location(const Node* node) {
  const auto range = node->sourceRange();
  const auto original = range.findSourceRangeThatGenerated();
  if (auto loc = original.value_or(range).file_line_col())
    return fmt::format(" at {}:{}", std::get<0>(*loc), std::get<1>(*loc));
  return "";
}

class FxStrategy final : public Strategy {
 public:
  std::string name() const override { return "fx"; }

  StrategyTraits traits() const override {
    return {/*handles_control_flow=*/false, /*speed_rank=*/2, /*expected_coverage=*/1.0,
            "walks forward graphs through prim::CallMethod like torch.fx call_module; "
            "straight-line graphs only"};
  }

  NodeTags tag(const PreparedModel& model) const override {
    if (model.module == nullptr) throw StrategyError("fx needs the loaded module to walk its code");
    const ModuleTree& tree = model.tree;
    ModuleObjects objects(*model.module, tree);
    size_t nodes = 0;
    for (auto it = model.graph->nodes().begin(); it != model.graph->nodes().end(); ++it) ++nodes;
    const std::vector<WalkedOp> ops = CodeWalker(tree).walk(*model.module, 2 * nodes);
    const std::vector<int> match = Aligner(ops, model, objects).align(*model.graph);

    NodeTags tags(nodes);
    std::vector<const Node*> unmatched;
    size_t position = 0;
    for (const Node* node : model.graph->nodes()) {
      const int op = match[position++];
      if (op != kNoOp)
        tags[node] = {ops[op].module, Provenance::kDirect};
      else
        unmatched.push_back(node);
    }
    inferFromContext(tree, unmatched, tags);

    for (const Node* node : model.graph->nodes())
      if (node->kind() == c10::prim::If || node->kind() == c10::prim::Loop) {
        const ModuleInfo& m = tree.at(tags.at(node).module);
        throw StrategyError(fmt::format(
            "{} in module '{}' ({}){}: fx tags straight-line code only, as torch.fx symbolic "
            "tracing does; use htp, which follows control flow",
            node->kind().toQualString(), m.path.empty() ? "<root>" : m.path, m.tag,
            location(node)));
      }
    return tags;
  }

 private:
  // Users first, walking backwards so chains of constants resolve in one
  // pass; then producers; what is left falls back to the root.
  static void inferFromContext(const ModuleTree& tree, const std::vector<const Node*>& nodes,
                               NodeTags& tags) {
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      int shared = -1;
      for (const Value* output : (*it)->outputs())
        for (const torch::jit::Use& use : output->uses()) {
          shared = meet(tree, tags, shared, use.user);
          if (shared == ModuleTree::kRoot) break;  // no user can move it lower again
        }
      if (shared >= 0) tags[*it] = {shared, Provenance::kInferred};
    }
    for (const Node* node : nodes) {
      if (tags.count(node)) continue;
      int shared = -1;
      for (const Value* input : node->inputs()) shared = meet(tree, tags, shared, input->node());
      tags[node] = shared >= 0 ? NodeTag{shared, Provenance::kInferred}
                               : NodeTag{ModuleTree::kRoot, Provenance::kRoot};
    }
  }

  // Folds the module of `other` (if tagged) into the common ancestor `shared`.
  // A container that is never called (ModuleList) runs no code, so the
  // ancestor is lifted to the module that calls into it.
  static int meet(const ModuleTree& tree, const NodeTags& tags, int shared, const Node* other) {
    auto it = tags.find(other);
    if (it == tags.end() || it->second.module < 0) return shared;
    const int other_module = it->second.module;
    if (shared == other_module) return shared;  // the usual case, and commonAncestor walks the tree
    int module = shared < 0 ? other_module : tree.commonAncestor(shared, other_module);
    while (!tree.at(module).called && tree.at(module).parent >= 0) module = tree.at(module).parent;
    return module;
  }
};

void registerFx(Registry& registry) { registry.addStrategy(std::make_shared<FxStrategy>()); }

}  // namespace
}  // namespace mexport

MEXPORT_PLUGIN("fx", "0.1.0", mexport::registerFx)
