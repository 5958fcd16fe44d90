#include "weight_buffers.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <cstring>
#include <filesystem>
#include <string>

namespace mexport {
namespace {

namespace fs = std::filesystem;

std::string bytesOf(const at::Tensor& t) {
  return std::string(static_cast<const char*>(t.data_ptr()), t.nbytes());
}

// A TorchScript file with one parameter above the buffer threshold and one below.
fs::path savedModule(const at::Tensor& large, const at::Tensor& small) {
  torch::jit::Module module("Weights");
  module.register_parameter("large", large, false);
  module.register_parameter("small", small, false);
  const fs::path path = fs::path(testing::TempDir()) / "weight_buffers_test.pt";
  module.save(path.string());
  return path;
}

TEST(WeightBuffers, LoadedWeightsMoveOutWithTheirBytes) {
  const at::Tensor large = at::randn({256, 128});  // 128 KiB
  const at::Tensor small = at::randn({4});
  ASSERT_GE(large.nbytes(), kWeightBufferMinBytes);
  const fs::path path = savedModule(large, small);

  torch::jit::Module loaded;
  {
    const WeightBufferScope scope;
    loaded = torch::jit::load(path.string());
  }
  const at::Tensor loaded_large = loaded.attr("large").toTensor();
  const at::Tensor loaded_small = loaded.attr("small").toTensor();

  std::optional<std::string> bytes = takeWeightBytes(loaded_large);
  ASSERT_TRUE(bytes.has_value()) << "torch::jit::load did not read through the CPU allocator";
  EXPECT_EQ(*bytes, bytesOf(large));
  // The tensor reads the moved bytes where they now live.
  EXPECT_EQ(loaded_large.data_ptr(), static_cast<void*>(bytes->data()));
  EXPECT_TRUE(at::equal(loaded_large, large));
  // Taken once: tied weights on the same buffer copy.
  EXPECT_FALSE(takeWeightBytes(loaded_large).has_value());
  EXPECT_FALSE(takeWeightBytes(loaded_small).has_value());
}

TEST(WeightBuffers, OnlyWholeBuffersMadeInsideTheScopeMove) {
  const at::Allocator* before = c10::GetCPUAllocator();
  at::Tensor inside;
  {
    const WeightBufferScope scope;
    inside = at::zeros({64, 1024});  // 256 KiB
  }
  EXPECT_EQ(c10::GetCPUAllocator(), before);
  EXPECT_FALSE(takeWeightBytes(at::zeros({64, 1024})).has_value());
  EXPECT_FALSE(takeWeightBytes(inside.narrow(0, 1, 8)).has_value());  // offset
  EXPECT_FALSE(takeWeightBytes(inside.t()).has_value());              // not contiguous
  EXPECT_FALSE(takeWeightBytes(inside.narrow(0, 0, 8)).has_value());  // part of the buffer
  EXPECT_TRUE(takeWeightBytes(inside).has_value());
}

// Kernels take scratch space through raw_allocate / raw_deallocate, which
// require each allocation's context to be its data and a raw deleter: a
// storage made inside the scope keeps this allocator for good.
TEST(WeightBuffers, RawAllocationsWorkInsideTheScope) {
  const WeightBufferScope scope;
  c10::Allocator* allocator = c10::GetCPUAllocator();
  for (const size_t size : {size_t{16}, kWeightBufferMinBytes, kWeightBufferMinBytes * 4}) {
    void* data = allocator->raw_allocate(size);
    ASSERT_NE(data, nullptr);
    std::memset(data, 7, size);
    allocator->raw_deallocate(data);
  }
  at::Tensor large = at::ones({64, 1024});
  EXPECT_EQ(large.storage().data_ptr().get_context(), large.data_ptr());
  large.resize_({128, 1024});  // regrows through the storage's allocator
  EXPECT_EQ(large.size(0), 128);
}

}  // namespace
}  // namespace mexport
