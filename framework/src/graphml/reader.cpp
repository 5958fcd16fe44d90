#include "graphml/reader.h"

#include <pugixml.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "graphml/format.h"
#include "mexport/errors.h"

namespace mexport::graphml {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> readFile(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return std::nullopt;
  std::ostringstream bytes;
  bytes << file.rdbuf();
  if (file.bad()) return std::nullopt;
  return std::move(bytes).str();
}

constexpr int kMaxNesting = 1000;

std::string shortHash(const std::string& hex) { return hex.substr(0, 12) + "..."; }

// A node of one kind (input, output, initializer, op) by its "index" data.
struct Indexed {
  std::vector<pugi::xml_node> nodes;
  void put(size_t index, pugi::xml_node node) {
    if (index >= nodes.size()) nodes.resize(index + 1);
    nodes[index] = node;
  }
};

// What an edge can connect: the node's kind and its position in that kind.
struct Endpoint {
  std::string kind;
  size_t index = 0;
};

class GraphmlReader {
 public:
  GraphmlReader(std::string path, std::string text)
      : path_(std::move(path)), text_(std::move(text)) {}

  onnx::ModelProto read() {
    pugi::xml_document doc;
    const pugi::xml_parse_result parsed =
        doc.load_buffer(text_.data(), text_.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!parsed)
      throw ExportError(fmt(lineOf(parsed.offset)) + ": not well-formed XML (" +
                        parsed.description() + "); the file is damaged: export it again");
    const pugi::xml_node root = doc.document_element();
    if (std::string(root.name()) != "graphml")
      fail(root, std::string("the root element is <") + root.name() +
                     ">, not <graphml>: not a GraphML file");
    readKeys(root);
    const pugi::xml_node top = root.child("graph");
    if (!top) fail(root, "no <graph> element: the file holds no graph");
    if (data(top, key::kFormat).value_or("") != kFormatName)
      fail(top, std::string("not a mexport GraphML (no graph data format = ") + kFormatName +
                    "); only files of `mexport export --with-graphml` can be converted");
    if (integer(top, key::kFormatVersion) > kCurrentFormatVersion)
      fail(top, "written in GraphML format version " + *data(top, key::kFormatVersion) +
                    ", newer than this mexport reads (" + std::to_string(kCurrentFormatVersion) +
                    "); use a newer mexport");
    collect(top);

    onnx::ModelProto model;
    readModelData(top, model);
    onnx::GraphProto& graph = *model.mutable_graph();
    for (pugi::xml_node node : indexed(kInputKind).nodes)
      *graph.add_input() = decode(node, key::kNodeValueInfo, [&] {
        return valueInfoFromJson(json(node, key::kNodeValueInfo));
      });
    for (pugi::xml_node node : indexed(kOutputKind).nodes)
      *graph.add_output() = decode(node, key::kNodeValueInfo, [&] {
        return valueInfoFromJson(json(node, key::kNodeValueInfo));
      });
    for (pugi::xml_node node : indexed(kOpKind).nodes) *graph.add_node() = readOp(node);
    checkEdges(graph);
    readInitializers(top, graph);
    return model;
  }

 private:
  // --- where, and failing -------------------------------------------------

  int lineOf(ptrdiff_t offset) const {
    const auto end =
        text_.begin() + std::clamp<ptrdiff_t>(offset, 0, static_cast<ptrdiff_t>(text_.size()));
    return 1 + static_cast<int>(std::count(text_.begin(), end, '\n'));
  }
  std::string fmt(int line) const { return path_ + ":" + std::to_string(line); }
  std::string where(pugi::xml_node node) const { return fmt(lineOf(node.offset_debug())); }
  static std::string describe(pugi::xml_node node) {
    const char* id = node.attribute("id").value();
    return std::string("<") + node.name() +
           (*id ? std::string(" id=\"") + id + "\"" : std::string()) + ">";
  }

  [[noreturn]] void fail(pugi::xml_node node, const std::string& what) const {
    throw ExportError(where(node) + ": " + what);
  }

  // Runs a decoder on a node's data and names the node and key when it throws.
  template <typename Decode>
  auto decode(pugi::xml_node node, const KeySpec& spec, Decode&& fn) const -> decltype(fn()) {
    try {
      return fn();
    } catch (const ExportError& e) {
      const std::string what = e.what();
      if (what.rfind(path_ + ":", 0) == 0) throw;  // already located
      fail(node, describe(node) + " data '" + spec.name + "': " + what +
                     "; the file is damaged: export it again");
    } catch (const std::exception& e) {
      fail(node, describe(node) + " data '" + spec.name + "': " + e.what() +
                     "; the file is damaged: export it again");
    }
  }

  // --- data fields --------------------------------------------------------

  void readKeys(pugi::xml_node root) {
    for (pugi::xml_node k : root.children("key"))
      key_ids_[std::string(k.attribute("for").value()) + "/" + k.attribute("attr.name").value()] =
          k.attribute("id").value();
  }

  // The <data> child of `element` for `spec`, or an empty node.
  pugi::xml_node dataNode(pugi::xml_node element, const KeySpec& spec) const {
    auto id = key_ids_.find(std::string(spec.domain) + "/" + spec.name);
    if (id == key_ids_.end()) id = key_ids_.find(std::string("all/") + spec.name);
    if (id == key_ids_.end()) return {};
    for (pugi::xml_node d : element.children("data"))
      if (id->second == d.attribute("key").value()) return d;
    return {};
  }

  std::optional<std::string> data(pugi::xml_node element, const KeySpec& spec) const {
    const pugi::xml_node d = dataNode(element, spec);
    if (!d) return std::nullopt;
    return std::string(d.text().get());
  }

  std::string required(pugi::xml_node element, const KeySpec& spec) const {
    std::optional<std::string> value = data(element, spec);
    if (!value)
      fail(element, describe(element) + " has no '" + spec.name +
                        "' data; the file is damaged: export it again");
    return *value;
  }

  int64_t integer(pugi::xml_node element, const KeySpec& spec) const {
    const std::string text = required(element, spec);
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size())
      fail(element,
           describe(element) + " data '" + spec.name + "' is '" + text + "', not an integer");
    return value;
  }

  Json json(pugi::xml_node element, const KeySpec& spec) const {
    const std::string text = required(element, spec);
    try {
      return Json::parse(text);
    } catch (const std::exception& e) {
      fail(element, describe(element) + " data '" + spec.name + "' is not valid JSON (" + e.what() +
                        "); the file is damaged: export it again");
    }
  }

  std::vector<std::string> names(pugi::xml_node element, const KeySpec& spec) const {
    return decode(element, spec,
                  [&] { return json(element, spec).get<std::vector<std::string>>(); });
  }

  // --- structure ----------------------------------------------------------

  // Every node of the nested graphs by id, and every edge, wherever it sits.
  void collect(pugi::xml_node graph, int depth = 0) {
    // Module trees are shallow; a deeper file is hostile, not a model.
    if (depth > kMaxNesting)
      fail(graph,
           "graphs nest more than " + std::to_string(kMaxNesting) + " deep; the file is damaged");
    for (pugi::xml_node node : graph.children("node")) {
      const std::string id = node.attribute("id").value();
      if (id.empty()) fail(node, "a <node> without an id");
      const std::string kind = required(node, key::kKind);
      if (kind != kModuleKind) {
        if (kind != kInputKind && kind != kOutputKind && kind != kInitializerKind &&
            kind != kOpKind)
          fail(node, describe(node) + " has the unknown kind '" + kind + "'");
        const int64_t index = integer(node, key::kIndex);
        Indexed& of_kind = by_kind_[kind];
        if (index < 0 || index > 10'000'000 ||
            (static_cast<size_t>(index) < of_kind.nodes.size() && of_kind.nodes[index]))
          fail(node, describe(node) + " has " + kind + " index " + std::to_string(index) +
                         ", which is out of range or taken by another node");
        of_kind.put(static_cast<size_t>(index), node);
        endpoints_[id] = {kind, static_cast<size_t>(index)};
      }
      if (!ids_.insert(id).second) fail(node, "node id '" + id + "' appears twice");
      if (pugi::xml_node inner = node.child("graph")) collect(inner, depth + 1);
    }
    for (pugi::xml_node edge : graph.children("edge")) edges_.push_back(edge);
  }

  // The nodes of one kind in index order; a gap is a deleted node.
  const Indexed& indexed(const std::string& kind) {
    const Indexed& of_kind = by_kind_[kind];
    for (size_t i = 0; i < of_kind.nodes.size(); ++i)
      if (!of_kind.nodes[i])
        throw ExportError(path_ + ": no " + kind + " node has index " + std::to_string(i) +
                          " (a node was deleted); the file is damaged: export it again");
    return of_kind;
  }

  void readModelData(pugi::xml_node top, onnx::ModelProto& model) {
    using namespace key;
    if (data(top, kIrVersion)) model.set_ir_version(integer(top, kIrVersion));
    if (auto v = data(top, kProducerName)) model.set_producer_name(*v);
    if (auto v = data(top, kProducerVersion)) model.set_producer_version(*v);
    if (auto v = data(top, kModelDomain)) model.set_domain(*v);
    if (data(top, kModelVersion)) model.set_model_version(integer(top, kModelVersion));
    if (auto v = data(top, kModelDocString)) model.set_doc_string(*v);
    decode(top, kOpsetImports, [&] {
      for (const Json& opset : json(top, kOpsetImports)) {
        auto* o = model.add_opset_import();
        if (opset.contains("domain")) o->set_domain(opset.at("domain").get<std::string>());
        if (opset.contains("version")) o->set_version(integerFromJson(opset.at("version")));
      }
    });
    if (data(top, kMetadataProps))
      decode(top, kMetadataProps, [&] {
        for (const Json& prop : json(top, kMetadataProps)) {
          auto* p = model.add_metadata_props();
          if (prop.contains("key")) p->set_key(prop.at("key").get<std::string>());
          if (prop.contains("value")) p->set_value(prop.at("value").get<std::string>());
        }
      });
    onnx::GraphProto& graph = *model.mutable_graph();
    if (auto v = data(top, kGraphName)) graph.set_name(*v);
    if (auto v = data(top, kGraphDocString)) graph.set_doc_string(*v);
    if (data(top, kValueInfo))
      decode(top, kValueInfo, [&] {
        for (const Json& info : json(top, kValueInfo))
          *graph.add_value_info() = valueInfoFromJson(info);
      });
  }

  onnx::NodeProto readOp(pugi::xml_node node) const {
    using namespace key;
    onnx::NodeProto op;
    if (auto v = data(node, kName)) op.set_name(*v);
    if (auto v = data(node, kOpType)) op.set_op_type(*v);
    if (auto v = data(node, kDomain)) op.set_domain(*v);
    if (auto v = data(node, kDocString)) op.set_doc_string(*v);
    for (const auto& name : names(node, kInputs)) op.add_input(name);
    for (const auto& name : names(node, kOutputs)) op.add_output(name);
    if (data(node, kAttributes))
      decode(node, kAttributes, [&] {
        for (const Json& a : json(node, kAttributes)) *op.add_attribute() = attributeFromJson(a);
      });
    return op;
  }

  // Every edge joins two nodes of this file, carries a tensor its source
  // defines into the slot of its target that reads it, and every read has its
  // edge: an edited file does not slip through as a different model.
  void checkEdges(const onnx::GraphProto& graph) {
    std::set<std::pair<std::string, int64_t>> seen;  // target id, slot
    for (pugi::xml_node edge : edges_) {
      const std::string source = edge.attribute("source").value();
      const std::string target = edge.attribute("target").value();
      for (const std::string& end : {source, target})
        if (!ids_.count(end))
          fail(edge, describe(edge) + " joins '" + source + "' to '" + target + "', but '" + end +
                         "' is not a node of this file (dangling edge); the file is damaged: "
                         "export it again");
      const std::string tensor = required(edge, key::kEdgeTensor);
      const int64_t slot = integer(edge, key::kSlot);
      auto from = endpoints_.find(source);
      auto to = endpoints_.find(target);
      if (from == endpoints_.end() || to == endpoints_.end() ||
          !defines(graph, from->second, tensor) || !reads(graph, to->second, tensor, slot))
        fail(edge, describe(edge) + " carries '" + tensor + "' from '" + source + "' to '" +
                       target + "' slot " + std::to_string(slot) +
                       ", which those nodes do not produce and read");
      if (!seen.insert({target, slot}).second)
        fail(edge, describe(edge) + " is a second edge into slot " + std::to_string(slot) +
                       " of '" + target + "'");
    }
    for (const auto& [id, end] : endpoints_) {
      std::vector<std::string> reads_of;
      if (end.kind == kOpKind)
        reads_of.assign(graph.node(static_cast<int>(end.index)).input().begin(),
                        graph.node(static_cast<int>(end.index)).input().end());
      else if (end.kind == kOutputKind)
        reads_of.push_back(graph.output(static_cast<int>(end.index)).name());
      for (size_t slot = 0; slot < reads_of.size(); ++slot)
        if (!reads_of[slot].empty() && !seen.count({id, static_cast<int64_t>(slot)}))
          fail(by_kind_.at(end.kind).nodes[end.index],
               "node '" + id + "' reads '" + reads_of[slot] + "' in slot " + std::to_string(slot) +
                   " but no edge brings it (an edge was deleted); the file is damaged: export it "
                   "again");
    }
  }

  bool defines(const onnx::GraphProto& graph, const Endpoint& end,
               const std::string& tensor) const {
    if (end.kind == kInputKind) return graph.input(static_cast<int>(end.index)).name() == tensor;
    if (end.kind == kInitializerKind) return initializerName(end.index) == tensor;
    if (end.kind == kOpKind) {
      const auto& outputs = graph.node(static_cast<int>(end.index)).output();
      return std::find(outputs.begin(), outputs.end(), tensor) != outputs.end();
    }
    return false;
  }

  static bool reads(const onnx::GraphProto& graph, const Endpoint& end, const std::string& tensor,
                    int64_t slot) {
    if (end.kind == kOutputKind)
      return slot == 0 && graph.output(static_cast<int>(end.index)).name() == tensor;
    if (end.kind != kOpKind) return false;
    const auto& op = graph.node(static_cast<int>(end.index));
    return slot >= 0 && slot < op.input_size() && op.input(static_cast<int>(slot)) == tensor;
  }

  std::string initializerName(size_t index) const {
    return data(by_kind_.at(kInitializerKind).nodes.at(index), key::kName).value_or("");
  }

  // --- parameters ---------------------------------------------------------

  void readInitializers(pugi::xml_node top, onnx::GraphProto& graph) {
    const Indexed& initializers = indexed(kInitializerKind);
    if (initializers.nodes.empty()) return;
    const std::string mode = required(top, key::kParameters);
    std::string sidecar;
    if (mode == kSidecar)
      sidecar = readSidecar(top);
    else if (mode == kNoParameters)
      fail(top,
           "this GraphML was written with parameters: none and holds no parameter data; export it "
           "again "
           "with parameters: sidecar or embedded to rebuild the ONNX model");
    else if (mode != kEmbedded)
      fail(top, "graph data parameters is '" + mode + "', not sidecar, embedded or none");

    for (pugi::xml_node node : initializers.nodes) {
      *graph.add_initializer() = decode(node, key::kTensor, [&] {
        const Json header = json(node, key::kTensor);
        if (mode == kEmbedded) {
          const std::string bytes =
              header.contains("base64") ? base64Decode(header.at("base64").get<std::string>()) : "";
          return tensorFromJson(header, bytes);
        }
        if (!header.contains("offset")) return tensorFromJson(header, {});
        const int64_t offset = integerFromJson(header.at("offset"));
        const int64_t length = integerFromJson(header.at("length"));
        const auto sidecar_size = static_cast<int64_t>(sidecar.size());
        if (offset < 0 || length < 0 || offset > sidecar_size || length > sidecar_size - offset)
          throw ExportError("bytes " + std::to_string(offset) + "+" + std::to_string(length) +
                            " lie outside the sidecar of " + std::to_string(sidecar.size()) +
                            " bytes");
        return tensorFromJson(header, std::string_view(sidecar).substr(offset, length));
      });
    }
  }

  // The sidecar named by the graph data, whole, after checking its size and
  // SHA-256 against those recorded; errors point at the data naming it.
  std::string readSidecar(pugi::xml_node top) {
    const std::string name = required(top, key::kSidecarFile);
    const int64_t expected_size = integer(top, key::kSidecarBytes);
    const std::string expected_hash = required(top, key::kSidecarSha256);
    const pugi::xml_node file_data = dataNode(top, key::kSidecarFile);
    // The writer names a file beside the GraphML. A path elsewhere is not
    // followed, and only a regular file of the recorded size is read: not a
    // device or FIFO that never ends, not gigabytes to be rejected afterwards.
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      fail(file_data, "the parameter sidecar '" + name +
                          "' is not a file name; the sidecar is a file beside the .graphml: "
                          "export again");
    const fs::path sidecar_path = fs::path(path_).parent_path() / name;
    std::error_code ec;
    if (!fs::is_regular_file(sidecar_path, ec))
      fail(file_data,
           "the parameter sidecar " + sidecar_path.string() +
               " is missing or not a regular file; keep it beside the .graphml (or export again)");
    const uintmax_t size = fs::file_size(sidecar_path, ec);
    if (ec || size != static_cast<uintmax_t>(expected_size))
      fail(dataNode(top, key::kSidecarBytes),
           "the parameter sidecar " + sidecar_path.string() + " has " +
               (ec ? std::string("an unknown number of") : std::to_string(size)) +
               " bytes, not the " + std::to_string(expected_size) +
               " recorded here: it was changed or belongs to another export; export again");
    std::optional<std::string> bytes = readFile(sidecar_path);
    if (!bytes || bytes->size() != size)
      fail(file_data, "the parameter sidecar " + sidecar_path.string() +
                          " cannot be read whole; check its permissions (or export again)");
    const std::string hash = sha256Hex(*bytes);
    if (hash != expected_hash)
      fail(dataNode(top, key::kSidecarSha256),
           "checksum mismatch: the parameter sidecar " + sidecar_path.string() + " has SHA-256 " +
               shortHash(hash) + ", not the " + shortHash(expected_hash) +
               " recorded here: it was changed or belongs to another export; export again");
    return std::move(*bytes);
  }

  std::string path_;
  std::string text_;
  std::map<std::string, std::string> key_ids_;  // "<for>/<attr.name>" -> id
  std::set<std::string> ids_;
  std::map<std::string, Indexed> by_kind_;
  std::unordered_map<std::string, Endpoint> endpoints_;  // node id -> kind and index
  std::vector<pugi::xml_node> edges_;
};

}  // namespace

onnx::ModelProto readGraphml(const std::string& path) {
  if (!fs::is_regular_file(path)) throw UsageError("cannot read " + path + ": no such file");
  std::optional<std::string> text = readFile(path);
  if (!text) throw UsageError("cannot read " + path + ": check that it is a readable file");
  return readGraphmlText(path, std::move(*text));
}

onnx::ModelProto readGraphmlText(const std::string& path, std::string text) {
  return GraphmlReader(path, std::move(text)).read();
}

}  // namespace mexport::graphml
