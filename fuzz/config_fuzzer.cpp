// Fuzzes the YAML config loader (config.cpp) as `mexport export --config`
// runs it: parse, then the checks that CLI overrides may make necessary.
// A mexport::Error is the clean refusal of a bad file; anything else escaping,
// a crash or a sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "mexport/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    mexport::checkConfig(mexport::parseConfig(text, "/fuzz/configs/fuzz.yaml"));
  } catch (const mexport::Error&) {
  }
  return 0;
}
