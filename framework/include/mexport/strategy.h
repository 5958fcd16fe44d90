// The strategy plugin interface.
#pragma once

#include <string>

#include "mexport/errors.h"
#include "mexport/tagging.h"

namespace mexport {

// What a strategy declares about itself; `auto` ranks strategies with it.
struct StrategyTraits {
  bool handles_control_flow = false;
  int speed_rank = 2;              // 1 is the fastest
  double expected_coverage = 1.0;  // share of nodes it expects to tag, 0..1
  std::string description;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;
  virtual StrategyTraits traits() const = 0;
  // Tags every node of model.graph (nodes in sub-blocks included). Throws
  // StrategyError with a reason when it cannot handle the model.
  virtual NodeTags tag(const PreparedModel& model) const = 0;
};

}  // namespace mexport
