#include <gtest/gtest.h>

#include "lowering/ops.h"
#include "mexport/lowering.h"

namespace mexport {
namespace {

TEST(ConverterRegistry, PicksTheNewestConverterTheOpsetAllows) {
  ConverterRegistry registry;
  registry.onOp("aten::foo", 9, "test", [](LoweringContext&, const torch::jit::Node&) {});
  registry.onOp("aten::foo", 13, "test", [](LoweringContext&, const torch::jit::Node&) {});
  EXPECT_EQ(registry.find("aten::foo", 8), nullptr);
  EXPECT_EQ(registry.find("aten::foo", 12)->since_opset, 9);
  EXPECT_EQ(registry.find("aten::foo", 17)->since_opset, 13);
  EXPECT_EQ(registry.find("aten::bar", 17), nullptr);
}

TEST(ConverterRegistry, DuplicatesAreRejectedAndMergeIsAllOrNothing) {
  ConverterRegistry a, b;
  a.onOp("aten::foo", 13, "test", [](LoweringContext&, const torch::jit::Node&) {});
  EXPECT_THROW(a.onOp("aten::foo", 13, "test", [](LoweringContext&, const torch::jit::Node&) {}),
               std::invalid_argument);
  b.onOp("aten::bar", 13, "test", [](LoweringContext&, const torch::jit::Node&) {});
  b.onOp("aten::foo", 13, "test", [](LoweringContext&, const torch::jit::Node&) {});
  EXPECT_THROW(a.merge(std::move(b)), std::invalid_argument);
  EXPECT_EQ(a.find("aten::bar", 17), nullptr);
}

TEST(ConverterRegistry, BuiltinsCoverTheFixtureModelsOps) {
  ConverterRegistry registry;
  populateBuiltinOps(registry);
  for (const char* op :
       {"aten::linear", "aten::layer_norm", "aten::embedding", "aten::gelu", "aten::softmax",
        "aten::view", "aten::_convolution", "aten::batch_norm", "aten::adaptive_avg_pool2d"})
    EXPECT_NE(registry.find(op, 17), nullptr) << op;
}

TEST(ConverterRegistry, BuiltinsCoverTheZooFamilies) {
  ConverterRegistry registry;
  populateBuiltinOps(registry);
  for (const char* op :
       {"aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu",
        "aten::_native_multi_head_attention", "aten::_transformer_encoder_layer_fwd", "prim::If",
        "prim::Loop", "aten::index", "aten::roll", "aten::norm", "aten::fill_", "aten::zero_"})
    EXPECT_NE(registry.find(op, 17), nullptr) << op;
  // The fused attention kernels need LayerNormalization (opset 17).
  EXPECT_EQ(registry.find("aten::_transformer_encoder_layer_fwd", 16), nullptr);
}

}  // namespace
}  // namespace mexport
