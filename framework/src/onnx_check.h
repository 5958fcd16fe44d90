// The ONNX checker's full check, as onnx.checker.check_model(full_check=True):
// strict shape and type inference, then the model checks. Inferred shapes are
// kept in the model (value_info and the graph outputs' dims).
#pragma once

#include <onnx/onnx_pb.h>

namespace mexport {

// Throws ExportError with the checker's first line on failure.
void inferShapesAndCheck(onnx::ModelProto& model);

}  // namespace mexport
