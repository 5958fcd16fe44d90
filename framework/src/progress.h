// How an export tells a progress display what it is doing.
#pragma once

#include <cstdint>
#include <string>

namespace mexport {

// An export goes through the stages "load", "tag", "lower", "check",
// "validate" and "write". A stage that can count its work (nodes lowered or
// evaluated, bytes written) reports how far it is with advance(), which may be
// called once per node: implementations keep it cheap.
class ProgressListener {
 public:
  enum class Unit { kNodes, kBytes };

  virtual ~ProgressListener() = default;
  // `description` says what the stage does ("lowering to ONNX opset 17").
  virtual void stage(const std::string& name, const std::string& description) = 0;
  // `total` is 0 when it is not known in advance.
  virtual void advance(int64_t done, int64_t total, Unit unit) = 0;
};

}  // namespace mexport
