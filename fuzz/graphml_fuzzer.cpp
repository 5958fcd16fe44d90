// Fuzzes the GraphML reader (graphml/reader.cpp, format.cpp) as
// `mexport graphml-to-onnx` runs it: read the file, then serialise the rebuilt
// model. The file is read as if it sat in $MEXPORT_FUZZ_SIDECAR_DIR, so seeds
// whose parameter sidecar scripts/fuzz.sh put there get past the sidecar
// checks. A mexport::Error is the clean refusal of a bad file; anything else
// escaping, a crash or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "graphml/reader.h"
#include "mexport/errors.h"

namespace {

std::string graphmlPath() {
  const char* dir = std::getenv("MEXPORT_FUZZ_SIDECAR_DIR");
  return std::string(dir && *dir ? dir : "/nonexistent") + "/fuzz.graphml";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = graphmlPath();
  try {
    const onnx::ModelProto model = mexport::graphml::readGraphmlText(
        path, std::string(reinterpret_cast<const char*>(data), size));
    std::string bytes;
    model.SerializeToString(&bytes);
  } catch (const mexport::Error&) {
  }
  return 0;
}
