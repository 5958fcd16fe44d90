#include "inspect/hierarchy.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "inspect/onnx_file.h"
#include "mexport/errors.h"

namespace mexport::inspect {
namespace {

namespace fs = std::filesystem;

// "a/b/" -> "/a/b"; "" stays "" (no tag).
std::string normalizeTag(std::string tag) {
  while (tag.size() > 1 && tag.back() == '/') tag.pop_back();
  if (!tag.empty() && tag[0] != '/') tag = "/" + tag;
  return tag;
}

std::string firstSegment(const std::string& tag) {  // "/a/b" -> "/a"
  const size_t end = tag.find('/', 1);
  return end == std::string::npos ? tag : tag.substr(0, end);
}

ExportMetadata parseMetadata(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("cannot read metadata '" + path + "'; check the path");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ExportError("metadata '" + path + "' is not valid JSON (" + e.what() +
                      "); re-export or pass another file with --metadata");
  }
  ExportMetadata metadata;
  metadata.path = path;
  try {
    if (doc.contains("export")) metadata.strategy = doc["export"].value("strategy", "");
    for (const auto& m : doc.at("modules")) {
      ExportMetadata::Module module{m.at("path").get<std::string>(), m.value("class", ""),
                                    m.at("tag").get<std::string>()};
      if (module.path.empty()) metadata.root_tag = module.tag;
      metadata.modules.push_back(std::move(module));
    }
    for (const auto& [name, n] : doc.at("nodes").items())
      metadata.nodes[name] = {n.value("tag", ""), n.value("provenance", ""), n.value("source", "")};
  } catch (const nlohmann::json::exception& e) {
    throw ExportError("metadata '" + path + "' is not mexport metadata (" + e.what() +
                      "); pass the <stem>_<strategy>_metadata.json of this file with --metadata");
  }
  return metadata;
}

void tagGraph(const onnx::GraphProto& graph, const ExportMetadata* metadata,
              const std::string& inherited_tag, std::vector<TaggedNode>& out) {
  for (const auto& node : graph.node()) {
    TaggedNode tagged;
    tagged.node = &node;
    for (const auto& attr : node.attribute())
      if (attr.name() == "hierarchy_tag" && attr.type() == onnx::AttributeProto::STRING &&
          !attr.s().empty()) {
        tagged.tag = normalizeTag(attr.s());
        tagged.source = TagSource::kAttribute;
      }
    if (tagged.source == TagSource::kNone) {
      tagged.tag = tagFromNodeName(node.name());
      if (!tagged.tag.empty()) tagged.source = TagSource::kNodeName;
    }
    if (metadata) {
      const auto found = metadata->nodes.find(node.name());
      if (found != metadata->nodes.end()) {
        tagged.provenance = found->second.provenance;
        if (tagged.source == TagSource::kNone && !found->second.tag.empty()) {
          tagged.tag = normalizeTag(found->second.tag);
          tagged.source = TagSource::kMetadata;
        }
      }
    }
    if (tagged.source == TagSource::kNone) tagged.tag = inherited_tag;
    const std::string own_tag = tagged.tag;
    out.push_back(std::move(tagged));
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) tagGraph(attr.g(), metadata, own_tag, out);
      for (const auto& g : attr.graphs()) tagGraph(g, metadata, own_tag, out);
    }
  }
}

void collectInitializers(const onnx::GraphProto& graph,
                         std::vector<const onnx::TensorProto*>& out) {
  for (const auto& init : graph.initializer()) out.push_back(&init);
  for (const auto& node : graph.node())
    for (const auto& attr : node.attribute()) {
      if (attr.has_g()) collectInitializers(attr.g(), out);
      for (const auto& g : attr.graphs()) collectInitializers(g, out);
    }
}

// Module paths of real models are a few hundred bytes at most. A longer one
// is refused: its ancestors are modules too, so a path of N bytes costs up to
// N^2/4 bytes of tags and N/2 levels of recursion below (a 600 KB node name
// overflowed the stack).
constexpr size_t kMaxTagBytes = 1024;

// Creates the module of `tag` and its missing ancestors; returns its index.
int ensureModule(Hierarchy& h, const std::string& tag) {
  const auto found = h.by_tag.find(tag);
  if (found != h.by_tag.end()) return found->second;
  if (tag.size() > kMaxTagBytes)
    throw ExportError(fmt::format(
        "the module path '{}...' is {} bytes long; mexport reads paths of up to {} bytes, longer "
        "than any model's module tree: the file is damaged or was not written by an exporter",
        tag.substr(0, 60), tag.size(), kMaxTagBytes));
  const size_t slash = tag.rfind('/');
  const std::string parent_tag = slash == 0 || slash == std::string::npos
                                     ? h.modules[0].tag  // a top-level scope hangs off the root
                                     : tag.substr(0, slash);
  const int parent = ensureModule(h, parent_tag);
  ModuleStats module;
  module.tag = tag;
  module.name = tag.substr(slash == std::string::npos ? 0 : slash + 1);
  module.parent = parent;
  module.depth = h.modules[parent].depth + 1;
  const int index = static_cast<int>(h.modules.size());
  h.modules.push_back(std::move(module));
  h.modules[parent].children.push_back(index);
  h.by_tag[tag] = index;
  return index;
}

int commonAncestor(const Hierarchy& h, int a, int b) {
  while (a != b) {
    if (h.modules[a].depth >= h.modules[b].depth)
      a = h.modules[a].parent;
    else
      b = h.modules[b].parent;
  }
  return a;
}

}  // namespace

const char* tagSourceName(TagSource source) {
  switch (source) {
    case TagSource::kAttribute:
      return "attribute";
    case TagSource::kNodeName:
      return "node_name";
    case TagSource::kMetadata:
      return "metadata";
    case TagSource::kNone:
      return "none";
  }
  return "none";
}

std::string tagFromNodeName(const std::string& name) {
  const size_t slash = name.rfind('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return kAnonymousRootTag;
  return normalizeTag(name.substr(0, slash));
}

std::optional<ExportMetadata> loadMetadata(const std::string& onnx_path,
                                           const onnx::ModelProto& model,
                                           const std::string& explicit_path) {
  if (!explicit_path.empty()) {
    if (!fs::is_regular_file(explicit_path))
      throw UsageError("--metadata '" + explicit_path + "': no such file; check the path");
    return parseMetadata(explicit_path);
  }
  const fs::path onnx_file(onnx_path);
  const fs::path dir = onnx_file.parent_path();  // "" for a file in the working directory
  const std::string stem = onnx_file.stem().string();
  const std::string strategy = metadataProp(model, "mexport.strategy");
  if (!strategy.empty()) {
    const fs::path candidate = dir / (stem + "_" + strategy + "_metadata.json");
    if (fs::is_regular_file(candidate)) return parseMetadata(candidate.string());
  }
  // Another tool's file, or a strategy we were not told: take the one
  // metadata file of this stem if there is exactly one.
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir.empty() ? fs::path(".") : dir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = "_metadata.json";
    if (name.size() > stem.size() + 1 + suffix.size() && name.rfind(stem + "_", 0) == 0 &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      candidates.push_back(dir / name);
  }
  if (candidates.size() == 1) return parseMetadata(candidates[0].string());
  return std::nullopt;
}

std::vector<TaggedNode> tagNodes(const onnx::ModelProto& model, const ExportMetadata* metadata,
                                 std::string* root_tag) {
  std::vector<TaggedNode> nodes;
  tagGraph(model.graph(), metadata, "", nodes);

  // The root: the metadata's root module; in our files without metadata the
  // first segment all tags share (`/BertModel`); otherwise anonymous.
  std::string root = metadata && !metadata->root_tag.empty() ? metadata->root_tag : "";
  if (root.empty() && !metadataProp(model, "mexport.version").empty()) {
    for (const auto& n : nodes) {
      if (n.tag.empty() || n.tag == kAnonymousRootTag) continue;
      if (root.empty()) root = firstSegment(n.tag);
      if (firstSegment(n.tag) != root) {
        root.clear();
        break;
      }
    }
  }
  if (root.empty()) root = kAnonymousRootTag;
  for (auto& n : nodes)
    if (n.tag.empty() || n.tag == kAnonymousRootTag) n.tag = root;
  if (root_tag) *root_tag = root;
  return nodes;
}

std::vector<int> Hierarchy::preorder() const {
  std::vector<int> order, stack = {0};
  while (!stack.empty()) {
    const int index = stack.back();
    stack.pop_back();
    order.push_back(index);
    const auto& children = modules[index].children;
    for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(*it);
  }
  return order;
}

Hierarchy buildHierarchy(const onnx::ModelProto& model, const ExportMetadata* metadata) {
  Hierarchy h;
  std::string root_tag;
  h.nodes = tagNodes(model, metadata, &root_tag);
  ModuleStats root;
  root.tag = root_tag;
  root.name = root_tag == kAnonymousRootTag ? root_tag : root_tag.substr(root_tag.rfind('/') + 1);
  h.modules.push_back(root);
  h.by_tag[root_tag] = 0;

  // Metadata modules first, so modules without nodes still show and classes are known.
  std::map<std::string, int> by_parameter_prefix;  // module path -> index
  if (metadata)
    for (const auto& m : metadata->modules) {
      const int index = ensureModule(h, normalizeTag(m.tag));
      h.modules[index].class_name = m.class_name;
      if (!m.path.empty()) by_parameter_prefix[m.path] = index;
    }

  std::vector<int> node_module;
  for (const auto& n : h.nodes) {
    const int index = ensureModule(h, n.tag);
    node_module.push_back(index);
    ModuleStats& module = h.modules[index];
    ++module.own_nodes;
    ++module.op_types[n.node->op_type()];
    if (!n.provenance.empty()) ++module.provenance[n.provenance];
    ++h.tag_sources[n.source];
  }

  // torch.onnx scope tags are attribute paths: `/encoder/layer.0/attention`
  // names the module whose parameters start with `encoder.layer.0.attention.`.
  for (size_t i = 1; i < h.modules.size(); ++i) {
    const std::string& tag = h.modules[i].tag;
    const std::string prefix = root_tag == kAnonymousRootTag ? "/" : root_tag + "/";
    if (tag.rfind(prefix, 0) != 0) continue;
    std::string dotted = tag.substr(prefix.size());
    for (char& c : dotted)
      if (c == '/') c = '.';
    by_parameter_prefix.emplace(dotted, static_cast<int>(i));
  }

  std::vector<const onnx::TensorProto*> initializers;
  collectInitializers(model.graph(), initializers);
  std::map<std::string, int> reader_module;  // initializer -> common module of its readers
  std::set<std::string> initializer_names;
  for (const auto* init : initializers) initializer_names.insert(init->name());
  for (size_t i = 0; i < h.nodes.size(); ++i)
    for (const auto& input : h.nodes[i].node->input()) {
      if (!initializer_names.count(input)) continue;
      const auto found = reader_module.find(input);
      reader_module[input] = found == reader_module.end()
                                 ? node_module[i]
                                 : commonAncestor(h, found->second, node_module[i]);
    }
  for (const auto* init : initializers) {
    int index = 0;
    const size_t dot = init->name().rfind('.');
    const auto by_name = dot == std::string::npos
                             ? by_parameter_prefix.end()
                             : by_parameter_prefix.find(init->name().substr(0, dot));
    if (by_name != by_parameter_prefix.end())
      index = by_name->second;
    else if (reader_module.count(init->name()))
      index = reader_module[init->name()];
    h.initializer_module[init->name()] = index;
    InitializerStats& stats = h.modules[index].own_initializers;
    ++stats.count;
    stats.elements += elementCount(*init);
    stats.bytes += elementCount(*init) * elementSize(init->data_type());
  }

  // Totals bottom-up: a parent is always created before its children.
  for (auto& m : h.modules) {
    m.total_nodes = m.own_nodes;
    m.total_initializers = m.own_initializers;
  }
  for (int i = static_cast<int>(h.modules.size()) - 1; i > 0; --i) {
    ModuleStats& parent = h.modules[h.modules[i].parent];
    parent.total_nodes += h.modules[i].total_nodes;
    parent.total_initializers.count += h.modules[i].total_initializers.count;
    parent.total_initializers.elements += h.modules[i].total_initializers.elements;
    parent.total_initializers.bytes += h.modules[i].total_initializers.bytes;
  }
  return h;
}

}  // namespace mexport::inspect
