#include "emitters/builtin_emitters.h"
#include "mexport/errors.h"

namespace mexport {
namespace {

class OnnxEmitter final : public Emitter {
 public:
  std::string name() const override { return "onnx"; }
  void emit(const ExportResult& result, const EmitterOptions&, OutputFiles& out) const override {
    std::string bytes;
    if (!result.model.SerializeToString(&bytes))
      throw ExportError("cannot serialise the ONNX model (protobuf limits a file to 2 GiB)");
    out.write(result.settings.output_path, bytes);
  }
};

}  // namespace

std::shared_ptr<const Emitter> makeOnnxEmitter() { return std::make_shared<OnnxEmitter>(); }

}  // namespace mexport
