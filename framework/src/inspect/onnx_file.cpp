#include "inspect/onnx_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "mexport/errors.h"

namespace mexport::inspect {
namespace {

namespace fs = std::filesystem;
using onnx::TensorProto;

float halfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1u, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);  // subnormal
  else if (exponent == 31)
    magnitude = mantissa ? NAN : INFINITY;
  else
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  return sign ? -magnitude : magnitude;
}

float bfloat16ToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// One element of little-endian raw bytes as a double.
double rawElement(const char* p, int data_type) {
  switch (data_type) {
#define MEXPORT_RAW(TYPE_ENUM, CTYPE) \
  case TensorProto::TYPE_ENUM: {      \
    CTYPE v;                          \
    std::memcpy(&v, p, sizeof v);     \
    return static_cast<double>(v);    \
  }
    MEXPORT_RAW(FLOAT, float)
    MEXPORT_RAW(DOUBLE, double)
    MEXPORT_RAW(INT64, int64_t)
    MEXPORT_RAW(INT32, int32_t)
    MEXPORT_RAW(INT16, int16_t)
    MEXPORT_RAW(INT8, int8_t)
    MEXPORT_RAW(UINT64, uint64_t)
    MEXPORT_RAW(UINT32, uint32_t)
    MEXPORT_RAW(UINT16, uint16_t)
    MEXPORT_RAW(UINT8, uint8_t)
    MEXPORT_RAW(BOOL, uint8_t)
#undef MEXPORT_RAW
    case TensorProto::FLOAT16: {
      uint16_t v;
      std::memcpy(&v, p, sizeof v);
      return halfToFloat(v);
    }
    case TensorProto::BFLOAT16: {
      uint16_t v;
      std::memcpy(&v, p, sizeof v);
      return bfloat16ToFloat(v);
    }
    default:
      return 0.0;
  }
}

// Every tensor of a graph: initializers, sparse initializers, node attributes
// (a Constant's value) and, recursively, those of sub-graphs.
void collectTensors(const onnx::GraphProto& graph, std::vector<const TensorProto*>& tensors) {
  for (const auto& tensor : graph.initializer()) tensors.push_back(&tensor);
  for (const auto& sparse : graph.sparse_initializer())
    tensors.insert(tensors.end(), {&sparse.values(), &sparse.indices()});
  for (const auto& node : graph.node())
    for (const auto& attribute : node.attribute()) {
      if (attribute.has_t()) tensors.push_back(&attribute.t());
      for (const auto& tensor : attribute.tensors()) tensors.push_back(&tensor);
      if (attribute.has_g()) collectTensors(attribute.g(), tensors);
      for (const auto& subgraph : attribute.graphs()) collectTensors(subgraph, tensors);
    }
}

// Every tensor's element and byte counts, and their sum over the model, must
// fit in int64_t so that nothing counting them overflows; a negative
// dimension is no shape either.
void checkTensorShapes(const onnx::ModelProto& model, const std::string& onnx_path) {
  std::vector<const TensorProto*> tensors;
  collectTensors(model.graph(), tensors);
  int64_t total_bytes = 0;
  for (const TensorProto* tensor : tensors) {
    int64_t bytes = std::max<int64_t>(elementSize(tensor->data_type()), 1);
    bool fits = true;
    for (int64_t d : tensor->dims())
      fits = fits && d >= 0 && !__builtin_mul_overflow(bytes, d, &bytes);
    if (!fits || __builtin_add_overflow(total_bytes, bytes, &total_bytes))
      throw ExportError(fmt::format(
          "{}: tensor '{}' has the shape {}, with a negative dimension or more bytes than a file "
          "can hold (with the tensors before it); the file is damaged: re-export it",
          onnx_path, tensor->name(), shapeText(*tensor)));
  }
}

std::vector<const TensorProto*> externalTensors(const onnx::ModelProto& model) {
  std::vector<const TensorProto*> tensors, external;
  collectTensors(model.graph(), tensors);
  for (const TensorProto* tensor : tensors)
    if (tensor->data_location() == TensorProto::EXTERNAL) external.push_back(tensor);
  return external;
}

struct ExternalBytes {
  fs::path file;
  int64_t offset = 0;
  int64_t length = 0;
};

// Where an external tensor's bytes are, checked as onnx checks the location,
// and against the file's size and the tensor's type and shape.
ExternalBytes locateExternalData(const TensorProto& tensor, const std::string& onnx_path) {
  const std::string where = fmt::format("{}: tensor '{}'", onnx_path, tensor.name());
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& entry : tensor.external_data()) {
    if (entry.key() == "location") location = entry.value();
    if (entry.key() != "offset" && entry.key() != "length") continue;  // checksum, basepath
    size_t used = 0;
    int64_t number = -1;
    try {
      number = std::stoll(entry.value(), &used);
    } catch (const std::exception&) {  // left at -1: reported below
    }
    if (number < 0 || used != entry.value().size())
      throw ExportError(fmt::format("{} has external data {} '{}', not a byte count; re-export it",
                                    where, entry.key(), entry.value()));
    (entry.key() == "offset" ? offset : length) = number;
  }
  if (location.empty())
    throw ExportError(where + " is stored externally but names no location; re-export it");
  const fs::path relative(location);
  bool climbs = false;
  for (const auto& part : relative) climbs = climbs || part == "..";
  if (relative.has_root_path() || climbs)
    throw ExportError(fmt::format(
        "{} has its data at '{}', outside the model's directory; absolute paths and '..' are "
        "refused, as onnx does: keep the data file beside the .onnx file",
        where, location));

  ExternalBytes bytes{fs::path(onnx_path).parent_path() / relative, offset, length};
  std::error_code ec;
  const bool regular = fs::is_regular_file(bytes.file, ec);
  const auto size = regular ? static_cast<int64_t>(fs::file_size(bytes.file, ec)) : int64_t{-1};
  if (!regular || ec)
    throw ExportError(
        fmt::format("{} has its data in {}, which is missing; copy it beside the .onnx file", where,
                    bytes.file.string()));
  if (bytes.length < 0) bytes.length = std::max<int64_t>(size - bytes.offset, 0);  // as onnx
  if (bytes.offset > size || bytes.length > size - bytes.offset)
    throw ExportError(
        fmt::format("{}: bytes {} to {} are past the end of {} ({} bytes); the data file is "
                    "truncated or belongs to another model",
                    where, bytes.offset, bytes.offset + bytes.length, bytes.file.string(), size));
  const int64_t expected = elementCount(tensor) * elementSize(tensor.data_type());
  if (elementSize(tensor.data_type()) > 0 && bytes.length != expected)
    throw ExportError(
        fmt::format("{} ({}{}) needs {} bytes but its external data has {}; re-export it", where,
                    dataTypeName(tensor.data_type()), shapeText(tensor), expected, bytes.length));
  return bytes;
}

std::string readExternalData(const TensorProto& tensor, const std::string& onnx_path) {
  const ExternalBytes where = locateExternalData(tensor, onnx_path);
  std::string bytes(static_cast<size_t>(where.length), '\0');
  std::ifstream in(where.file, std::ios::binary);
  in.seekg(where.offset);
  if (!in.read(bytes.data(), where.length))
    throw ExportError(
        fmt::format("{}: cannot read the data of tensor '{}' from {}; check its permissions",
                    onnx_path, tensor.name(), where.file.string()));
  return bytes;
}

}  // namespace

onnx::ModelProto readOnnxFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw UsageError("cannot read '" + path + "': no such file; check the path");
  if (fs::is_directory(path, ec))
    throw UsageError("cannot read '" + path + "': it is a directory; give an .onnx file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ExportError("cannot open '" + path + "': " + std::strerror(errno) +
                      "; check its permissions");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.empty()) throw ExportError("'" + path + "' is empty, not an ONNX model; re-export it");
  onnx::ModelProto model;
  // A parse can succeed on bytes that merely look like protobuf; a model
  // without an IR version or a graph is not one either.
  if (!model.ParseFromString(bytes) || model.ir_version() <= 0 || !model.has_graph())
    throw ExportError("'" + path +
                      "' is not a valid ONNX model (protobuf ModelProto parse failed or no "
                      "graph); check that it is an .onnx file and re-export it");
  checkTensorShapes(model, path);
  checkExternalData(model, path);
  return model;
}

bool hasExternalData(const onnx::ModelProto& model) { return !externalTensors(model).empty(); }

void checkExternalData(const onnx::ModelProto& model, const std::string& onnx_path) {
  for (const TensorProto* tensor : externalTensors(model)) locateExternalData(*tensor, onnx_path);
}

void loadExternalData(onnx::ModelProto& model, const std::string& onnx_path) {
  for (const TensorProto* found : externalTensors(model)) {
    // The walk is shared with the read-only check; the model is the caller's own.
    auto& tensor = const_cast<TensorProto&>(*found);
    tensor.set_raw_data(readExternalData(tensor, onnx_path));
    tensor.clear_external_data();
    tensor.clear_data_location();
  }
}

std::string dataTypeName(int data_type) {
  switch (data_type) {
    case TensorProto::FLOAT:
      return "float";
    case TensorProto::UINT8:
      return "uint8";
    case TensorProto::INT8:
      return "int8";
    case TensorProto::UINT16:
      return "uint16";
    case TensorProto::INT16:
      return "int16";
    case TensorProto::INT32:
      return "int32";
    case TensorProto::INT64:
      return "int64";
    case TensorProto::STRING:
      return "string";
    case TensorProto::BOOL:
      return "bool";
    case TensorProto::FLOAT16:
      return "float16";
    case TensorProto::DOUBLE:
      return "double";
    case TensorProto::UINT32:
      return "uint32";
    case TensorProto::UINT64:
      return "uint64";
    case TensorProto::COMPLEX64:
      return "complex64";
    case TensorProto::COMPLEX128:
      return "complex128";
    case TensorProto::BFLOAT16:
      return "bfloat16";
    default:
      return "type " + std::to_string(data_type);
  }
}

int64_t elementSize(int data_type) {
  switch (data_type) {
    case TensorProto::DOUBLE:
    case TensorProto::INT64:
    case TensorProto::UINT64:
    case TensorProto::COMPLEX64:
      return 8;
    case TensorProto::COMPLEX128:
      return 16;
    case TensorProto::FLOAT:
    case TensorProto::INT32:
    case TensorProto::UINT32:
      return 4;
    case TensorProto::FLOAT16:
    case TensorProto::BFLOAT16:
    case TensorProto::INT16:
    case TensorProto::UINT16:
      return 2;
    case TensorProto::INT8:
    case TensorProto::UINT8:
    case TensorProto::BOOL:
      return 1;
    default:
      return 0;
  }
}

int64_t elementCount(const TensorProto& tensor) {
  int64_t count = 1;
  for (int64_t d : tensor.dims()) count *= d;
  return count;
}

std::string shapeText(const TensorProto& tensor) {
  std::string text = "[";
  for (int i = 0; i < tensor.dims_size(); ++i)
    text += (i ? ", " : "") + std::to_string(tensor.dims(i));
  return text + "]";
}

std::optional<std::vector<double>> tensorValues(const TensorProto& tensor,
                                                const std::string& onnx_path) {
  const int type = tensor.data_type();
  const int64_t size = elementSize(type);
  if (size == 0 || type == TensorProto::COMPLEX64 || type == TensorProto::COMPLEX128)
    return std::nullopt;
  const int64_t count = elementCount(tensor);  // fits: readOnnxFile checked the shape
  std::vector<double> values;

  std::optional<std::string> raw;
  if (tensor.data_location() == TensorProto::EXTERNAL)
    raw = readExternalData(tensor, onnx_path);
  else if (tensor.has_raw_data())
    raw = tensor.raw_data();
  if (raw) {
    if (static_cast<int64_t>(raw->size()) != count * size) return std::nullopt;
    values.reserve(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) values.push_back(rawElement(raw->data() + i * size, type));
    return values;
  }

  // Typed fields, as onnx.proto assigns them.
  switch (type) {
    case TensorProto::FLOAT:
      for (float v : tensor.float_data()) values.push_back(v);
      break;
    case TensorProto::DOUBLE:
      for (double v : tensor.double_data()) values.push_back(v);
      break;
    case TensorProto::INT64:
      for (int64_t v : tensor.int64_data()) values.push_back(static_cast<double>(v));
      break;
    case TensorProto::UINT32:
    case TensorProto::UINT64:
      for (uint64_t v : tensor.uint64_data()) values.push_back(static_cast<double>(v));
      break;
    case TensorProto::FLOAT16:
      for (int32_t v : tensor.int32_data()) values.push_back(halfToFloat(static_cast<uint16_t>(v)));
      break;
    case TensorProto::BFLOAT16:
      for (int32_t v : tensor.int32_data())
        values.push_back(bfloat16ToFloat(static_cast<uint16_t>(v)));
      break;
    default:  // INT32, INT16, INT8, UINT16, UINT8, BOOL
      for (int32_t v : tensor.int32_data()) values.push_back(v);
      break;
  }
  if (static_cast<int64_t>(values.size()) != count) return std::nullopt;
  return values;
}

int64_t defaultOpset(const onnx::ModelProto& model) {
  for (const auto& opset : model.opset_import())
    if (opset.domain().empty() || opset.domain() == "ai.onnx") return opset.version();
  return -1;
}

std::string metadataProp(const onnx::ModelProto& model, const std::string& key) {
  for (const auto& prop : model.metadata_props())
    if (prop.key() == key) return prop.value();
  return "";
}

namespace {

void appendNodes(const onnx::GraphProto& graph, std::vector<const onnx::NodeProto*>& out) {
  for (const auto& node : graph.node()) {
    out.push_back(&node);
    for (const auto& attribute : node.attribute()) {
      if (attribute.has_g()) appendNodes(attribute.g(), out);
      for (const auto& subgraph : attribute.graphs()) appendNodes(subgraph, out);
    }
  }
}

}  // namespace

std::vector<const onnx::NodeProto*> allNodes(const onnx::GraphProto& graph) {
  std::vector<const onnx::NodeProto*> nodes;
  appendNodes(graph, nodes);
  return nodes;
}

std::vector<const onnx::ValueInfoProto*> realGraphInputs(const onnx::GraphProto& graph) {
  std::set<std::string> initializers;
  for (const auto& init : graph.initializer()) initializers.insert(init.name());
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& input : graph.input())
    if (!initializers.count(input.name())) inputs.push_back(&input);
  return inputs;
}

std::string valueTypeText(const onnx::ValueInfoProto& value) {
  if (!value.has_type() || !value.type().has_tensor_type()) return "?";
  const auto& tensor = value.type().tensor_type();
  std::string text = dataTypeName(tensor.elem_type());
  if (!tensor.has_shape()) return text;
  text += "[";
  for (int i = 0; i < tensor.shape().dim_size(); ++i) {
    const auto& dim = tensor.shape().dim(i);
    text += i ? ", " : "";
    if (dim.has_dim_value())
      text += std::to_string(dim.dim_value());
    else if (dim.has_dim_param())
      text += dim.dim_param();
    else
      text += "?";
  }
  return text + "]";
}

}  // namespace mexport::inspect
