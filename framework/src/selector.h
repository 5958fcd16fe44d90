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
Selection selectStrategy(const Registry& registry, const PreparedModel& model, const SelectionRequest& request);

// Share of graph nodes (sub-blocks included) a strategy tagged.
double tagCoverage(const PreparedModel& model, const NodeTags& tags);

}  // namespace mexport
