// Recovers the module hierarchy of any ONNX file: each node's module tag and
// the module tree with node, op-type and initializer counts per module.
//
// A node's tag comes from, in this order: a `hierarchy_tag` string attribute
// (--hierarchy-attrs files, older tools); the scope path of its name, i.e. the
// name up to the last '/' (ours: `<tag>/<OpType>_N`; torch.onnx:
// `/encoder/layer.0/attention/self/query/MatMul`); our metadata JSON (a
// --clean-onnx file keeps its tags only there); else none, and the node
// belongs to the root.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mexport::inspect {

// The root of a file whose tags name no root module of their own
// (torch.onnx scopes: `/Constant` ran in the root's forward).
inline const std::string kAnonymousRootTag = "/";

enum class TagSource { kAttribute, kNodeName, kMetadata, kNone };
const char* tagSourceName(TagSource source);  // attribute, node_name, metadata, none

// `/a/b/MatMul_1` -> `/a/b`; `/MatMul` -> `/`; `MatMul_3` -> "" (no tag).
std::string tagFromNodeName(const std::string& name);

// What our `<stem>_<strategy>_metadata.json` says about the file.
struct ExportMetadata {
  struct Node {
    std::string tag, provenance, source;
  };
  struct Module {
    std::string path, class_name, tag;
  };
  std::string path;                   // of the JSON file
  std::string strategy;               // export.strategy
  std::string root_tag;               // tag of the module with path ""
  std::map<std::string, Node> nodes;  // by ONNX node name
  std::vector<Module> modules;        // in the metadata's order
};

// The metadata of FILE.onnx: `explicit_path` when given (it must exist and
// parse: UsageError otherwise), else `<stem>_<strategy>_metadata.json` beside
// the file, the strategy read from the model's `mexport.strategy` property,
// else the only `<stem>_*_metadata.json` there. nullopt when there is none.
std::optional<ExportMetadata> loadMetadata(const std::string& onnx_path,
                                           const onnx::ModelProto& model,
                                           const std::string& explicit_path);

// One node of the graph or of a subgraph, with its module.
struct TaggedNode {
  const onnx::NodeProto* node = nullptr;
  std::string tag;  // the module's tag; the root's when the node has none
  TagSource source = TagSource::kNone;
  std::string provenance;  // direct/inferred/root/untagged from the metadata, else ""
};

struct InitializerStats {
  int64_t count = 0, elements = 0, bytes = 0;
};

struct ModuleStats {
  std::string tag;
  std::string name;        // last segment of the tag
  std::string class_name;  // from the metadata, else ""
  int parent = -1;
  int depth = 0;
  std::vector<int> children;  // in order of first appearance
  int64_t own_nodes = 0, total_nodes = 0;
  std::map<std::string, int64_t> op_types;    // own nodes by op type
  std::map<std::string, int64_t> provenance;  // own nodes by provenance (metadata only)
  InitializerStats own_initializers, total_initializers;
};

struct Hierarchy {
  std::vector<ModuleStats> modules;  // modules[0] is the root
  std::map<std::string, int> by_tag;
  std::vector<TaggedNode> nodes;                  // graph order, subgraph nodes after their parent
  std::map<std::string, int> initializer_module;  // initializer name -> module index
  std::map<TagSource, int64_t> tag_sources;       // nodes by where their tag came from

  // Module indices in depth-first order from the root, children in order.
  std::vector<int> preorder() const;
};

// Every node with its tag: graph order, subgraph nodes after the node holding
// them (a subgraph node without a tag of its own inherits its parent's).
// `root_tag` receives the root module's tag.
std::vector<TaggedNode> tagNodes(const onnx::ModelProto& model, const ExportMetadata* metadata,
                                 std::string* root_tag);

// The module tree with counts. Initializers belong to the module their
// parameter path names (`encoder.layer.0.attention.self.query.weight`) when
// that module is known, else to the deepest module shared by the nodes that
// read them, else to the root.
Hierarchy buildHierarchy(const onnx::ModelProto& model, const ExportMetadata* metadata);

}  // namespace mexport::inspect
