#include "selector.h"

#include <fmt/format.h>
#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <chrono>

#include "isolated_strategy.h"

namespace mexport {
namespace {

const Strategy* requireStrategy(const Registry& registry, const std::string& name) {
  if (const Strategy* s = registry.strategy(name)) return s;
  std::vector<std::string> names;
  for (const auto& s : registry.strategies()) names.push_back(s->name());
  throw UsageError(
      fmt::format("unknown strategy '{}'; loaded strategies: {} (see `mexport plugins`)", name,
                  names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "))));
}

int64_t countNodes(const torch::jit::Block* block, const NodeTags& tags, int64_t& tagged) {
  int64_t total = 0;
  for (const torch::jit::Node* node : block->nodes()) {
    ++total;
    auto it = tags.find(node);
    if (it != tags.end() && it->second.provenance != Provenance::kUntagged) ++tagged;
    for (const torch::jit::Block* sub : node->blocks()) total += countNodes(sub, tags, tagged);
  }
  return total;
}

}  // namespace

void fillUntaggedWithRoot(const PreparedModel& model, NodeTags& tags) {
  std::vector<const torch::jit::Block*> blocks = {model.graph->block()};
  while (!blocks.empty()) {
    const torch::jit::Block* block = blocks.back();
    blocks.pop_back();
    for (const torch::jit::Node* node : block->nodes()) {
      NodeTag& tag = tags[node];
      if (tag.provenance == Provenance::kUntagged || tag.module < 0)
        tag = {ModuleTree::kRoot, Provenance::kRoot};
      for (const torch::jit::Block* sub : node->blocks()) blocks.push_back(sub);
    }
  }
}

double tagCoverage(const PreparedModel& model, const NodeTags& tags) {
  int64_t tagged = 0;
  const int64_t total = countNodes(model.graph->block(), tags, tagged);
  return total == 0 ? 1.0 : double(tagged) / double(total);
}

std::vector<const Strategy*> rankStrategies(const Registry& registry, const PreparedModel& model,
                                            const SelectionRequest& request) {
  std::vector<const Strategy*> candidates;
  if (request.fallback.empty())
    for (const auto& s : registry.strategies()) candidates.push_back(s.get());
  else
    for (const auto& name : request.fallback) candidates.push_back(requireStrategy(registry, name));
  // For coverage, a strategy that declares it cannot handle the model's
  // control flow goes last, then higher expected coverage first. For speed,
  // the declared speed comes first and unfitness only breaks ties: an unfit
  // strategy refuses within milliseconds, with a reason recorded in the
  // attempts, so trying the fastest one first costs next to nothing.
  auto key = [&](const Strategy* s) {
    const StrategyTraits t = s->traits();
    const bool unfit = model.has_control_flow && !t.handles_control_flow;
    return request.priority == "speed"
               ? std::make_tuple(double(t.speed_rank), double(unfit), -t.expected_coverage)
               : std::make_tuple(double(unfit), -t.expected_coverage, double(t.speed_rank));
  };
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](const Strategy* a, const Strategy* b) { return key(a) < key(b); });
  return candidates;
}

Selection selectStrategy(const Registry& registry, const PreparedModel& model,
                         const SelectionRequest& request) {
  const std::vector<const Strategy*> chain =
      request.strategy == "auto"
          ? rankStrategies(registry, model, request)
          : std::vector<const Strategy*>{requireStrategy(registry, request.strategy)};
  if (chain.empty())
    throw ExportError("no strategy is loaded; check the plugin directories with `mexport plugins`");
  Selection selection;
  for (const Strategy* strategy : chain) {
    StrategyAttempt attempt{strategy->name(), "failed", "", 0.0};
    const auto start = std::chrono::steady_clock::now();
    try {
      NodeTags tags = request.isolate
                          ? tagInChildProcess(*strategy, model, request.strategy_timeout)
                          : strategy->tag(model);
      const double coverage = tagCoverage(model, tags);
      if (coverage + 1e-12 < request.min_coverage) {
        attempt.reason = fmt::format("coverage {:.1f}% is below min_coverage {:.1f}%",
                                     100 * coverage, 100 * request.min_coverage);
      } else {
        attempt.outcome = "ok";
        selection.strategy = strategy;
        selection.tags = std::move(tags);
        if (request.root_fallback) fillUntaggedWithRoot(model, selection.tags);
      }
    } catch (const std::exception& e) {
      attempt.reason = e.what();
    }
    attempt.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    selection.attempts.push_back(attempt);
    if (selection.strategy != nullptr) return selection;
  }
  std::vector<std::string> reasons;
  for (const auto& a : selection.attempts) reasons.push_back(a.name + ": " + a.reason);
  throw ExportError(fmt::format("no strategy could tag the model ({})", fmt::join(reasons, "; ")));
}

}  // namespace mexport
