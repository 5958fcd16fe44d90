#include "emitters/builtin_emitters.h"
#include "onnx_writer.h"

namespace mexport {
namespace {

class OnnxEmitter final : public Emitter {
 public:
  std::string name() const override { return "onnx"; }
  void emit(const ExportResult& result, const EmitterOptions&, OutputFiles& out) const override {
    const ExportSettings& settings = result.settings;
    writeOnnxFile(result.model, settings.output_path, settings.external_data,
                  settings.external_data_threshold, out);
  }
};

}  // namespace

std::shared_ptr<const Emitter> makeOnnxEmitter() { return std::make_shared<OnnxEmitter>(); }

}  // namespace mexport
