// The ONNX checker's full check, as onnx.checker.check_model(full_check=True):
// strict shape and type inference, then the model checks. Inferred shapes are
// kept in the model (value_info and the graph outputs' dims).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>

namespace mexport {

// Throws ExportError with the checker's first line on failure. A model with
// external data is checked from its file, `model_path`, as
// onnx.checker.check_model(path) does, so that the checker finds the data
// beside it; otherwise model_path is left empty.
void inferShapesAndCheck(onnx::ModelProto& model, const std::string& model_path = "");

}  // namespace mexport
