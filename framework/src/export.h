// One export, end to end: load and prepare, tag, lower, check, emit.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "mexport/export_result.h"
#include "mexport/registry.h"

namespace mexport {

extern const char* const kToolVersion;

// Registers the built-in emitters (onnx, metadata, report) and converters.
void registerBuiltins(Registry& registry);

struct ExportOutcome {
  ExportResult result;
  std::vector<std::string> written;  // files, in emitter order
  std::vector<std::string> warnings;
};

using ProgressFn = std::function<void(const std::string& stage)>;

// Throws mexport::Error; writes nothing unless everything succeeded.
ExportOutcome runExport(const Config& config, const Registry& registry, const ProgressFn& progress);

}  // namespace mexport
