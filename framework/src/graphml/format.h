// The GraphML format written by the graphml emitter plugin and read back by
// `mexport graphml-to-onnx`: data keys, node kinds, and the JSON encodings of
// the ONNX pieces kept in data fields. Writer and reader both use this file so
// that each encoding sits next to its decoding.
//
// A file is one top-level <graph> holding the graph inputs, outputs and a
// compound node per module that owns ONNX nodes (a <node> with
// yfiles.foldertype="group" holding a <graph>), nested as the module tree is;
// op nodes sit in their module's graph, initializers in the deepest module
// graph holding all their consumers. An edge per tensor use sits in the
// deepest graph holding both its ends. Subgraphs (If, Loop bodies) stay whole
// in their node's attribute JSON: their reads of outer tensors get no edges.
//
// Lossless round trip: every optional ONNX field is written only when it is
// set, and read back only when present, so the rebuilt protobuf serialises to
// the same bytes. Parameters (initializer data) go to a binary sidecar of raw
// tensor bytes (offsets in the tensor's JSON, a SHA-256 of the whole sidecar
// in the graph data), or base64 inside the file, or nowhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>
#include <nlohmann/json.hpp>

namespace mexport::graphml {

using Json = nlohmann::ordered_json;

inline constexpr char kFormatName[] = "mexport-graphml";
inline constexpr int kCurrentFormatVersion = 1;
inline constexpr char kGraphmlSuffix[] = "_hierarchical_graph.graphml";
inline constexpr char kSidecarSuffix[] = "_hierarchical_graph.onnxdata";
inline constexpr char kGraphmlNamespace[] = "http://graphml.graphdrawing.org/xmlns";

// Values of the "parameters" graph data (and emitter option).
inline constexpr char kSidecar[] = "sidecar";
inline constexpr char kEmbedded[] = "embedded";
inline constexpr char kNoParameters[] = "none";

// Values of the "kind" node data.
inline constexpr char kModuleKind[] = "module";
inline constexpr char kOpKind[] = "op";
inline constexpr char kInputKind[] = "input";
inline constexpr char kOutputKind[] = "output";
inline constexpr char kInitializerKind[] = "initializer";

// A GraphML <key>: `domain` is its for= ("graph", "node", "edge"), `type` its
// attr.type. The writer declares id "<domain initial>_<name>"; the reader finds
// ids through the declarations, so a tool that renumbers keys does no harm.
struct KeySpec {
  const char* domain;
  const char* name;
  const char* type;
};

namespace key {
// graph: the model around the graph, and where its parameters are
inline constexpr KeySpec kFormat{"graph", "format", "string"};
inline constexpr KeySpec kFormatVersion{"graph", "format_version", "int"};
inline constexpr KeySpec kIrVersion{"graph", "ir_version", "long"};
inline constexpr KeySpec kOpsetImports{"graph", "opset_imports",
                                       "string"};  // JSON [{domain, version}]
inline constexpr KeySpec kProducerName{"graph", "producer_name", "string"};
inline constexpr KeySpec kProducerVersion{"graph", "producer_version", "string"};
inline constexpr KeySpec kModelDomain{"graph", "model_domain", "string"};
inline constexpr KeySpec kModelVersion{"graph", "model_version", "long"};
inline constexpr KeySpec kModelDocString{"graph", "model_doc_string", "string"};
inline constexpr KeySpec kMetadataProps{"graph", "metadata_props",
                                        "string"};  // JSON [{key, value}]
inline constexpr KeySpec kGraphName{"graph", "graph_name", "string"};
inline constexpr KeySpec kGraphDocString{"graph", "graph_doc_string", "string"};
inline constexpr KeySpec kValueInfo{"graph", "value_info",
                                    "string"};  // JSON [value info], in order
inline constexpr KeySpec kModelName{"graph", "model_name", "string"};
inline constexpr KeySpec kStrategy{"graph", "strategy", "string"};
inline constexpr KeySpec kToolVersion{"graph", "tool_version", "string"};
inline constexpr KeySpec kParameters{"graph", "parameters", "string"};  // sidecar | embedded | none
inline constexpr KeySpec kSidecarFile{"graph", "sidecar_file", "string"};  // beside the .graphml
inline constexpr KeySpec kSidecarBytes{"graph", "sidecar_bytes", "long"};
inline constexpr KeySpec kSidecarSha256{"graph", "sidecar_sha256", "string"};
// node: all kinds
inline constexpr KeySpec kKind{"node", "kind", "string"};
inline constexpr KeySpec kLabel{"node", "label", "string"};
// node: module
inline constexpr KeySpec kTag{"node", "tag", "string"};
inline constexpr KeySpec kModulePath{"node", "module_path", "string"};
inline constexpr KeySpec kClassName{"node", "class_name", "string"};
inline constexpr KeySpec kQualifiedType{"node", "qualified_type", "string"};
inline constexpr KeySpec kExecutionOrder{"node", "execution_order", "int"};  // absent: never ran
inline constexpr KeySpec kModuleNodes{"node", "module_nodes",
                                      "long"};  // ops tagged with it directly
inline constexpr KeySpec kParameterCount{"node", "parameter_count", "long"};
// node: op (also tag, module_path)
inline constexpr KeySpec kIndex{"node", "index", "int"};  // position among the nodes of its kind
inline constexpr KeySpec kName{"node", "name", "string"};
inline constexpr KeySpec kOpType{"node", "op_type", "string"};
inline constexpr KeySpec kDomain{"node", "domain", "string"};
inline constexpr KeySpec kProvenance{"node", "provenance", "string"};
inline constexpr KeySpec kSourceOp{"node", "source_op", "string"};
inline constexpr KeySpec kDocString{"node", "doc_string", "string"};
inline constexpr KeySpec kInputs{"node", "inputs", "string"};          // JSON [tensor name]
inline constexpr KeySpec kOutputs{"node", "outputs", "string"};        // JSON [tensor name]
inline constexpr KeySpec kAttributes{"node", "attributes", "string"};  // JSON [attribute]
// node: input, output (value info), initializer (tensor); all with name, index
inline constexpr KeySpec kNodeValueInfo{"node", "value_info", "string"};  // JSON value info
inline constexpr KeySpec kTensor{"node", "tensor", "string"};             // JSON tensor
inline constexpr KeySpec kDtype{"node", "dtype", "string"};
inline constexpr KeySpec kShape{"node", "shape", "string"};
// edge: one per tensor use
inline constexpr KeySpec kEdgeTensor{"edge", "tensor", "string"};
inline constexpr KeySpec kEdgeDtype{"edge", "dtype", "string"};
inline constexpr KeySpec kEdgeShape{"edge", "shape", "string"};
inline constexpr KeySpec kSlot{"edge", "slot", "int"};  // input position at the consumer
}  // namespace key

// Every key, in declaration order.
const std::vector<KeySpec>& allKeys();
std::string keyId(const KeySpec& spec);

// "float32", "int64", ... for an ONNX TensorProto data type; throws ExportError
// for values ONNX does not define.
std::string dtypeName(int32_t data_type);
int32_t dtypeFromName(const std::string& name);  // throws ExportError

// For people: "float32" and "[batch,16,128]" ("?" for an unknown dim, "" when
// the type has no shape).
std::string typeDtypeText(const onnx::TypeProto& type);
std::string typeShapeText(const onnx::TypeProto& type);

// The codecs throw ExportError naming the field that cannot be encoded
// (sparse tensor attributes, external data, non-tensor types) or decoded.
Json valueInfoToJson(const onnx::ValueInfoProto& info);
onnx::ValueInfoProto valueInfoFromJson(const Json& json);

// Attributes, with tensor values inline (base64 data) and subgraphs whole.
Json attributeToJson(const onnx::AttributeProto& attribute);
onnx::AttributeProto attributeFromJson(const Json& json);

// A tensor without its data: name, dtype, dims, the field holding the data
// ("raw_data", "float_data", ...) and string values. tensorData() is the
// field's bytes (typed fields packed little-endian), which the caller stores
// and later hands back to tensorFromJson().
Json tensorHeaderToJson(const onnx::TensorProto& tensor);
std::string_view tensorDataView(const onnx::TensorProto& tensor, std::string& scratch);
onnx::TensorProto tensorFromJson(const Json& header, std::string_view data);

// An integer JSON number as int64_t; throws ExportError for anything else
// (converting a float out of range would be undefined behaviour).
int64_t integerFromJson(const Json& json);

std::string base64Encode(std::string_view bytes);
std::string base64Decode(std::string_view text);  // throws ExportError
std::string sha256Hex(std::string_view bytes);

}  // namespace mexport::graphml
