#include "onnx_check.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include "mexport/errors.h"

namespace mexport {

void inferShapesAndCheck(onnx::ModelProto& model, const std::string& model_path) {
  try {
    onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*strict_mode=*/1, /*data_prop=*/false);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), strict);
    if (model_path.empty())
      onnx::checker::check_model(model);
    else
      onnx::checker::check_model(model_path);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw ExportError(
        "the ONNX checker rejected the exported model: " + what.substr(0, what.find('\n')) +
        "; this is a lowering bug, please report it with the model");
  }
}

}  // namespace mexport
