#include "meta_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace mexport {
namespace {

// Runs `op` on CPU tensors of the given sizes and on meta tensors of the same
// sizes, and expects the same result sizes and dtype: what the shapes run
// relies on.
void expectMetaMatchesCpu(const std::vector<at::Tensor>& cpu_inputs,
                          const std::function<at::Tensor(const std::vector<at::Tensor>&)>& op) {
  registerMissingMetaKernels();
  std::vector<at::Tensor> meta_inputs;
  for (const at::Tensor& t : cpu_inputs) meta_inputs.push_back(t.to(at::kMeta));
  const at::Tensor expected = op(cpu_inputs);
  const at::Tensor actual = op(meta_inputs);
  EXPECT_TRUE(actual.is_meta());
  EXPECT_EQ(actual.sizes(), expected.sizes());
  EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
}

TEST(MetaKernels, EmbeddingAndIndexSelect) {
  const at::Tensor weight = at::randn({10, 4});
  expectMetaMatchesCpu({weight, at::randint(10, {2, 3}, at::kLong)},
                       [](const auto& in) { return at::embedding(in[0], in[1]); });
  expectMetaMatchesCpu({weight, at::randint(4, {3}, at::kLong)},
                       [](const auto& in) { return at::index_select(in[0], -1, in[1]); });
}

TEST(MetaKernels, Convolutions) {
  const at::Tensor input = at::randn({2, 4, 9, 7});
  // Stride, padding, dilation and groups.
  expectMetaMatchesCpu({input, at::randn({6, 2, 3, 2}), at::randn({6})}, [](const auto& in) {
    return at::conv2d(in[0], in[1], in[2], {2, 1}, {1, 0}, {1, 2}, 2);
  });
  // One value for every spatial dimension.
  expectMetaMatchesCpu({input, at::randn({6, 4, 3, 3})},
                       [](const auto& in) { return at::conv2d(in[0], in[1], {}, {2}, {1}); });
  // Transposed, with output padding.
  expectMetaMatchesCpu({input, at::randn({4, 3, 3, 3})}, [](const auto& in) {
    return at::conv_transpose2d(in[0], in[1], {}, {2, 2}, {1, 1}, {1, 0});
  });
  expectMetaMatchesCpu({at::randn({1, 3, 11}), at::randn({5, 3, 4})},
                       [](const auto& in) { return at::conv1d(in[0], in[1], {}, {3}); });
}

TEST(MetaKernels, NormalizationActivationAndLayout) {
  const at::Tensor x = at::randn({2, 3, 5});
  expectMetaMatchesCpu(
      {x, at::randn({3}), at::randn({3}), at::randn({3}), at::rand({3})}, [](const auto& in) {
        return at::batch_norm(in[0], in[1], in[2], in[3], in[4], false, 0.1, 1e-5, false);
      });
  expectMetaMatchesCpu({x, at::randn({5}), at::randn({5})},
                       [](const auto& in) { return at::layer_norm(in[0], {5}, in[1], in[2]); });
  expectMetaMatchesCpu({x}, [](const auto& in) { return at::relu(in[0]); });
  expectMetaMatchesCpu({x}, [](const auto& in) { return at::roll(in[0], {1, -2}, {0, 2}); });
}

TEST(MetaKernels, WhereBroadcastsAndPromotes) {
  expectMetaMatchesCpu({at::rand({3, 1}) > 0.5, at::randn({1, 4}), at::randn({3, 4}, at::kDouble)},
                       [](const auto& in) { return at::where(in[0], in[1], in[2]); });
  expectMetaMatchesCpu(
      {at::rand({2, 3}) > 0.5, at::randint(5, {2, 3}, at::kLong), at::randn({}, at::kFloat)},
      [](const auto& in) { return at::where(in[0], in[1], in[2]); });
}

}  // namespace
}  // namespace mexport
