// Fused attention kernels that PyTorch's fast path records in eval mode:
// _native_multi_head_attention (nn.MultiheadAttention with batch_first and
// self-attention) and _transformer_encoder_layer_fwd (nn.TransformerEncoderLayer).
// ONNX opset 17 has no attention op, so both are written out as the math the
// CPU kernels do (aten/src/ATen/native/transformers): projections, scaled dot
// product, masked softmax, output projection.
#include <cmath>
#include <limits>
#include <string>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// x @ weight^T + bias for x of any rank (nn.Linear's math).
std::string linear(LoweringContext& ctx, const std::string& x, const std::string& weight,
                   const std::string& bias) {
  std::string weight_t = ctx.op1("Transpose", {weight}, {attr::ints("perm", {1, 0})});
  return ctx.op1("Add", {ctx.op1("MatMul", {x, weight_t}), bias});
}

// The arguments the two kernels share.
struct AttentionArgs {
  std::string query;  // [B, T, E]
  int64_t embed_dim = 0;
  int64_t heads = 0;
  const Value* qkv_weight = nullptr;  // [3E, E]
  const Value* qkv_bias = nullptr;    // [3E]
  const Value* proj_weight = nullptr;
  const Value* proj_bias = nullptr;
  const Value* mask = nullptr;  // None, or bool: true masks out
  const Value* mask_type = nullptr;
};

// The attention probabilities' mask term: a bool mask broadcastable to
// [B, heads, T, T]. mask_type 1 is a key padding mask [B, T]; 0 (or none) an
// attention mask [T, T] (or already 4-D).
std::string maskedScores(LoweringContext& ctx, const Node& node, const AttentionArgs& args,
                         const std::string& scores) {
  if (args.mask == nullptr || ctx.isNone(args.mask)) return scores;
  if (ctx.scalarType(args.mask) != c10::kBool) ctx.fail("only bool attention masks are supported");
  std::string mask = ctx.in(args.mask);
  const bool key_padding =
      args.mask_type != nullptr && !ctx.isNone(args.mask_type) && ctx.constInt(args.mask_type) == 1;
  if (key_padding) mask = ctx.op1("Unsqueeze", {mask, ctx.makeInts({1, 2})});
  std::string minus_inf =
      ctx.constScalar(-std::numeric_limits<double>::infinity(), resultType(ctx, node));
  return ctx.op1("Where", {mask, minus_inf, scores});
}

// Self-attention as _native_multi_head_attention computes it; returns the
// projected output [B, T, E] and, when `weights` is set, the attention
// probabilities averaged over heads (or per head) in *weights.
std::string selfAttention(LoweringContext& ctx, const Node& node, const AttentionArgs& args,
                          std::string* weights = nullptr, bool average_weights = true) {
  if (args.heads <= 0 || args.embed_dim % args.heads != 0)
    ctx.fail("embed_dim must be a multiple of num_heads");
  const int64_t head_dim = args.embed_dim / args.heads;
  const c10::ScalarType type = resultType(ctx, node);
  std::vector<std::string> w = ctx.op("Split", {ctx.in(args.qkv_weight)}, 3, {attr::i("axis", 0)});
  std::vector<std::string> b = ctx.op("Split", {ctx.in(args.qkv_bias)}, 3, {attr::i("axis", 0)});
  // [B, T, E] -> [B, heads, T, head_dim]
  const std::string split_heads = ctx.makeInts({0, 0, args.heads, head_dim});
  auto project = [&](int i) {
    std::string p = ctx.op1("Reshape", {linear(ctx, args.query, w[i], b[i]), split_heads});
    return ctx.op1("Transpose", {p}, {attr::ints("perm", {0, 2, 1, 3})});
  };
  // The kernel scales q before the product.
  std::string q =
      ctx.op1("Div", {project(0), ctx.constScalar(std::sqrt(static_cast<double>(head_dim)), type)});
  std::string k_t = ctx.op1("Transpose", {project(1)}, {attr::ints("perm", {0, 1, 3, 2})});
  std::string v = project(2);
  std::string scores = maskedScores(ctx, node, args, ctx.op1("MatMul", {q, k_t}));
  std::string probabilities = ctx.op1("Softmax", {scores}, {attr::i("axis", -1)});
  std::string context = ctx.op1("MatMul", {probabilities, v});
  context = ctx.op1("Transpose", {context}, {attr::ints("perm", {0, 2, 1, 3})});
  context = ctx.op1("Reshape", {context, ctx.makeInts({0, 0, args.embed_dim})});
  if (weights != nullptr) {
    *weights = average_weights ? ctx.op1("ReduceMean", {probabilities},
                                         {attr::ints("axes", {1}), attr::i("keepdims", 0)})
                               : probabilities;
  }
  return linear(ctx, context, ctx.in(args.proj_weight), ctx.in(args.proj_bias));
}

// _native_multi_head_attention(query, key, value, embed_dim, num_head,
// qkv_weight, qkv_bias, proj_weight, proj_bias, mask, need_weights,
// average_attn_weights, mask_type) -> (output, weights). PyTorch takes this
// path for self-attention only.
void convertNativeMultiHeadAttention(LoweringContext& ctx, const Node& node) {
  if (node.input(0) != node.input(1) || node.input(1) != node.input(2))
    ctx.fail("only self-attention (query is key is value) is supported");
  AttentionArgs args;
  args.query = ctx.in(node.input(0));
  args.embed_dim = ctx.constInt(node.input(3));
  args.heads = ctx.constInt(node.input(4));
  args.qkv_weight = node.input(5);
  args.qkv_bias = node.input(6);
  args.proj_weight = node.input(7);
  args.proj_bias = node.input(8);
  args.mask = node.input(9);
  args.mask_type = node.inputs().size() > 12 ? node.input(12) : nullptr;
  const bool want_weights = node.output(1)->hasUses();
  const bool average = isAbsent(ctx, node, 11) || ctx.constBool(node.input(11));
  std::string weights;
  ctx.bind(node.output(0),
           selfAttention(ctx, node, args, want_weights ? &weights : nullptr, average));
  if (want_weights) ctx.bind(node.output(1), weights);
}

// _transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight,
// qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1,
// norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1,
// ffn_weight_2, ffn_bias_2, mask, mask_type): one post- or pre-norm encoder
// layer.
void convertTransformerEncoderLayer(LoweringContext& ctx, const Node& node) {
  const bool use_gelu = ctx.constBool(node.input(7));
  const bool norm_first = ctx.constBool(node.input(8));
  const float eps = static_cast<float>(ctx.constDouble(node.input(9)));
  auto norm = [&](const std::string& x, size_t weight_index) {
    return ctx.op1("LayerNormalization",
                   {x, ctx.in(node.input(weight_index)), ctx.in(node.input(weight_index + 1))},
                   {attr::i("axis", -1), attr::f("epsilon", eps)});
  };
  const std::string src = ctx.in(node.input(0));
  AttentionArgs args;
  args.query = norm_first ? norm(src, 10) : src;
  args.embed_dim = ctx.constInt(node.input(1));
  args.heads = ctx.constInt(node.input(2));
  args.qkv_weight = node.input(3);
  args.qkv_bias = node.input(4);
  args.proj_weight = node.input(5);
  args.proj_bias = node.input(6);
  args.mask = node.inputs().size() > 18 ? node.input(18) : nullptr;
  args.mask_type = node.inputs().size() > 19 ? node.input(19) : nullptr;
  std::string x = ctx.op1("Add", {selfAttention(ctx, node, args), src});
  if (!norm_first) x = norm(x, 10);
  const std::string residual = x;
  if (norm_first) x = norm(x, 12);
  x = linear(ctx, x, ctx.in(node.input(14)), ctx.in(node.input(15)));
  if (use_gelu) {
    x = erfGelu(ctx, x, resultType(ctx, node));
  } else {
    x = ctx.op1("Relu", {x});
  }
  x = linear(ctx, x, ctx.in(node.input(16)), ctx.in(node.input(17)));
  x = ctx.op1("Add", {x, residual});
  if (!norm_first) x = norm(x, 12);
  ctx.bind(node.output(0), x);
}

}  // namespace

void populateAttentionOps(ConverterRegistry& registry) {
  const std::string family = "attention";

  onOps(registry, {"aten::_native_multi_head_attention"}, 13, family,
        convertNativeMultiHeadAttention);
  // LayerNormalization is opset 17.
  onOps(registry, {"aten::_transformer_encoder_layer_fwd"}, 17, family,
        convertTransformerEncoderLayer);
}

}  // namespace mexport
