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
// or invents non-constant ops; they only drop ops, fold them into constants or
// hoist constants. So the prepared graph's non-constant nodes are a
// subsequence of the walked ops, in the same order. fx aligns the two in one
// forward pass: a prepared node matches the next walked op with the same kind
// and the same source range (inlining copies source ranges). When that key
// repeats (two instances of one scripted class run the same code), the
// candidate whose inputs come from the walked ops already matched to the
// prepared node's producers wins, so a dropped op in one instance cannot shift
// the tags of the next. Constants, and the few nodes made by preparation that
// match nothing, get the deepest module that all their users (else producers)
// share, as `inferred`.
//
// fx tags straight-line code only: a prim::If or prim::Loop left in the
// prepared graph makes it refuse, naming the construct and its module.
#include <fmt/format.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

#include "mexport/plugin.h"
#include "mexport/strategy.h"

namespace mexport {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

constexpr int kNoSource = -1;

// One op met while walking the model's code.
struct WalkedOp {
  const Node* node;                // in a method's own (not inlined) graph
  int module;                      // the module whose method it was written in
  std::vector<int> input_sources;  // per input: the walked op that produced it, or kNoSource
};

// What an alignment key compares: op kind and source range.
using OpKey = std::tuple<c10::Symbol, const void*, size_t, size_t>;

OpKey keyOf(const Node* node) {
  const auto range = node->sourceRange();
  return {node->kind(), range.source().get(), range.start(), range.end()};
}

bool isTransparent(c10::Symbol kind) {
  return kind == c10::prim::Constant || kind == c10::prim::GetAttr;
}

// Walks method graphs from the root's forward through calls, as inlining
// would, recording each op with its module and its data flow.
class CodeWalker {
 public:
  explicit CodeWalker(const ModuleTree& tree) : tree_(tree) {}

  std::vector<WalkedOp> walk(const torch::jit::Module& root) {
    const auto graph = root.get_method("forward").graph();
    std::vector<int> arguments(graph->inputs().size(), kNoSource);
    walkGraph(*graph, ModuleTree::kRoot, /*has_self=*/true, arguments);
    return std::move(ops_);
  }

 private:
  // Values of one method invocation: which walked op produced them, which
  // module instance they hold, which elements a tuple or list literal holds.
  struct Frame {
    int module;
    std::unordered_map<const Value*, int> sources;
    std::unordered_map<const Value*, int> modules;
    std::unordered_map<const Value*, std::vector<int>> elements;

    int sourceOf(const Value* value) const {
      auto it = sources.find(value);
      return it == sources.end() ? kNoSource : it->second;
    }
  };

  std::vector<int> walkGraph(const Graph& graph, int module, bool has_self, const std::vector<int>& arguments) {
    Frame frame{module, {}, {}, {}};
    for (size_t i = 0; i < graph.inputs().size(); ++i)
      frame.sources[graph.inputs()[i]] = i < arguments.size() ? arguments[i] : kNoSource;
    if (has_self) frame.modules[graph.inputs()[0]] = module;
    walkBlock(*graph.block(), frame);
    std::vector<int> results;
    for (const Value* output : graph.outputs()) results.push_back(frame.sourceOf(output));
    return results;
  }

  void walkBlock(const Block& block, Frame& frame) {
    for (const Node* node : block.nodes()) {
      const c10::Symbol kind = node->kind();
      if (kind == c10::prim::GetAttr) {
        readAttribute(node, frame);
      } else if (kind == c10::prim::CallMethod && frame.modules.count(node->input(0))) {
        callMethod(node, frame);
      } else if (kind == c10::prim::CallFunction) {
        callFunction(node, frame);
      } else if (kind != c10::prim::Constant) {
        record(node, frame);
      }
    }
  }

  // `self.encoder` names a submodule instance; attribute values (weights,
  // flags) are resolved by preparation and are not ops.
  void readAttribute(const Node* node, Frame& frame) {
    auto owner = frame.modules.find(node->input());
    if (owner == frame.modules.end()) return;
    const std::string& parent = tree_.at(owner->second).path;
    const std::string name = node->s(c10::attr::name);
    const int child = tree_.findPath(parent.empty() ? name : parent + "." + name);
    if (child >= 0) frame.modules[node->output()] = child;
  }

  void callMethod(const Node* node, Frame& frame) {
    const int callee_module = frame.modules.at(node->input(0));
    auto type = node->input(0)->type()->cast<c10::ClassType>();
    auto* function = type ? torch::jit::tryToGraphFunction(type->getMethod(node->s(c10::attr::name))) : nullptr;
    if (function == nullptr) return record(node, frame);
    std::vector<int> arguments;
    for (const Value* input : node->inputs()) arguments.push_back(frame.sourceOf(input));
    bind(node, walkGraph(*function->graph(), callee_module, /*has_self=*/true, arguments), frame);
  }

  // A plain function runs in the module that called it.
  void callFunction(const Node* node, Frame& frame) {
    auto type = node->input(0)->type()->cast<c10::FunctionType>();
    auto* function = type ? torch::jit::tryToGraphFunction(*type->function()) : nullptr;
    if (function == nullptr) return record(node, frame);
    std::vector<int> arguments;
    for (size_t i = 1; i < node->inputs().size(); ++i) arguments.push_back(frame.sourceOf(node->input(i)));
    bind(node, walkGraph(*function->graph(), frame.module, /*has_self=*/false, arguments), frame);
  }

  void bind(const Node* call, const std::vector<int>& results, Frame& frame) {
    for (size_t i = 0; i < call->outputs().size() && i < results.size(); ++i)
      frame.sources[call->output(i)] = results[i];
  }

  void record(const Node* node, Frame& frame) {
    WalkedOp op{node, frame.module, {}};
    for (const Value* input : node->inputs()) op.input_sources.push_back(frame.sourceOf(input));
    const int index = static_cast<int>(ops_.size());
    ops_.push_back(std::move(op));
    for (const Value* output : node->outputs()) frame.sources[output] = index;

    // Tuples and lists built and taken apart across a call disappear in the
    // prepared graph; see through them so data flow still links the ops.
    const c10::Symbol kind = node->kind();
    if (kind == c10::prim::TupleConstruct || kind == c10::prim::ListConstruct) {
      frame.elements[node->output()] = ops_.back().input_sources;
    } else if (kind == c10::prim::TupleUnpack || kind == c10::prim::ListUnpack) {
      auto elements = frame.elements.find(node->input());
      if (elements != frame.elements.end() && elements->second.size() == node->outputs().size())
        for (size_t i = 0; i < node->outputs().size(); ++i) frame.sources[node->output(i)] = elements->second[i];
    }
    for (const Block* sub : node->blocks()) walkBlock(*sub, frame);
  }

  const ModuleTree& tree_;
  std::vector<WalkedOp> ops_;
};

// Aligns the prepared graph's top-level nodes with the walked ops; returns
// the walked op of each matched node.
class Aligner {
 public:
  explicit Aligner(const std::vector<WalkedOp>& ops) : ops_(ops), node_of_op_(ops.size(), nullptr) {
    for (size_t i = 0; i < ops.size(); ++i) by_key_[keyOf(ops[i].node)].push_back(static_cast<int>(i));
  }

  std::unordered_map<const Node*, int> align(const Graph& prepared) {
    int cursor = 0;
    for (const Node* node : prepared.nodes()) {
      if (isTransparent(node->kind())) continue;
      auto candidates = by_key_.find(keyOf(node));
      if (candidates == by_key_.end()) continue;
      const std::vector<int>& list = candidates->second;
      int chosen = -1;
      for (auto it = std::lower_bound(list.begin(), list.end(), cursor); it != list.end(); ++it) {
        if (chosen < 0) chosen = *it;  // the first by order, unless data flow says otherwise
        if (consistent(node, *it)) {
          chosen = *it;
          break;
        }
      }
      if (chosen < 0) continue;
      match_[node] = chosen;
      node_of_op_[chosen] = node;
      cursor = chosen + 1;
    }
    return std::move(match_);
  }

 private:
  // False when an input of `node` comes from a prepared node matched to one
  // walked op while the candidate's input comes from another matched op.
  bool consistent(const Node* node, int candidate) const {
    const WalkedOp& op = ops_[candidate];
    for (size_t i = 0; i < node->inputs().size() && i < op.input_sources.size(); ++i) {
      auto producer = match_.find(node->input(i)->node());
      const int source = op.input_sources[i];
      if (producer == match_.end() || source == kNoSource) continue;
      if (producer->second != source && node_of_op_[source] != nullptr) return false;
    }
    return true;
  }

  const std::vector<WalkedOp>& ops_;
  std::map<OpKey, std::vector<int>> by_key_;
  std::unordered_map<const Node*, int> match_;
  std::vector<const Node*> node_of_op_;
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
            "walks forward graphs through prim::CallMethod like torch.fx call_module; straight-line graphs only"};
  }

  NodeTags tag(const PreparedModel& model) const override {
    if (model.module == nullptr) throw StrategyError("fx needs the loaded module to walk its forward code");
    const ModuleTree& tree = model.tree;
    const std::vector<WalkedOp> ops = CodeWalker(tree).walk(*model.module);
    const std::unordered_map<const Node*, int> match = Aligner(ops).align(*model.graph);

    NodeTags tags;
    std::vector<const Node*> unmatched;
    for (const Node* node : model.graph->nodes()) {
      auto it = match.find(node);
      if (it != match.end())
        tags[node] = {ops[it->second].module, Provenance::kDirect};
      else
        unmatched.push_back(node);
    }
    inferFromContext(tree, unmatched, tags);

    for (const Node* node : model.graph->nodes())
      if (node->kind() == c10::prim::If || node->kind() == c10::prim::Loop) {
        const ModuleInfo& m = tree.at(tags.at(node).module);
        throw StrategyError(fmt::format(
            "{} in module '{}' ({}){}: fx tags straight-line code only, as torch.fx symbolic tracing does; use htp, "
            "which follows control flow",
            node->kind().toQualString(), m.path.empty() ? "<root>" : m.path, m.tag, location(node)));
      }
    return tags;
  }

 private:
  // Users first, walking backwards so chains of constants resolve in one
  // pass; then producers; what is left falls back to the root.
  static void inferFromContext(const ModuleTree& tree, const std::vector<const Node*>& nodes, NodeTags& tags) {
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {
      int shared = -1;
      for (const Value* output : (*it)->outputs())
        for (const torch::jit::Use& use : output->uses()) shared = meet(tree, tags, shared, use.user);
      if (shared >= 0) tags[*it] = {shared, Provenance::kInferred};
    }
    for (const Node* node : nodes) {
      if (tags.count(node)) continue;
      int shared = -1;
      for (const Value* input : node->inputs()) shared = meet(tree, tags, shared, input->node());
      tags[node] = shared >= 0 ? NodeTag{shared, Provenance::kInferred} : NodeTag{ModuleTree::kRoot, Provenance::kRoot};
    }
  }

  // Folds the module of `other` (if tagged) into the common ancestor `shared`.
  static int meet(const ModuleTree& tree, const NodeTags& tags, int shared, const Node* other) {
    auto it = tags.find(other);
    if (it == tags.end() || it->second.module < 0) return shared;
    return shared < 0 ? it->second.module : tree.commonAncestor(shared, it->second.module);
  }
};

void registerFx(Registry& registry) { registry.addStrategy(std::make_shared<FxStrategy>()); }

}  // namespace
}  // namespace mexport

MEXPORT_PLUGIN("fx", "0.1.0", mexport::registerFx)
