#include "meta_kernels.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/ConvUtils.h>
#include <torch/library.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace mexport {
namespace {

// Kernels of ops whose result has the shape and dtype of their input (relu).
at::Tensor metaLike(const at::Tensor& self) { return at::empty(self.sizes(), self.options()); }

// What embedding decomposes into.
at::Tensor indexSelect(const at::Tensor& self, int64_t dim, const at::Tensor& index) {
  std::vector<int64_t> sizes = self.sizes().vec();
  if (!sizes.empty()) sizes.at(c10::maybe_wrap_dim(dim, self.dim())) = index.numel();
  return at::empty(sizes, self.options());
}

// A convolution parameter per spatial dimension: a single value stands for
// all of them, as in the CPU kernel.
std::vector<int64_t> perDimension(at::IntArrayRef values, size_t spatial) {
  return values.size() == 1 ? std::vector<int64_t>(spatial, values[0]) : values.vec();
}

// The convolution a trace records (F.conv2d and friends, batched input).
at::Tensor convolution(const at::Tensor& input, const at::Tensor& weight,
                       const c10::optional<at::Tensor>&, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                       at::IntArrayRef output_padding, int64_t groups, bool, bool, bool, bool) {
  TORCH_CHECK(input.dim() == weight.dim() && input.dim() >= 3,
              "meta _convolution: expected a batched input");
  const size_t spatial = static_cast<size_t>(input.dim() - 2);
  const auto strides = perDimension(stride, spatial);
  const auto paddings = perDimension(padding, spatial);
  const auto dilations = perDimension(dilation, spatial);
  const std::vector<int64_t> sizes =
      transposed ? at::native::conv_input_size(input.sizes(), weight.sizes(), paddings,
                                               perDimension(output_padding, spatial), strides,
                                               dilations, groups)
                 : at::native::conv_output_size(input.sizes(), weight.sizes(), paddings, strides,
                                                dilations);
  return at::empty(sizes, input.options());
}

// Batch norm in eval mode, and what layer_norm decomposes into for a tensor
// that is not on the CPU: the statistics have an entry per channel when
// training, none otherwise, as on the CPU.
std::tuple<at::Tensor, at::Tensor, at::Tensor> batchNorm(const at::Tensor& input,
                                                         const c10::optional<at::Tensor>&,
                                                         const c10::optional<at::Tensor>&,
                                                         const c10::optional<at::Tensor>&,
                                                         const c10::optional<at::Tensor>&,
                                                         bool training, double, double) {
  const int64_t stats = training ? input.size(1) : 0;
  return {metaLike(input), at::empty({stats}, input.options()),
          at::empty({stats}, input.options())};
}

at::Tensor roll(const at::Tensor& self, at::IntArrayRef, at::IntArrayRef) { return metaLike(self); }

// torch.where(condition, a, b): broadcast, and promoted as a + b would be.
at::Tensor where(const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other) {
  const auto sizes = at::infer_size(at::infer_size(condition.sizes(), self.sizes()), other.sizes());
  return at::empty(sizes, self.options().dtype(at::result_type(self, other)));
}

// Registers `kernel` for aten::<op>.<overload> unless the op has a Meta kernel
// already (registering a second one would replace it, with a warning).
template <typename Kernel>
void implIfMissing(torch::Library& library, const std::string& op, const std::string& overload,
                   Kernel kernel) {
  const auto handle = c10::Dispatcher::singleton().findSchema({"aten::" + op, overload});
  if (handle && !handle->hasKernelForDispatchKey(c10::DispatchKey::Meta))
    library.impl((overload.empty() ? op : op + "." + overload).c_str(), std::move(kernel));
}

}  // namespace

void registerMissingMetaKernels() {
  static const auto library = [] {
    auto lib = std::make_unique<torch::Library>(torch::Library::IMPL, "aten",
                                                c10::DispatchKey::Meta, __FILE__, __LINE__);
    implIfMissing(*lib, "index_select", "", TORCH_FN(indexSelect));
    implIfMissing(*lib, "_convolution", "", TORCH_FN(convolution));
    implIfMissing(*lib, "relu", "", TORCH_FN(metaLike));
    implIfMissing(*lib, "native_batch_norm", "", TORCH_FN(batchNorm));
    implIfMissing(*lib, "roll", "", TORCH_FN(roll));
    implIfMissing(*lib, "where", "self", TORCH_FN(where));
    return lib;
  }();
}

}  // namespace mexport
