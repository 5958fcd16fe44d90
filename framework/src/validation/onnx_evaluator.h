// A reference ONNX evaluator on libtorch tensor ops, so mexport can check an
// export numerically without another runtime. It implements every op the
// lowering emits; any other op is a clear error naming it.
#pragma once

#include <ATen/core/Tensor.h>
#include <onnx/onnx_pb.h>

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "progress.h"

namespace mexport {

at::Tensor tensorFromProto(const onnx::TensorProto& proto);

class OnnxEvaluator {
 public:
  explicit OnnxEvaluator(const onnx::ModelProto& model);

  // What run() returns.
  enum class Keep {
    kEverything,  // every tensor computed, intermediates included
    kOutputs,     // the graph outputs; each intermediate is freed after its last reader
  };

  // Runs the main graph on inputs named like the graph inputs; returns the
  // tensors `keep` says, by ONNX name. Initializers are read in place, never
  // copied. Reports the main graph's nodes as they run when `progress` is given.
  std::unordered_map<std::string, at::Tensor> run(const std::map<std::string, at::Tensor>& inputs,
                                                  ProgressListener* progress = nullptr,
                                                  Keep keep = Keep::kEverything) const;

  // The ONNX op types the evaluator implements.
  static std::vector<std::string> supportedOps();

 private:
  const onnx::ModelProto& model_;
};

}  // namespace mexport
