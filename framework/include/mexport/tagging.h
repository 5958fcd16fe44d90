// What a strategy produces: for each node of the prepared torch graph, the
// module it belongs to and how that was decided.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "mexport/module_tree.h"

namespace torch::jit {
struct Graph;
struct Node;
struct Value;
struct Module;
}  // namespace torch::jit

namespace mexport {

enum class Provenance {
  kDirect,    // the op ran inside that module's own forward
  kInferred,  // a context rule chose the module
  kRoot,      // no rule applied; fell back to the root module
  kUntagged,  // no module at all
};

const char* provenanceName(Provenance provenance);

struct NodeTag {
  int module = -1;  // index into ModuleTree, -1 when untagged
  Provenance provenance = Provenance::kUntagged;
};

using NodeTags = std::unordered_map<const torch::jit::Node*, NodeTag>;

// The model as strategies see it: the loaded module, the prepared graph the
// lowering will convert (inlined, attributes resolved to parameters), the
// module tree.
struct PreparedModel {
  std::string name;
  const torch::jit::Module* module = nullptr;
  std::shared_ptr<torch::jit::Graph> graph;
  ModuleTree tree;
  bool has_control_flow = false;  // prim::If / prim::Loop left after preparation
  // Graph inputs holding a parameter or buffer, by its path
  // ("encoder.layer.0.attention.self.query.weight"); the other inputs are the model's.
  std::unordered_map<const torch::jit::Value*, std::string> parameters;
};

}  // namespace mexport
