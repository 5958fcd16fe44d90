// Parameter-usage strategy: an op that reads a module's parameter or buffer
// belongs to that module. Nothing else is guessed: ops that read no
// parameter stay untagged (`export.root_fallback: true` puts them on the root),
// so its coverage is an honest baseline. The fastest strategy: one pass over
// the graph, no call structure.
#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <unordered_map>

#include "mexport/plugin.h"
#include "mexport/strategy.h"

namespace mexport {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

class UsageStrategy final : public Strategy {
 public:
  std::string name() const override { return "usage"; }

  StrategyTraits traits() const override {
    return {/*handles_control_flow=*/true, /*speed_rank=*/1, /*expected_coverage=*/0.35,
            "an op reading a module's parameter or buffer belongs to that module; nothing else is "
            "tagged"};
  }

  NodeTags tag(const PreparedModel& model) const override {
    std::unordered_map<const Value*, int> owner;
    for (const auto& [input, path] : model.parameters) {
      const size_t dot = path.rfind('.');
      const int module = model.tree.findPath(dot == std::string::npos ? "" : path.substr(0, dot));
      if (module >= 0) owner[input] = module;
    }
    NodeTags tags;
    tagBlock(*model.graph->block(), model.tree, owner, tags);
    return tags;
  }

 private:
  static void tagBlock(const Block& block, const ModuleTree& tree,
                       const std::unordered_map<const Value*, int>& owner, NodeTags& tags) {
    for (const Node* node : block.nodes()) {
      int module = -1;
      bool shared = false;  // reads parameters of more than one module
      for (const Value* input : node->inputs()) {
        auto it = owner.find(input);
        if (it == owner.end()) continue;
        if (module >= 0 && module != it->second) shared = true;
        module = module < 0 ? it->second : tree.commonAncestor(module, it->second);
      }
      // An op reading the weights of two modules belongs to neither alone:
      // their common ancestor, by rule rather than by observation.
      if (module >= 0) tags[node] = {module, shared ? Provenance::kInferred : Provenance::kDirect};
      for (const Block* sub : node->blocks()) tagBlock(*sub, tree, owner, tags);
    }
  }
};

void registerUsage(Registry& registry) { registry.addStrategy(std::make_shared<UsageStrategy>()); }

}  // namespace
}  // namespace mexport

MEXPORT_PLUGIN("usage", "0.1.0", mexport::registerUsage)
