// The emitters every mexport has: onnx, metadata (JSON) and report (text).
#pragma once

#include <memory>

#include "mexport/emitter.h"

namespace mexport {

std::shared_ptr<const Emitter> makeOnnxEmitter();
std::shared_ptr<const Emitter> makeMetadataEmitter();
std::shared_ptr<const Emitter> makeReportEmitter();

}  // namespace mexport
