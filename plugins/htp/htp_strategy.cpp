// Hierarchical trace-and-project: a node's module is read from its inlined call
// stack, walked down the real module tree by instance name (which fills in the
// root and the containers that are never called). Nodes whose module cannot be
// read get the deepest module their users share, else their producers; what
// is left falls back to the root.
#include <torch/csrc/jit/ir/ir.h>

#include "mexport/plugin.h"
#include "mexport/strategy.h"

namespace mexport {
namespace {

using torch::jit::Node;

class HtpStrategy final : public Strategy {
 public:
  std::string name() const override { return "htp"; }

  StrategyTraits traits() const override {
    return {/*handles_control_flow=*/true, /*speed_rank=*/3, /*expected_coverage=*/1.0,
            "inlined call stacks completed by the module tree; every node, with provenance"};
  }

  NodeTags tag(const PreparedModel& model) const override {
    const ModuleTree& tree = model.tree;
    std::vector<const Node*> nodes;
    collect(model.graph->block(), nodes);

    NodeTags tags;
    std::vector<const Node*> unresolved;
    for (const Node* node : nodes) {
      const int module = moduleFromCallStack(tree, node);
      if (module >= 0)
        tags[node] = {module, Provenance::kDirect};
      else if (module == kNoStack && node->kind() != c10::prim::Constant)
        tags[node] = {ModuleTree::kRoot, Provenance::kDirect};  // the root's own forward
      else
        unresolved.push_back(node);
    }
    // Users first, walking backwards so chains of glue resolve in one pass.
    for (auto it = unresolved.rbegin(); it != unresolved.rend(); ++it) {
      int shared = -1;
      for (const torch::jit::Value* output : (*it)->outputs())
        for (const torch::jit::Use& use : output->uses())
          shared = meet(tree, tags, shared, use.user);
      if (shared >= 0) tags[*it] = {shared, Provenance::kInferred};
    }
    for (const Node* node : unresolved) {
      if (tags.count(node)) continue;
      int shared = -1;
      for (const torch::jit::Value* input : node->inputs())
        shared = meet(tree, tags, shared, input->node());
      tags[node] = shared >= 0 ? NodeTag{shared, Provenance::kInferred}
                               : NodeTag{ModuleTree::kRoot, Provenance::kRoot};
    }
    return tags;
  }

 private:
  static constexpr int kNoStack = -1;     // the node ran in the root's own forward
  static constexpr int kUnreadable = -2;  // a stack that does not match the module tree

  static void collect(const torch::jit::Block* block, std::vector<const Node*>& out) {
    for (const Node* node : block->nodes()) {
      out.push_back(node);
      for (const torch::jit::Block* sub : node->blocks()) collect(sub, out);
    }
  }

  static int moduleFromCallStack(const ModuleTree& tree, const Node* node) {
    const auto stack = node->callstack();
    if (!stack) return kNoStack;
    int module = ModuleTree::kRoot;
    for (const auto& entry : (*stack)->vec()) {
      const auto& instance = std::get<2>(entry);
      if (!instance) continue;  // an inlined plain function
      const std::string& name = instance->instance_name();
      if (name == "SELF") continue;  // another method of the same module
      module = tree.findCalledChild(module, name);
      if (module < 0) return kUnreadable;
    }
    return module;
  }

  // Folds the module of `other` (if tagged) into the common ancestor `shared`.
  static int meet(const ModuleTree& tree, const NodeTags& tags, int shared, const Node* other) {
    auto it = tags.find(other);
    if (it == tags.end() || it->second.module < 0) return shared;
    return shared < 0 ? it->second.module : tree.commonAncestor(shared, it->second.module);
  }
};

void registerHtp(Registry& registry) { registry.addStrategy(std::make_shared<HtpStrategy>()); }

}  // namespace
}  // namespace mexport

MEXPORT_PLUGIN("htp", "0.1.0", mexport::registerHtp)
