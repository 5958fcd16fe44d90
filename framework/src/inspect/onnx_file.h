// Reading any ONNX file (ours or another tool's) for analyze and compare, and
// decoding initializer values whichever field of TensorProto holds them.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mexport::inspect {

// Parses FILE.onnx; a missing file is a UsageError (exit 2), an unreadable or
// malformed one an ExportError (exit 1), each one line naming the file.
// External data (weights in a file beside it) is checked, not read. Every
// tensor's shape is checked too: no negative dimension, and the byte counts of
// all tensors together fit in int64_t.
onnx::ModelProto readOnnxFile(const std::string& path);

// Whether any tensor (initializers, attributes, sub-graphs) is stored
// externally, in a data file beside the ONNX file.
bool hasExternalData(const onnx::ModelProto& model);

// Checks every externally stored tensor of the model read from `onnx_path`:
// its location is a file inside the ONNX file's directory (not absolute, no
// `..`, as onnx requires), and its offset and length lie within that file and
// match the tensor's type and shape. Throws ExportError naming the file and
// the tensor.
void checkExternalData(const onnx::ModelProto& model, const std::string& onnx_path);

// Reads every externally stored tensor into raw_data, as onnx.load does, for
// code that needs the values in memory (the evaluator).
void loadExternalData(onnx::ModelProto& model, const std::string& onnx_path);

// "float", "int64", ... for TensorProto::DataType; "type N" for unknown ones.
std::string dataTypeName(int data_type);

// Bytes per element, 0 for strings and unknown types.
int64_t elementSize(int data_type);

// Number of elements a tensor of these dims holds (1 for a scalar); it
// cannot overflow for the tensors of a model readOnnxFile returned.
int64_t elementCount(const onnx::TensorProto& tensor);

// "[128, 128]"
std::string shapeText(const onnx::TensorProto& tensor);

// The tensor's values as doubles (float, double, float16, bfloat16, every
// integer type and bool), read from raw_data, the typed fields or external
// data beside the model read from `onnx_path`. nullopt for types without
// numbers (strings, complex) or data that does not fit the tensor.
std::optional<std::vector<double>> tensorValues(const onnx::TensorProto& tensor,
                                                const std::string& onnx_path);

// The opset version of the default (ai.onnx) domain, -1 when not imported.
int64_t defaultOpset(const onnx::ModelProto& model);

// A model-level metadata_props value, "" when absent.
std::string metadataProp(const onnx::ModelProto& model, const std::string& key);

// Every node of `graph`, each followed by the nodes of its sub-graphs (If,
// Loop, Scan bodies), depth first.
std::vector<const onnx::NodeProto*> allNodes(const onnx::GraphProto& graph);

// Graph inputs that are not initializers (IR < 4 files list both).
std::vector<const onnx::ValueInfoProto*> realGraphInputs(const onnx::GraphProto& graph);

// "float[batch, 16]" for a value's declared type.
std::string valueTypeText(const onnx::ValueInfoProto& value);

}  // namespace mexport::inspect
