// One export, end to end: load and prepare, tag, lower, check, emit.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "mexport/export_result.h"
#include "mexport/registry.h"
#include "progress.h"
#include "selector.h"

namespace mexport {

extern const char* const kToolVersion;

// Registers the built-in emitters (onnx, metadata, report) and converters.
void registerBuiltins(Registry& registry);

// A plugin emitter that failed; the export's other files were still written.
struct EmitterFailure {
  std::string emitter;
  std::string reason;
  int exit_code = 1;
};

struct ExportOutcome {
  ExportResult result;
  std::vector<std::string> written;  // files, in emitter order
  std::vector<std::string> warnings;
  std::vector<EmitterFailure> failed_emitters;
  int64_t bytes_written = 0;  // by every emitter, committed or not
  double write_seconds = 0;   // in write, fsync, close and rename (outputIoSeconds)
};

// Called once the strategy chain has run, before lowering, so the attempts can
// be shown even when a later stage fails.
using AttemptsFn = std::function<void(const std::vector<StrategyAttempt>& attempts)>;

// Throws mexport::Error and writes nothing when the export or a built-in
// emitter (onnx, metadata, report) fails. A plugin emitter's failure drops
// only that emitter's files and is listed in failed_emitters.
ExportOutcome runExport(const Config& config, const Registry& registry, ProgressListener& progress,
                        const AttemptsFn& on_attempts = {});

// Steps shared with commands that run exports their own way (benchmark).
SelectionRequest selectionRequest(const Config& config);
// Every node's info in the order the model runs them: each main-graph node,
// then the nodes of its sub-graphs, depth first (inspect::allNodes' order).
std::vector<OnnxNodeInfo> allNodeInfos(const std::vector<OnnxNodeInfo>& nodes,
                                       const std::vector<SubgraphNodeInfo>& subgraph_nodes);
Coverage countCoverage(const std::vector<OnnxNodeInfo>& nodes);  // of ONNX nodes, by provenance

}  // namespace mexport
