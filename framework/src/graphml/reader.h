// Reads a GraphML file of the graphml emitter back into the ONNX model it was
// made from (`mexport graphml-to-onnx`). The format is in graphml/format.h.
#pragma once

#include <string>

#include <onnx/onnx_pb.h>

namespace mexport::graphml {

// Throws UsageError when the file cannot be read, and ExportError
// "<file>:<line>: ..." when it is not well-formed XML, not a mexport GraphML,
// or damaged: a missing or altered sidecar, a dangling or missing edge, a
// missing or malformed field.
onnx::ModelProto readGraphml(const std::string& path);

// The same for GraphML text already in memory: `path` names it in messages,
// and the sidecar is looked for beside it.
onnx::ModelProto readGraphmlText(const std::string& path, std::string text);

}  // namespace mexport::graphml
