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
onnx::ModelProto readOnnxFile(const std::string& path);

// "float", "int64", ... for TensorProto::DataType; "type N" for unknown ones.
std::string dataTypeName(int data_type);

// Bytes per element, 0 for strings and unknown types.
int64_t elementSize(int data_type);

// Number of elements a tensor of these dims holds (1 for a scalar).
int64_t elementCount(const onnx::TensorProto& tensor);

// "[128, 128]"
std::string shapeText(const onnx::TensorProto& tensor);

// The tensor's values as doubles (float, double, float16, bfloat16, every
// integer type and bool), read from raw_data, the typed fields or external
// data beside the model (model_dir). nullopt for types without numbers
// (strings, complex) or data that cannot be read.
std::optional<std::vector<double>> tensorValues(const onnx::TensorProto& tensor,
                                                const std::string& model_dir);

// The opset version of the default (ai.onnx) domain, -1 when not imported.
int64_t defaultOpset(const onnx::ModelProto& model);

// A model-level metadata_props value, "" when absent.
std::string metadataProp(const onnx::ModelProto& model, const std::string& key);

// Graph inputs that are not initializers (IR < 4 files list both).
std::vector<const onnx::ValueInfoProto*> realGraphInputs(const onnx::GraphProto& graph);

// "float[batch, 16]" for a value's declared type.
std::string valueTypeText(const onnx::ValueInfoProto& value);

}  // namespace mexport::inspect
