#include "graphml/format.h"

#include <openssl/evp.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "mexport/errors.h"

// Typed tensor fields are stored as their values' bytes in memory order; the
// format says little-endian.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the GraphML sidecar format is little-endian");

namespace mexport::graphml {
namespace {

const std::array<const char*, 17> kDtypeNames = {
    "undefined", "float32", "uint8",     "int8",       "uint16",  "int16",
    "int32",     "int64",   "string",    "bool",       "float16", "float64",
    "uint32",    "uint64",  "complex64", "complex128", "bfloat16"};

const std::array<const char*, 15> kAttributeTypeNames = {
    "undefined",      "float",      "int",        "string",  "tensor", "graph",
    "floats",         "ints",       "strings",    "tensors", "graphs", "sparse_tensor",
    "sparse_tensors", "type_proto", "type_protos"};

[[noreturn]] void fail(const std::string& what) { throw ExportError(what); }

// ONNX strings are bytes; JSON strings must be UTF-8. Anything else is kept
// as {"base64": ...}.
bool isUtf8(std::string_view s) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = byte(i);
    size_t extra = 0;
    unsigned char low = 0x80, high = 0xBF;  // range of the second byte (RFC 3629)
    if (c < 0x80) {
      extra = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) low = 0xA0;   // no overlong forms
      if (c == 0xED) high = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const unsigned char next = byte(i + k);
      if (k == 1 ? (next < low || next > high) : (next & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

Json bytesToJson(const std::string& bytes) {
  if (isUtf8(bytes)) return bytes;
  return Json{{"base64", base64Encode(bytes)}};
}

std::string bytesFromJson(const Json& json) {
  if (json.is_string()) return json.get<std::string>();
  if (json.is_object() && json.contains("base64"))
    return base64Decode(json.at("base64").get<std::string>());
  fail("expected a string or {\"base64\": ...}, got " + json.dump());
}

// Non-finite floats have no JSON number: they are written as strings.
Json floatToJson(float value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return static_cast<double>(value);
}

float floatFromJson(const Json& json) {
  if (json.is_number()) return static_cast<float>(json.get<double>());
  const std::string text = json.is_string() ? json.get<std::string>() : json.dump();
  if (text == "nan") return std::nanf("");
  if (text == "inf") return INFINITY;
  if (text == "-inf") return -INFINITY;
  fail("expected a float, got " + text);
}

template <typename T>
std::string_view packField(const google::protobuf::RepeatedField<T>& field, std::string& scratch) {
  scratch.assign(reinterpret_cast<const char*>(field.data()),
                 sizeof(T) * static_cast<size_t>(field.size()));
  return scratch;
}

template <typename T>
void unpackField(std::string_view data, google::protobuf::RepeatedField<T>* field,
                 const char* name) {
  if (data.size() % sizeof(T) != 0)
    fail(std::string(name) + " holds " + std::to_string(data.size()) +
         " bytes, not a multiple of " + std::to_string(sizeof(T)));
  field->Resize(static_cast<int>(data.size() / sizeof(T)), T{});
  if (!data.empty()) std::memcpy(field->mutable_data(), data.data(), data.size());
}

Json typeToJson(const onnx::TypeProto& type) {
  Json json = Json::object();
  if (type.value_case() != onnx::TypeProto::kTensorType &&
      type.value_case() != onnx::TypeProto::VALUE_NOT_SET)
    fail("only tensor types can be written (found a sequence, map, optional or sparse type)");
  if (type.has_denotation()) json["denotation"] = type.denotation();
  if (type.has_tensor_type()) {
    const auto& tensor = type.tensor_type();
    Json tensor_json = Json::object();
    if (tensor.has_elem_type()) tensor_json["elem_type"] = dtypeName(tensor.elem_type());
    if (tensor.has_shape()) {
      Json dims = Json::array();
      for (const auto& dim : tensor.shape().dim()) {
        if (dim.has_denotation()) fail("dimension denotations cannot be written");
        if (dim.has_dim_value())
          dims.push_back(dim.dim_value());
        else if (dim.has_dim_param())
          dims.push_back(dim.dim_param());
        else
          dims.push_back(nullptr);
      }
      tensor_json["shape"] = std::move(dims);
    }
    json["tensor_type"] = std::move(tensor_json);
  }
  return json;
}

onnx::TypeProto typeFromJson(const Json& json) {
  onnx::TypeProto type;
  if (json.contains("denotation")) type.set_denotation(json.at("denotation").get<std::string>());
  if (json.contains("tensor_type")) {
    const Json& tensor_json = json.at("tensor_type");
    auto* tensor = type.mutable_tensor_type();
    if (tensor_json.contains("elem_type"))
      tensor->set_elem_type(dtypeFromName(tensor_json.at("elem_type").get<std::string>()));
    if (tensor_json.contains("shape")) {
      auto* shape = tensor->mutable_shape();
      for (const Json& d : tensor_json.at("shape")) {
        auto* dim = shape->add_dim();
        if (d.is_number_integer())
          dim->set_dim_value(integerFromJson(d));
        else if (d.is_string())
          dim->set_dim_param(d.get<std::string>());
        else if (!d.is_null())
          fail("a dimension must be an integer, a name or null, got " + d.dump());
      }
    }
  }
  return type;
}

// The attribute value, tensors inline with their data in base64.
Json tensorInlineToJson(const onnx::TensorProto& tensor) {
  Json json = tensorHeaderToJson(tensor);
  std::string scratch;
  if (json.contains("field") && json["field"] != "string_data")
    json["base64"] = base64Encode(tensorDataView(tensor, scratch));
  return json;
}

onnx::TensorProto tensorInlineFromJson(const Json& json) {
  const std::string data =
      json.contains("base64") ? base64Decode(json.at("base64").get<std::string>()) : "";
  return tensorFromJson(json, data);
}

// Subgraphs (the bodies of If, Loop, Scan) are kept whole in their
// attribute's JSON, tensors inline; they are not drawn as GraphML nodes.
Json nodeToJson(const onnx::NodeProto& node) {
  Json json = Json::object();
  if (node.has_name()) json["name"] = node.name();
  if (node.has_op_type()) json["op_type"] = node.op_type();
  if (node.has_domain()) json["domain"] = node.domain();
  if (node.has_doc_string()) json["doc_string"] = node.doc_string();
  json["input"] = std::vector<std::string>(node.input().begin(), node.input().end());
  json["output"] = std::vector<std::string>(node.output().begin(), node.output().end());
  Json attributes = Json::array();
  for (const auto& a : node.attribute()) attributes.push_back(attributeToJson(a));
  json["attribute"] = std::move(attributes);
  return json;
}

onnx::NodeProto nodeFromJson(const Json& json) {
  onnx::NodeProto node;
  if (json.contains("name")) node.set_name(json.at("name").get<std::string>());
  if (json.contains("op_type")) node.set_op_type(json.at("op_type").get<std::string>());
  if (json.contains("domain")) node.set_domain(json.at("domain").get<std::string>());
  if (json.contains("doc_string")) node.set_doc_string(json.at("doc_string").get<std::string>());
  for (const Json& name : json.at("input")) node.add_input(name.get<std::string>());
  for (const Json& name : json.at("output")) node.add_output(name.get<std::string>());
  for (const Json& a : json.at("attribute")) *node.add_attribute() = attributeFromJson(a);
  return node;
}

Json graphToJson(const onnx::GraphProto& graph) {
  if (graph.sparse_initializer_size() > 0 || graph.quantization_annotation_size() > 0)
    fail("subgraph '" + graph.name() +
         "' has sparse initializers or quantization annotations, which GraphML cannot hold");
  Json json = Json::object();
  if (graph.has_name()) json["name"] = graph.name();
  if (graph.has_doc_string()) json["doc_string"] = graph.doc_string();
  auto list = [](const auto& items, auto encode) {
    Json out = Json::array();
    for (const auto& item : items) out.push_back(encode(item));
    return out;
  };
  json["node"] = list(graph.node(), nodeToJson);
  json["initializer"] = list(graph.initializer(), tensorInlineToJson);
  json["input"] = list(graph.input(), valueInfoToJson);
  json["output"] = list(graph.output(), valueInfoToJson);
  json["value_info"] = list(graph.value_info(), valueInfoToJson);
  return json;
}

onnx::GraphProto graphFromJson(const Json& json) {
  onnx::GraphProto graph;
  if (json.contains("name")) graph.set_name(json.at("name").get<std::string>());
  if (json.contains("doc_string")) graph.set_doc_string(json.at("doc_string").get<std::string>());
  for (const Json& n : json.at("node")) *graph.add_node() = nodeFromJson(n);
  for (const Json& t : json.at("initializer")) *graph.add_initializer() = tensorInlineFromJson(t);
  for (const Json& v : json.at("input")) *graph.add_input() = valueInfoFromJson(v);
  for (const Json& v : json.at("output")) *graph.add_output() = valueInfoFromJson(v);
  for (const Json& v : json.at("value_info")) *graph.add_value_info() = valueInfoFromJson(v);
  return graph;
}

}  // namespace

const std::vector<KeySpec>& allKeys() {
  using namespace key;
  static const std::vector<KeySpec> keys = {kFormat,
                                            kFormatVersion,
                                            kIrVersion,
                                            kOpsetImports,
                                            kProducerName,
                                            kProducerVersion,
                                            kModelDomain,
                                            kModelVersion,
                                            kModelDocString,
                                            kMetadataProps,
                                            kGraphName,
                                            kGraphDocString,
                                            kValueInfo,
                                            kModelName,
                                            kStrategy,
                                            kToolVersion,
                                            kParameters,
                                            kSidecarFile,
                                            kSidecarBytes,
                                            kSidecarSha256,
                                            kKind,
                                            kLabel,
                                            kTag,
                                            kModulePath,
                                            kClassName,
                                            kQualifiedType,
                                            kExecutionOrder,
                                            kModuleNodes,
                                            kParameterCount,
                                            kIndex,
                                            kName,
                                            kOpType,
                                            kDomain,
                                            kProvenance,
                                            kSourceOp,
                                            kDocString,
                                            kInputs,
                                            kOutputs,
                                            kAttributes,
                                            kNodeValueInfo,
                                            kTensor,
                                            kDtype,
                                            kShape,
                                            kEdgeTensor,
                                            kEdgeDtype,
                                            kEdgeShape,
                                            kSlot};
  return keys;
}

std::string keyId(const KeySpec& spec) { return std::string(1, spec.domain[0]) + "_" + spec.name; }

std::string dtypeName(int32_t data_type) {
  if (data_type < 0 || data_type >= static_cast<int32_t>(kDtypeNames.size()))
    fail("unknown ONNX data type " + std::to_string(data_type));
  return kDtypeNames[data_type];
}

int32_t dtypeFromName(const std::string& name) {
  for (size_t i = 0; i < kDtypeNames.size(); ++i)
    if (name == kDtypeNames[i]) return static_cast<int32_t>(i);
  fail("unknown dtype '" + name + "'");
}

std::string typeDtypeText(const onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_elem_type()) return "";
  const int32_t elem = type.tensor_type().elem_type();
  return elem >= 0 && elem < static_cast<int32_t>(kDtypeNames.size()) ? kDtypeNames[elem] : "";
}

std::string typeShapeText(const onnx::TypeProto& type) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return "";
  std::string text = "[";
  for (const auto& dim : type.tensor_type().shape().dim()) {
    if (text.size() > 1) text += ',';
    text += dim.has_dim_value()   ? std::to_string(dim.dim_value())
            : dim.has_dim_param() ? dim.dim_param()
                                  : "?";
  }
  return text + "]";
}

Json valueInfoToJson(const onnx::ValueInfoProto& info) {
  Json json = Json::object();
  if (info.has_name()) json["name"] = info.name();
  if (info.has_type()) {
    try {
      json["type"] = typeToJson(info.type());
    } catch (const ExportError& e) {
      fail("value '" + info.name() + "': " + e.what());
    }
  }
  if (info.has_doc_string()) json["doc_string"] = info.doc_string();
  return json;
}

onnx::ValueInfoProto valueInfoFromJson(const Json& json) {
  onnx::ValueInfoProto info;
  if (json.contains("name")) info.set_name(json.at("name").get<std::string>());
  if (json.contains("type")) *info.mutable_type() = typeFromJson(json.at("type"));
  if (json.contains("doc_string")) info.set_doc_string(json.at("doc_string").get<std::string>());
  return info;
}

Json attributeToJson(const onnx::AttributeProto& a) {
  using A = onnx::AttributeProto;
  const auto type_index = static_cast<size_t>(a.type());
  if (type_index >= kAttributeTypeNames.size())
    fail("attribute '" + a.name() + "' has an unknown type");
  if (!a.ref_attr_name().empty())
    fail("attribute '" + a.name() + "' refers to a function attribute");
  Json json = Json::object();
  if (a.has_name()) json["name"] = a.name();
  if (a.has_type()) json["type"] = kAttributeTypeNames[type_index];
  if (a.has_doc_string()) json["doc_string"] = a.doc_string();
  switch (a.type()) {
    case A::FLOAT:
      if (a.has_f()) json["value"] = floatToJson(a.f());
      break;
    case A::INT:
      if (a.has_i()) json["value"] = a.i();
      break;
    case A::STRING:
      if (a.has_s()) json["value"] = bytesToJson(a.s());
      break;
    case A::TENSOR:
      if (a.has_t()) json["value"] = tensorInlineToJson(a.t());
      break;
    case A::FLOATS: {
      Json values = Json::array();
      for (float f : a.floats()) values.push_back(floatToJson(f));
      json["value"] = std::move(values);
      break;
    }
    case A::INTS:
      json["value"] = std::vector<int64_t>(a.ints().begin(), a.ints().end());
      break;
    case A::STRINGS: {
      Json values = Json::array();
      for (const auto& s : a.strings()) values.push_back(bytesToJson(s));
      json["value"] = std::move(values);
      break;
    }
    case A::TENSORS: {
      Json values = Json::array();
      for (const auto& t : a.tensors()) values.push_back(tensorInlineToJson(t));
      json["value"] = std::move(values);
      break;
    }
    case A::GRAPH:
      if (a.has_g()) json["value"] = graphToJson(a.g());
      break;
    case A::GRAPHS: {
      Json values = Json::array();
      for (const auto& g : a.graphs()) values.push_back(graphToJson(g));
      json["value"] = std::move(values);
      break;
    }
    case A::UNDEFINED:
      break;
    default:
      fail("attribute '" + a.name() + "' of type " + kAttributeTypeNames[type_index] +
           " cannot be written (sparse tensors and type protos are not supported)");
  }
  return json;
}

onnx::AttributeProto attributeFromJson(const Json& json) {
  using A = onnx::AttributeProto;
  A a;
  if (json.contains("name")) a.set_name(json.at("name").get<std::string>());
  if (json.contains("doc_string")) a.set_doc_string(json.at("doc_string").get<std::string>());
  if (!json.contains("type")) return a;
  const std::string type = json.at("type").get<std::string>();
  size_t type_index = 0;
  while (type_index < kAttributeTypeNames.size() && type != kAttributeTypeNames[type_index])
    ++type_index;
  if (type_index == kAttributeTypeNames.size()) fail("unknown attribute type '" + type + "'");
  a.set_type(static_cast<A::AttributeType>(type_index));
  if (!json.contains("value")) return a;
  const Json& value = json.at("value");
  switch (a.type()) {
    case A::FLOAT:
      a.set_f(floatFromJson(value));
      break;
    case A::INT:
      a.set_i(integerFromJson(value));
      break;
    case A::STRING:
      a.set_s(bytesFromJson(value));
      break;
    case A::TENSOR:
      *a.mutable_t() = tensorInlineFromJson(value);
      break;
    case A::FLOATS:
      for (const Json& f : value) a.add_floats(floatFromJson(f));
      break;
    case A::INTS:
      for (const Json& i : value) a.add_ints(integerFromJson(i));
      break;
    case A::STRINGS:
      for (const Json& s : value) a.add_strings(bytesFromJson(s));
      break;
    case A::TENSORS:
      for (const Json& t : value) *a.add_tensors() = tensorInlineFromJson(t);
      break;
    case A::GRAPH:
      *a.mutable_g() = graphFromJson(value);
      break;
    case A::GRAPHS:
      for (const Json& g : value) *a.add_graphs() = graphFromJson(g);
      break;
    default:
      fail("attribute type '" + type + "' is not supported");
  }
  return a;
}

Json tensorHeaderToJson(const onnx::TensorProto& t) {
  if (t.has_segment()) fail("tensor '" + t.name() + "' is segmented; segments cannot be written");
  if (t.external_data_size() > 0 || t.data_location() == onnx::TensorProto::EXTERNAL)
    fail("tensor '" + t.name() + "' has external data; load it into the model first");
  Json json = Json::object();
  if (t.has_name()) json["name"] = t.name();
  if (t.has_data_type()) json["dtype"] = dtypeName(t.data_type());
  json["dims"] = std::vector<int64_t>(t.dims().begin(), t.dims().end());
  std::vector<const char*> fields;
  if (t.has_raw_data()) fields.push_back("raw_data");
  if (t.float_data_size() > 0) fields.push_back("float_data");
  if (t.int32_data_size() > 0) fields.push_back("int32_data");
  if (t.int64_data_size() > 0) fields.push_back("int64_data");
  if (t.double_data_size() > 0) fields.push_back("double_data");
  if (t.uint64_data_size() > 0) fields.push_back("uint64_data");
  if (t.string_data_size() > 0) fields.push_back("string_data");
  if (fields.size() > 1) fail("tensor '" + t.name() + "' holds data in more than one field");
  if (!fields.empty()) json["field"] = fields[0];
  if (t.string_data_size() > 0) {
    Json strings = Json::array();
    for (const auto& s : t.string_data()) strings.push_back(bytesToJson(s));
    json["strings"] = std::move(strings);
  }
  if (t.has_data_location()) json["data_location"] = static_cast<int>(t.data_location());
  if (t.has_doc_string()) json["doc_string"] = t.doc_string();
  return json;
}

std::string_view tensorDataView(const onnx::TensorProto& t, std::string& scratch) {
  if (t.has_raw_data()) return t.raw_data();
  if (t.float_data_size() > 0) return packField(t.float_data(), scratch);
  if (t.int32_data_size() > 0) return packField(t.int32_data(), scratch);
  if (t.int64_data_size() > 0) return packField(t.int64_data(), scratch);
  if (t.double_data_size() > 0) return packField(t.double_data(), scratch);
  if (t.uint64_data_size() > 0) return packField(t.uint64_data(), scratch);
  return {};
}

onnx::TensorProto tensorFromJson(const Json& json, std::string_view data) {
  onnx::TensorProto t;
  for (const Json& d : json.at("dims")) t.add_dims(integerFromJson(d));
  if (json.contains("dtype")) t.set_data_type(dtypeFromName(json.at("dtype").get<std::string>()));
  const std::string field = json.contains("field") ? json.at("field").get<std::string>() : "";
  if (field == "raw_data")
    t.set_raw_data(data.data(), data.size());
  else if (field == "float_data")
    unpackField(data, t.mutable_float_data(), "float_data");
  else if (field == "int32_data")
    unpackField(data, t.mutable_int32_data(), "int32_data");
  else if (field == "int64_data")
    unpackField(data, t.mutable_int64_data(), "int64_data");
  else if (field == "double_data")
    unpackField(data, t.mutable_double_data(), "double_data");
  else if (field == "uint64_data")
    unpackField(data, t.mutable_uint64_data(), "uint64_data");
  else if (field == "string_data")
    for (const Json& s : json.at("strings")) t.add_string_data(bytesFromJson(s));
  else if (!field.empty())
    fail("unknown tensor field '" + field + "'");
  if (json.contains("name")) t.set_name(json.at("name").get<std::string>());
  if (json.contains("doc_string")) t.set_doc_string(json.at("doc_string").get<std::string>());
  if (json.contains("data_location")) {
    const int64_t location = integerFromJson(json.at("data_location"));
    if (location != onnx::TensorProto::DEFAULT && location != onnx::TensorProto::EXTERNAL)
      fail("unknown tensor data_location " + std::to_string(location));
    t.set_data_location(static_cast<onnx::TensorProto::DataLocation>(location));
  }
  return t;
}

int64_t integerFromJson(const Json& json) {
  if (json.is_number_integer() &&
      !(json.is_number_unsigned() &&
        json.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
    return json.get<int64_t>();
  fail("expected an integer, got " + json.dump());
}

std::string base64Encode(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint32_t(uint8_t(bytes[i + 2]));
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    const bool two = i + 1 < bytes.size();
    const uint32_t v =
        (uint32_t(uint8_t(bytes[i])) << 16) | (two ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += two ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64Decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) fail("base64 data has a length that is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int d = k >= 4 - static_cast<size_t>(pad) ? 0 : value(text[i + k]);
      if (d < 0) fail("base64 data holds a character outside the base64 alphabet");
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(v & 0xFF);
  }
  return out;
}

std::string sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    fail("SHA-256 failed in OpenSSL");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace mexport::graphml
