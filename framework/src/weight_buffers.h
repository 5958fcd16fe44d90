// Loading a model's weights straight into buffers the ONNX model can own.
//
// torch::jit::load reads each tensor record of the TorchScript zip into memory
// from the CPU allocator; the ONNX TensorProto keeps its bytes in a
// std::string. While a WeightBufferScope is alive, large CPU allocations are
// std::strings, so the lowering can move a parameter's bytes into its
// initializer (takeWeightBytes) instead of copying them: one copy of the
// weights in memory instead of two, and no time spent copying.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

namespace c10 {
struct Allocator;
}

namespace mexport {

// Makes the CPU allocator hand out string-backed buffers of `kWeightBufferMinBytes`
// or more until destroyed, then puts the previous allocator back. Buffers
// outlive the scope; only allocations made inside it are affected. Not for
// concurrent use: libtorch has one CPU allocator per process.
class WeightBufferScope {
 public:
  WeightBufferScope();
  ~WeightBufferScope();
  WeightBufferScope(const WeightBufferScope&) = delete;
  WeightBufferScope& operator=(const WeightBufferScope&) = delete;

 private:
  c10::Allocator* previous_;
};

// Smaller allocations (pickles, code, small tensors) go to the previous allocator.
constexpr size_t kWeightBufferMinBytes = size_t{64} << 10;

// The bytes of `tensor` when it is the whole of a string-backed buffer, moved
// out of it; otherwise nothing. Afterwards the tensor still reads the same
// memory, now owned by the returned string (and whatever it is moved into):
// the tensor must not be used once that owner is gone.
std::optional<std::string> takeWeightBytes(const at::Tensor& tensor);

}  // namespace mexport
