// Writing an ONNX file, with its weights in a data file beside it when asked
// or when the file would pass protobuf's 2 GiB limit: the external data of
// onnx.proto (TensorProto.data_location = EXTERNAL, external_data entries
// location / offset / length). Reading such files: inspect/onnx_file.h.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

#include "mexport/emitter.h"
#include "mexport/export_result.h"

namespace mexport {

// Protobuf refuses to serialise or parse a message of 2 GiB or more.
constexpr int64_t kProtobufLimitBytes = INT32_MAX;

// `<file>.data` for `<dir>/<file>` (bert.onnx -> bert.onnx.data): the ONNX
// file's own name plus a suffix, so no other output can share it.
std::string externalDataPath(const std::string& onnx_path);

// Writes `model` to `onnx_path` through `out` (staged, committed with the
// export's other files). With external data, the main graph's initializers of
// 1 KiB or more go to externalDataPath(onnx_path), written straight from the
// model's bytes, and the ONNX file refers to them; kAuto does so when the
// serialised model would be larger than `threshold` bytes. Throws ExportError
// when what stays in the ONNX file is still too large for protobuf.
void writeOnnxFile(const onnx::ModelProto& model, const std::string& onnx_path, ExternalData mode,
                   int64_t threshold, OutputFiles& out);

}  // namespace mexport
