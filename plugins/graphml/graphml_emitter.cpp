// The graphml emitter: <stem>_hierarchical_graph.graphml, the ONNX graph as
// nested GraphML (a compound node per module that owns ONNX nodes, op nodes
// inside their module, an edge per tensor use) that yEd, networkx and
// `mexport graphml-to-onnx` read, with the parameters in
// <stem>_hierarchical_graph.onnxdata. The format is in
// framework/src/graphml/format.h.
//
// Options: parameters: sidecar (default) | embedded | none.
#include <pugixml.hpp>

#include <filesystem>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "graphml/format.h"
#include "mexport/emitter.h"
#include "mexport/errors.h"
#include "mexport/plugin.h"

namespace mexport {
namespace {

using namespace graphml;

// Base64 makes a file a third larger than its data and every reader decode
// it: past this, parameters belong in the sidecar.
constexpr size_t kEmbeddedLimitBytes = size_t{32} << 20;

constexpr int kTopLevel = -1;  // the container of nodes outside every module

// Bytes of a tensor's data field (string tensors keep their values in JSON).
size_t dataBytes(const onnx::TensorProto& t) {
  return t.raw_data().size() + 4 * static_cast<size_t>(t.float_data_size() + t.int32_data_size()) +
         8 * static_cast<size_t>(t.int64_data_size() + t.double_data_size() + t.uint64_data_size());
}

std::string parametersMode(const EmitterOptions& options) {
  std::string mode = kSidecar;
  for (const auto& [option, value] : options) {
    if (option != "parameters")
      throw UsageError("unknown option '" + option +
                       "'; its one option is parameters: sidecar | embedded | none");
    if (value != kSidecar && value != kEmbedded && value != kNoParameters)
      throw UsageError("parameters: '" + value + "' is not one of sidecar, embedded, none");
    mode = value;
  }
  return mode;
}

void addData(pugi::xml_node element, const KeySpec& spec, const std::string& value) {
  pugi::xml_node data = element.append_child("data");
  data.append_attribute("key").set_value(keyId(spec).c_str());
  data.append_child(pugi::node_pcdata).set_value(value.c_str());
}

void addData(pugi::xml_node element, const KeySpec& spec, int64_t value) {
  addData(element, spec, std::to_string(value));
}

void addData(pugi::xml_node element, const KeySpec& spec, const Json& value) {
  addData(element, spec, value.dump());
}

class StringWriter final : public pugi::xml_writer {
 public:
  void write(const void* data, size_t size) override {
    text.append(static_cast<const char*>(data), size);
  }
  std::string text;
};

// One GraphML document (and its sidecar) for one export.
class GraphmlWriter {
 public:
  GraphmlWriter(const ExportResult& result, std::string mode, std::string sidecar_name)
      : r_(result),
        graph_(result.model.graph()),
        mode_(std::move(mode)),
        sidecar_name_(std::move(sidecar_name)) {}

  void build() {
    checkRepresentable();
    indexTensors();
    placeInitializers();

    pugi::xml_node decl = doc_.append_child(pugi::node_declaration);
    decl.append_attribute("version") = "1.0";
    decl.append_attribute("encoding") = "UTF-8";
    pugi::xml_node root = doc_.append_child("graphml");
    root.append_attribute("xmlns") = kGraphmlNamespace;
    root.append_attribute("xmlns:xsi") = "http://www.w3.org/2001/XMLSchema-instance";
    root.append_attribute("xsi:schemaLocation") =
        "http://graphml.graphdrawing.org/xmlns "
        "http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd";
    for (const KeySpec& spec : allKeys()) {
      pugi::xml_node k = root.append_child("key");
      k.append_attribute("id") = keyId(spec).c_str();
      k.append_attribute("for") = spec.domain;
      k.append_attribute("attr.name") = spec.name;
      k.append_attribute("attr.type") = spec.type;
    }
    top_ = root.append_child("graph");
    top_.append_attribute("id") = "G";
    top_.append_attribute("edgedefault") = "directed";

    // Parameters first: the graph data records the sidecar's size and hash.
    std::vector<Json> tensors = storeParameters();
    addGraphData();
    for (int i = 0; i < graph_.input_size(); ++i) addValueNode(kInputKind, "i", i, graph_.input(i));
    addModules();
    for (int k = 0; k < graph_.node_size(); ++k) addOp(k);
    for (int j = 0; j < graph_.initializer_size(); ++j) addInitializer(j, tensors[j]);
    for (int i = 0; i < graph_.output_size(); ++i)
      addValueNode(kOutputKind, "o", i, graph_.output(i));
    addEdges();
  }

  std::string document() const {
    StringWriter writer;
    doc_.save(writer, "  ", pugi::format_indent, pugi::encoding_utf8);
    return std::move(writer.text);
  }
  const std::string& sidecar() const { return sidecar_; }

 private:
  struct Producer {
    std::string id;  // GraphML node id
    int container;   // module index, or kTopLevel
  };

  // Fields the format has no place for fail loudly rather than vanish.
  void checkRepresentable() const {
    if (r_.model.training_info_size() > 0)
      throw ExportError("the model has training info, which GraphML cannot hold");
    if (r_.model.functions_size() > 0)
      throw ExportError("the model has local functions, which GraphML cannot hold");
    if (graph_.sparse_initializer_size() > 0 || graph_.quantization_annotation_size() > 0)
      throw ExportError(
          "the graph has sparse initializers or quantization annotations, which GraphML cannot "
          "hold");
    if (static_cast<int>(r_.nodes.size()) != graph_.node_size())
      throw ExportError("the export has no tag for every ONNX node (internal error)");
  }

  int moduleOf(int op) const { return r_.nodes[op].module; }

  // The deepest container holding both.
  int meet(int a, int b) const { return a < 0 || b < 0 ? kTopLevel : r_.tree.commonAncestor(a, b); }

  void indexTensors() {
    auto note = [&](const onnx::ValueInfoProto& info) {
      types_[info.name()] = {typeDtypeText(info.type()), typeShapeText(info.type())};
    };
    for (const auto& info : graph_.value_info()) note(info);
    for (const auto& info : graph_.output()) note(info);
    for (const auto& info : graph_.input()) note(info);
    for (int j = 0; j < graph_.initializer_size(); ++j) {
      const auto& t = graph_.initializer(j);
      std::string shape = "[";
      for (int64_t d : t.dims()) shape += (shape.size() > 1 ? "," : "") + std::to_string(d);
      types_[t.name()] = {dtypeName(t.data_type()), shape + "]"};
      producers_[t.name()] = {"p" + std::to_string(j), kTopLevel};
    }
    // A graph input overrides an initializer of the same name.
    for (int i = 0; i < graph_.input_size(); ++i) {
      producers_[graph_.input(i).name()] = {"i" + std::to_string(i), kTopLevel};
      input_names_.insert(graph_.input(i).name());
    }
    for (int k = 0; k < graph_.node_size(); ++k)
      for (const auto& out : graph_.node(k).output())
        if (!out.empty()) producers_[out] = {"n" + std::to_string(k), moduleOf(k)};
  }

  // An initializer sits in the deepest module graph holding all its readers.
  void placeInitializers() {
    std::unordered_map<std::string, int> initializer_index;
    for (int j = 0; j < graph_.initializer_size(); ++j)
      initializer_index[graph_.initializer(j).name()] = j;
    constexpr int kUnread = -2;
    initializer_container_.assign(graph_.initializer_size(), kUnread);
    auto read = [&](const std::string& tensor, int reader_container) {
      auto it = initializer_index.find(tensor);
      if (it == initializer_index.end() || input_names_.count(tensor)) return;
      int& container = initializer_container_[it->second];
      container = container == kUnread ? reader_container : meet(container, reader_container);
    };
    for (int k = 0; k < graph_.node_size(); ++k)
      for (const auto& in : graph_.node(k).input()) read(in, moduleOf(k));
    for (const auto& out : graph_.output()) read(out.name(), kTopLevel);
    for (int& container : initializer_container_)
      if (container == kUnread) container = kTopLevel;
    for (int j = 0; j < graph_.initializer_size(); ++j)
      if (!input_names_.count(graph_.initializer(j).name()))
        producers_[graph_.initializer(j).name()].container = initializer_container_[j];
  }

  // Each initializer's JSON: its header and where its bytes are.
  std::vector<Json> storeParameters() {
    size_t total = 0;
    for (const auto& t : graph_.initializer()) total += dataBytes(t);
    if (mode_ == kEmbedded && total > kEmbeddedLimitBytes)
      throw ExportError(
          "parameters: embedded is for small models (up to " +
          std::to_string(kEmbeddedLimitBytes >> 20) + " MiB of parameters) and this one has " +
          std::to_string((total + (1 << 20) - 1) >> 20) + " MiB; use parameters: sidecar");
    if (mode_ == kSidecar) sidecar_.reserve(total);
    std::vector<Json> tensors;
    std::string scratch;
    for (const auto& t : graph_.initializer()) {
      Json header = tensorHeaderToJson(t);
      const bool has_bytes = header.contains("field") && header["field"] != "string_data";
      if (has_bytes && mode_ == kSidecar) {
        const std::string_view bytes = tensorDataView(t, scratch);
        header["offset"] = sidecar_.size();
        header["length"] = bytes.size();
        sidecar_.append(bytes);
      } else if (has_bytes && mode_ == kEmbedded) {
        header["base64"] = base64Encode(tensorDataView(t, scratch));
      }
      tensors.push_back(std::move(header));
    }
    return tensors;
  }

  void addGraphData() {
    using namespace key;
    const onnx::ModelProto& m = r_.model;
    addData(top_, kFormat, std::string(kFormatName));
    addData(top_, kFormatVersion, int64_t{kCurrentFormatVersion});
    if (m.has_ir_version()) addData(top_, kIrVersion, m.ir_version());
    Json opsets = Json::array();
    for (const auto& o : m.opset_import()) {
      Json opset = Json::object();
      if (o.has_domain()) opset["domain"] = o.domain();
      if (o.has_version()) opset["version"] = o.version();
      opsets.push_back(std::move(opset));
    }
    addData(top_, kOpsetImports, opsets);
    if (m.has_producer_name()) addData(top_, kProducerName, m.producer_name());
    if (m.has_producer_version()) addData(top_, kProducerVersion, m.producer_version());
    if (m.has_domain()) addData(top_, kModelDomain, m.domain());
    if (m.has_model_version()) addData(top_, kModelVersion, m.model_version());
    if (m.has_doc_string()) addData(top_, kModelDocString, m.doc_string());
    if (m.metadata_props_size() > 0) {
      Json props = Json::array();
      for (const auto& p : m.metadata_props()) {
        Json prop = Json::object();
        if (p.has_key()) prop["key"] = p.key();
        if (p.has_value()) prop["value"] = p.value();
        props.push_back(std::move(prop));
      }
      addData(top_, kMetadataProps, props);
    }
    if (graph_.has_name()) addData(top_, kGraphName, graph_.name());
    if (graph_.has_doc_string()) addData(top_, kGraphDocString, graph_.doc_string());
    if (graph_.value_info_size() > 0) {
      Json infos = Json::array();
      for (const auto& info : graph_.value_info()) infos.push_back(valueInfoToJson(info));
      addData(top_, kValueInfo, infos);
    }
    addData(top_, kModelName, r_.settings.model_name);
    addData(top_, kStrategy, r_.strategy);
    addData(top_, kToolVersion, r_.tool_version);
    addData(top_, kParameters, mode_);
    if (mode_ == kSidecar) {
      addData(top_, kSidecarFile, sidecar_name_);
      addData(top_, kSidecarBytes, static_cast<int64_t>(sidecar_.size()));
      addData(top_, kSidecarSha256, sha256Hex(sidecar_));
    }
  }

  pugi::xml_node containerGraph(int container) const {
    return container == kTopLevel ? top_ : module_graphs_.at(container);
  }

  // A compound node for each module that owns ONNX nodes, directly or below
  // it. Modules come parent first, so the parent's graph already exists.
  void addModules() {
    const ModuleTree& tree = r_.tree;
    std::vector<int64_t> owned(tree.size(), 0);
    for (const auto& n : r_.nodes)
      for (int m = n.module; m >= 0; m = tree.at(m).parent) ++owned[m];
    module_graphs_.assign(tree.size(), pugi::xml_node());
    for (int m = 0; m < tree.size(); ++m) {
      if (owned[m] == 0) continue;
      const ModuleInfo& info = tree.at(m);
      const std::string id = "m" + std::to_string(m);
      pugi::xml_node node =
          containerGraph(info.parent < 0 ? kTopLevel : info.parent).append_child("node");
      node.append_attribute("id") = id.c_str();
      node.append_attribute("yfiles.foldertype") =
          "group";  // yEd folders; networkx reads nested graphs only so
      using namespace key;
      addData(node, kKind, std::string(kModuleKind));
      addData(node, kLabel, info.tag.substr(info.tag.rfind('/') + 1));
      addData(node, kTag, info.tag);
      addData(node, kModulePath, info.path);
      addData(node, kClassName, info.class_name);
      addData(node, kQualifiedType, info.qualified_type);
      if (r_.execution_order[m] >= 0)
        addData(node, kExecutionOrder, int64_t{r_.execution_order[m]});
      addData(node, kModuleNodes, r_.module_nodes[m]);
      addData(node, kParameterCount, tree.totalParameters(m));
      pugi::xml_node inner = node.append_child("graph");
      inner.append_attribute("id") = (id + ":").c_str();
      inner.append_attribute("edgedefault") = "directed";
      module_graphs_[m] = inner;
    }
  }

  void addOp(int k) {
    using namespace key;
    const onnx::NodeProto& op = graph_.node(k);
    const OnnxNodeInfo& info = r_.nodes[k];
    pugi::xml_node node = containerGraph(info.module).append_child("node");
    node.append_attribute("id") = ("n" + std::to_string(k)).c_str();
    addData(node, kKind, std::string(kOpKind));
    addData(node, kLabel, op.op_type());
    addData(node, kIndex, int64_t{k});
    if (op.has_name()) addData(node, kName, op.name());
    if (op.has_op_type()) addData(node, kOpType, op.op_type());
    if (op.has_domain()) addData(node, kDomain, op.domain());
    if (info.module >= 0) {
      addData(node, kTag, r_.tree.at(info.module).tag);
      addData(node, kModulePath, r_.tree.at(info.module).path);
    }
    addData(node, kProvenance, std::string(provenanceName(info.provenance)));
    addData(node, kSourceOp, info.source_op);
    if (op.has_doc_string()) addData(node, kDocString, op.doc_string());
    addData(node, kInputs, Json(std::vector<std::string>(op.input().begin(), op.input().end())));
    addData(node, kOutputs, Json(std::vector<std::string>(op.output().begin(), op.output().end())));
    if (op.attribute_size() > 0) {
      Json attributes = Json::array();
      for (const auto& a : op.attribute()) {
        try {
          attributes.push_back(attributeToJson(a));
        } catch (const ExportError& e) {
          throw ExportError("node '" + op.name() + "': " + e.what());
        }
      }
      addData(node, kAttributes, attributes);
    }
  }

  void addValueNode(const char* kind, const char* prefix, int index,
                    const onnx::ValueInfoProto& info) {
    using namespace key;
    pugi::xml_node node = top_.append_child("node");
    node.append_attribute("id") = (prefix + std::to_string(index)).c_str();
    addData(node, kKind, std::string(kind));
    addData(node, kLabel, info.name());
    addData(node, kIndex, int64_t{index});
    addData(node, kName, info.name());
    addData(node, kNodeValueInfo, valueInfoToJson(info));
    addData(node, kDtype, typeDtypeText(info.type()));
    addData(node, kShape, typeShapeText(info.type()));
  }

  void addInitializer(int j, const Json& tensor) {
    using namespace key;
    const onnx::TensorProto& t = graph_.initializer(j);
    pugi::xml_node node = containerGraph(initializer_container_[j]).append_child("node");
    node.append_attribute("id") = ("p" + std::to_string(j)).c_str();
    addData(node, kKind, std::string(kInitializerKind));
    addData(node, kLabel, t.name());
    addData(node, kIndex, int64_t{j});
    addData(node, kName, t.name());
    addData(node, kDtype, types_[t.name()].first);
    addData(node, kShape, types_[t.name()].second);
    addData(node, kTensor, tensor);
  }

  // One edge per tensor use, in the deepest graph holding both ends.
  void addEdges() {
    int64_t count = 0;
    auto edge = [&](const std::string& tensor, const std::string& target, int target_container,
                    int slot, const std::string& reader) {
      auto producer = producers_.find(tensor);
      if (producer == producers_.end())
        throw ExportError(reader + " reads '" + tensor +
                          "', which no node, input or initializer produces");
      pugi::xml_node e =
          containerGraph(meet(producer->second.container, target_container)).append_child("edge");
      e.append_attribute("id") = ("e" + std::to_string(count++)).c_str();
      e.append_attribute("source") = producer->second.id.c_str();
      e.append_attribute("target") = target.c_str();
      const auto& type = types_[tensor];
      using namespace key;
      addData(e, kEdgeTensor, tensor);
      if (!type.first.empty()) addData(e, kEdgeDtype, type.first);
      if (!type.second.empty()) addData(e, kEdgeShape, type.second);
      addData(e, kSlot, int64_t{slot});
    };
    for (int k = 0; k < graph_.node_size(); ++k) {
      const auto& op = graph_.node(k);
      for (int slot = 0; slot < op.input_size(); ++slot)
        if (!op.input(slot).empty())
          edge(op.input(slot), "n" + std::to_string(k), moduleOf(k), slot,
               "node '" + op.name() + "'");
    }
    for (int i = 0; i < graph_.output_size(); ++i)
      edge(graph_.output(i).name(), "o" + std::to_string(i), kTopLevel, 0, "graph output");
  }

  const ExportResult& r_;
  const onnx::GraphProto& graph_;
  const std::string mode_;
  const std::string sidecar_name_;
  pugi::xml_document doc_;
  pugi::xml_node top_;
  std::vector<pugi::xml_node> module_graphs_;  // per module: its compound node's graph, if any
  std::unordered_map<std::string, std::pair<std::string, std::string>>
      types_;                                            // tensor -> dtype, shape
  std::unordered_map<std::string, Producer> producers_;  // tensor -> where it comes from
  std::unordered_set<std::string> input_names_;
  std::vector<int> initializer_container_;
  std::string sidecar_;
};

class GraphmlEmitter final : public Emitter {
 public:
  std::string name() const override { return "graphml"; }

  void emit(const ExportResult& result, const EmitterOptions& options,
            OutputFiles& out) const override {
    const std::string mode = parametersMode(options);
    const std::string sidecar_path = siblingPath(result.settings.output_path, kSidecarSuffix);
    GraphmlWriter writer(result, mode, std::filesystem::path(sidecar_path).filename().string());
    writer.build();
    if (mode == kSidecar) out.write(sidecar_path, writer.sidecar());
    out.write(siblingPath(result.settings.output_path, kGraphmlSuffix), writer.document());
  }
};

void registerGraphml(Registry& registry) {
  registry.addEmitter(std::make_shared<GraphmlEmitter>());
}

}  // namespace
}  // namespace mexport

MEXPORT_PLUGIN("graphml", "0.1.0", mexport::registerGraphml)
