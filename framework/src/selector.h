// Chooses and runs strategies: an explicit one alone, or for `auto` the
// candidates ranked by what they declare against the model and the priority,
// each tried until one succeeds with enough coverage.
#pragma once

#include <string>
#include <vector>

#include "mexport/export_result.h"
#include "mexport/registry.h"

namespace mexport {

struct SelectionRequest {
  std::string strategy = "auto";
  std::vector<std::string> fallback;  // candidates for auto; empty means every registered strategy
  std::string priority = "coverage";  // or "speed"
  double min_coverage = 0.0;
  bool root_fallback = false;  // after selection, untagged nodes go to the root (provenance root)
  bool isolate = false;        // each strategy runs in a child process (`isolation: process`)
  double strategy_timeout = 120;  // seconds an isolated strategy may run before it is killed
};

struct Selection {
  const Strategy* strategy = nullptr;
  NodeTags tags;
  std::vector<StrategyAttempt> attempts;
};

// The order in which `auto` tries strategies.
std::vector<const Strategy*> rankStrategies(const Registry& registry, const PreparedModel& model,
                                            const SelectionRequest& request);

// Throws UsageError for an unknown strategy name, ExportError (listing every
// attempt) when none succeeds.
Selection selectStrategy(const Registry& registry, const PreparedModel& model,
                         const SelectionRequest& request);

// Tags every node the strategy left untagged with the root, provenance root
// (`export.root_fallback`).
void fillUntaggedWithRoot(const PreparedModel& model, NodeTags& tags);

// Share of graph nodes (sub-blocks included) a strategy tagged.
double tagCoverage(const PreparedModel& model, const NodeTags& tags);

}  // namespace mexport
