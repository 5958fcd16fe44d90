// Fake quantization in quantization-aware-trained models (torch.ao.quantization
// FakeQuantize and friends) becomes a QuantizeLinear / DequantizeLinear pair,
// as torch.onnx writes it: the pair is how ONNX says "quantize here", and
// runtimes that quantize fold it into integer kernels.
#include <string>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

// ONNX quantizes to uint8 or int8, so the ranges are those: (0, 255) and
// (-128, 127), and (0, 127), which PyTorch uses for activations with
// reduce_range and which is uint8 clipped at 127.
struct QuantRange {
  c10::ScalarType zero_point_type;
  bool clip_at_127;
};

QuantRange quantRange(const LoweringContext& ctx, int64_t quant_min, int64_t quant_max) {
  if (quant_min == 0 && quant_max == 255) return {c10::kByte, false};
  if (quant_min == 0 && quant_max == 127) return {c10::kByte, true};
  if (quant_min == -128 && quant_max == 127) return {c10::kChar, false};
  ctx.fail("quantization range (" + std::to_string(quant_min) + ", " + std::to_string(quant_max) +
           ") has no ONNX form: QuantizeLinear takes (0, 255), (0, 127) or (-128, 127); set "
           "quant_min / quant_max of the qconfig's observers to one of these");
}

// QuantizeLinear then DequantizeLinear of input 0 with `scale` and
// `zero_point` (ONNX tensors), per channel along `axis` when given.
void quantizeDequantize(LoweringContext& ctx, const Node& node, const std::string& scale,
                        const std::string& zero_point, const QuantRange& range,
                        std::optional<int64_t> axis) {
  Attributes attributes;
  if (axis) attributes.push_back(attr::i("axis", *axis));
  std::string quantized =
      ctx.op1("QuantizeLinear", {ctx.in(node.input(0)), scale, zero_point}, attributes);
  if (range.clip_at_127)
    quantized =
        ctx.op1("Clip", {quantized, LoweringContext::none(), ctx.constScalar(127, c10::kByte)});
  ctx.bind(node.output(0), ctx.op1("DequantizeLinear", {quantized, scale, zero_point}, attributes));
}

// fake_quantize_per_tensor_affine(self, scale, zero_point, quant_min,
// quant_max), with scale and zero point as numbers or as tensors.
void convertFakeQuantizePerTensor(LoweringContext& ctx, const Node& node) {
  const QuantRange range =
      quantRange(ctx, ctx.constInt(node.input(3)), ctx.constInt(node.input(4)));
  quantizeDequantize(ctx, node, ctx.inAs(node.input(1), c10::kFloat),
                     ctx.inAs(node.input(2), range.zero_point_type), range, std::nullopt);
}

// fake_quantize_per_channel_affine(self, scale, zero_point, axis, quant_min,
// quant_max): one scale and zero point per slice along `axis`.
void convertFakeQuantizePerChannel(LoweringContext& ctx, const Node& node) {
  const QuantRange range =
      quantRange(ctx, ctx.constInt(node.input(4)), ctx.constInt(node.input(5)));
  quantizeDequantize(ctx, node, ctx.inAs(node.input(1), c10::kFloat),
                     ctx.inAs(node.input(2), range.zero_point_type), range,
                     ctx.constInt(node.input(3)));
}

// fused_moving_avg_obs_fake_quant(self, observer_on, fake_quant_on,
// running_min, running_max, scale, zero_point, averaging_const, quant_min,
// quant_max, ch_axis, per_row_fake_quant, symmetric_quant): the observer and
// fake quantization of torch.ao's default QAT config in one op. An exported
// model quantizes with the scale and zero point it has learned, as after
// torch.ao.quantization.disable_observer; a model traced with its observer on
// updates them from each batch first, which numeric validation reports.
void convertFusedFakeQuantize(LoweringContext& ctx, const Node& node) {
  const QuantRange range =
      quantRange(ctx, ctx.constInt(node.input(8)), ctx.constInt(node.input(9)));
  std::optional<int64_t> axis;
  if (ctx.constBool(node.input(11))) axis = ctx.constInt(node.input(10));
  quantizeDequantize(ctx, node, ctx.inAs(node.input(5), c10::kFloat),
                     ctx.inAs(node.input(6), range.zero_point_type), range, axis);
}

}  // namespace

void populateQuantizationOps(ConverterRegistry& registry) {
  const std::string family = "quantization";

  onOps(registry, {"aten::fake_quantize_per_tensor_affine"}, 13, family,
        convertFakeQuantizePerTensor);
  onOps(registry, {"aten::fake_quantize_per_channel_affine"}, 13, family,
        convertFakeQuantizePerChannel);
  onOps(registry, {"aten::fused_moving_avg_obs_fake_quant"}, 13, family, convertFusedFakeQuantize);
}

}  // namespace mexport
