#include "selector.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/ir/irparser.h>

namespace mexport {
namespace {

class FakeStrategy final : public Strategy {
 public:
  FakeStrategy(std::string name, StrategyTraits traits, double tag_share, bool throws = false)
      : name_(std::move(name)),
        traits_(std::move(traits)),
        tag_share_(tag_share),
        throws_(throws) {}
  std::string name() const override { return name_; }
  StrategyTraits traits() const override { return traits_; }
  NodeTags tag(const PreparedModel& model) const override {
    if (throws_) throw StrategyError(name_ + " cannot handle prim::If in module 'block'");
    NodeTags tags;
    std::vector<const torch::jit::Node*> nodes(model.graph->nodes().begin(),
                                               model.graph->nodes().end());
    const size_t tagged = static_cast<size_t>(tag_share_ * nodes.size());
    for (size_t i = 0; i < tagged; ++i) tags[nodes[i]] = {ModuleTree::kRoot, Provenance::kDirect};
    return tags;
  }

 private:
  std::string name_;
  StrategyTraits traits_;
  double tag_share_;
  bool throws_;
};

PreparedModel fourNodeModel(bool control_flow) {
  PreparedModel model;
  model.graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(R"IR(
graph(%x : Tensor):
  %a : Tensor = aten::relu(%x)
  %b : Tensor = aten::neg(%a)
  %c : Tensor = aten::relu(%b)
  %d : Tensor = aten::neg(%c)
  return (%d))IR",
                      model.graph.get());
  model.has_control_flow = control_flow;
  return model;
}

Registry makeRegistry() {
  Registry registry;
  registry.addStrategy(
      std::make_shared<FakeStrategy>("slow-full", StrategyTraits{true, 3, 1.0, ""}, 1.0));
  registry.addStrategy(
      std::make_shared<FakeStrategy>("fast-no-flow", StrategyTraits{false, 1, 1.0, ""}, 1.0, true));
  registry.addStrategy(
      std::make_shared<FakeStrategy>("fastest-half", StrategyTraits{true, 0, 0.5, ""}, 0.5));
  return registry;
}

std::vector<std::string> names(const std::vector<const Strategy*>& strategies) {
  std::vector<std::string> out;
  for (const auto* s : strategies) out.push_back(s->name());
  return out;
}

TEST(Selector, RanksByPriorityAndPutsUnfitStrategiesLast) {
  const Registry registry = makeRegistry();
  EXPECT_EQ(names(rankStrategies(registry, fourNodeModel(false), {"auto", {}, "speed", 0})),
            (std::vector<std::string>{"fastest-half", "fast-no-flow", "slow-full"}));
  EXPECT_EQ(names(rankStrategies(registry, fourNodeModel(true), {"auto", {}, "coverage", 0})),
            (std::vector<std::string>{"slow-full", "fastest-half", "fast-no-flow"}));
}

TEST(Selector, FallsThroughOnErrorsAndLowCoverageRecordingEveryAttempt) {
  const Registry registry = makeRegistry();
  const Selection s =
      selectStrategy(registry, fourNodeModel(false),
                     {"auto", {"fast-no-flow", "fastest-half", "slow-full"}, "speed", 0.9});
  ASSERT_NE(s.strategy, nullptr);
  EXPECT_EQ(s.strategy->name(), "slow-full");
  ASSERT_EQ(s.attempts.size(), 3u);
  EXPECT_EQ(s.attempts[0].name, "fastest-half");
  EXPECT_NE(s.attempts[0].reason.find("coverage 50.0% is below min_coverage 90.0%"),
            std::string::npos);
  EXPECT_NE(s.attempts[1].reason.find("cannot handle prim::If"), std::string::npos);
  EXPECT_EQ(s.attempts[2].outcome, "ok");
}

TEST(Selector, AnExplicitStrategyHasNoFallback) {
  const Registry registry = makeRegistry();
  try {
    selectStrategy(registry, fourNodeModel(false), {"fast-no-flow", {"slow-full"}, "coverage", 0});
    FAIL() << "expected an ExportError";
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("fast-no-flow: fast-no-flow cannot handle prim::If"),
              std::string::npos);
  }
  EXPECT_THROW(selectStrategy(registry, fourNodeModel(false), {"nope", {}, "coverage", 0}),
               UsageError);
}

TEST(Selector, SpeedTriesTheFastestFirstEvenWhenItCannotHandleTheControlFlow) {
  // It refuses at once with its reason; coverage puts it last instead.
  const Registry registry = makeRegistry();
  const SelectionRequest speed{"auto", {"slow-full", "fast-no-flow"}, "speed", 0};
  EXPECT_EQ(names(rankStrategies(registry, fourNodeModel(true), speed)),
            (std::vector<std::string>{"fast-no-flow", "slow-full"}));
  const Selection s = selectStrategy(registry, fourNodeModel(true), speed);
  ASSERT_EQ(s.attempts.size(), 2u);
  EXPECT_EQ(s.attempts[0].outcome, "failed");
  EXPECT_EQ(s.strategy->name(), "slow-full");
}

TEST(Selector, RootFallbackPutsWhatTheStrategyLeftOnTheRootAfterTheCoverageCheck) {
  const Registry registry = makeRegistry();
  const PreparedModel model = fourNodeModel(false);
  SelectionRequest request{"fastest-half", {}, "coverage", 0};
  request.root_fallback = true;
  const Selection s = selectStrategy(registry, model, request);
  int direct = 0, root = 0;
  for (const torch::jit::Node* node : model.graph->nodes()) {
    const NodeTag tag = s.tags.at(node);
    direct += tag.provenance == Provenance::kDirect;
    root += tag.provenance == Provenance::kRoot && tag.module == ModuleTree::kRoot;
  }
  EXPECT_EQ(direct, 2);
  EXPECT_EQ(root, 2);
  // min_coverage judges the strategy's own tags, not the fallback.
  request.min_coverage = 0.9;
  EXPECT_THROW(selectStrategy(registry, model, request), ExportError);
}

}  // namespace
}  // namespace mexport
