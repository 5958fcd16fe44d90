// Recurrent layers: lstm, gru, rnn_tanh, rnn_relu (nn.LSTM, nn.GRU, nn.RNN),
// multi-layer, bidirectional, batch_first or not; and their cells (nn.LSTMCell,
// nn.GRUCell, nn.RNNCell).
//
// Each torch layer becomes one ONNX LSTM / GRU / RNN node (both directions in
// one node). PyTorch stacks the gates of a weight in another order than ONNX,
// so the weights are reordered with Split + Concat on the initializers (ONNX
// Runtime folds them at load time); the parameters keep their names.
#include <string>
#include <vector>

#include "ops.h"
#include "ops_util.h"

namespace mexport {
namespace {

using namespace ops;

struct CellKind {
  std::string onnx_op;          // "LSTM", "GRU", "RNN"
  std::vector<int> gate_order;  // ONNX gate i is PyTorch gate gate_order[i]
  Attributes extra_attributes;  // e.g. GRU's linear_before_reset
  bool has_cell_state = false;  // LSTM: hx is [h0, c0] and there is a c_n
  std::string activation;       // RNN: "Tanh" or "Relu", one per direction
};

// PyTorch's LSTM gates are (i, f, g, o), ONNX's (i, o, f, c).
CellKind lstmKind() { return {"LSTM", {0, 3, 1, 2}, {}, true, ""}; }
// PyTorch's GRU gates are (r, z, n), ONNX's (z, r, h); PyTorch applies the
// reset gate after the hidden projection, which is linear_before_reset=1.
CellKind gruKind() { return {"GRU", {1, 0, 2}, {attr::i("linear_before_reset", 1)}, false, ""}; }
CellKind rnnKind(const std::string& activation) { return {"RNN", {0}, {}, false, activation}; }

// The activations attribute: ONNX wants one entry per direction.
onnx::AttributeProto activations(const std::string& activation, int64_t directions) {
  onnx::AttributeProto attribute;
  attribute.set_name("activations");
  attribute.set_type(onnx::AttributeProto::STRINGS);
  for (int64_t d = 0; d < directions; ++d) attribute.add_strings(activation);
  return attribute;
}

// A weight or bias of PyTorch's gate layout, its gates reordered for ONNX
// along axis 0.
std::string reorderGates(LoweringContext& ctx, const CellKind& kind, const Value* value) {
  std::string tensor = ctx.in(value);
  if (kind.gate_order.size() == 1) return tensor;
  const int gates = static_cast<int>(kind.gate_order.size());
  int64_t rows = ctx.sizes(value).at(0);
  std::vector<int64_t> lengths(gates, rows / gates);
  std::vector<std::string> pieces =
      ctx.op("Split", {tensor, ctx.makeInts(lengths)}, gates, {attr::i("axis", 0)});
  std::vector<std::string> ordered;
  for (int gate : kind.gate_order) ordered.push_back(pieces[gate]);
  return ctx.op1("Concat", ordered, {attr::i("axis", 0)});
}

// Concatenates per-direction tensors along a new leading axis, as ONNX wants
// W [dirs, gates * hidden, input], R and B.
std::string stackDirections(LoweringContext& ctx, const std::vector<std::string>& tensors) {
  std::vector<std::string> unsqueezed;
  for (const std::string& t : tensors)
    unsqueezed.push_back(ctx.op1("Unsqueeze", {t, ctx.makeInts({0})}));
  if (unsqueezed.size() == 1) return unsqueezed.front();
  return ctx.op1("Concat", unsqueezed, {attr::i("axis", 0)});
}

// A direction's B: the input and hidden biases, gates reordered, end to end.
std::string packedBias(LoweringContext& ctx, const CellKind& kind, const Value* b_ih,
                       const Value* b_hh) {
  return ctx.op1("Concat", {reorderGates(ctx, kind, b_ih), reorderGates(ctx, kind, b_hh)},
                 {attr::i("axis", 0)});
}

// One ONNX LSTM / GRU / RNN node on X, W, R, B (or none), the initial states
// and `dirs` directions; returns Y, Y_h (and Y_c).
std::vector<std::string> recurrentNode(LoweringContext& ctx, const CellKind& kind,
                                       std::vector<std::string> inputs, int64_t hidden,
                                       int64_t dirs) {
  inputs.insert(inputs.begin() + 4, LoweringContext::none());  // sequence_lens
  Attributes attributes = kind.extra_attributes;
  attributes.push_back(attr::i("hidden_size", hidden));
  attributes.push_back(attr::s("direction", dirs == 2 ? "bidirectional" : "forward"));
  if (!kind.activation.empty()) attributes.push_back(activations(kind.activation, dirs));
  return ctx.op(kind.onnx_op, inputs, kind.has_cell_state ? 3 : 2, attributes);
}

// lstm(input, hx[], params[], has_biases, num_layers, dropout, train,
// bidirectional, batch_first), gru(input, hx, params, ...), rnn_tanh and
// rnn_relu(input, hx, params, ...). params hold, per layer and direction,
// w_ih, w_hh[, b_ih, b_hh].
ConverterFn recurrent(CellKind kind) {
  return [kind](LoweringContext& ctx, const Node& node) {
    const c10::FunctionSchema* schema = node.maybeSchema();
    if (schema == nullptr || schema->overload_name() == "data")
      ctx.fail("packed sequences (pack_padded_sequence) are not supported");
    const bool has_biases = ctx.constBool(node.input(3));
    const int64_t layers = ctx.constInt(node.input(4));
    if (ctx.constBool(node.input(6))) ctx.fail("training mode is not supported: call eval()");
    const bool bidirectional = ctx.constBool(node.input(7));
    const bool batch_first = ctx.constBool(node.input(8));
    const int64_t dirs = bidirectional ? 2 : 1;
    std::vector<const Value*> params = ctx.listElements(node.input(2));
    const size_t per_direction = has_biases ? 4 : 2;
    if (params.size() != per_direction * layers * dirs)
      ctx.fail("projections (proj_size) are not supported");
    std::vector<const Value*> states;  // h0 (and c0) of all layers, [layers * dirs, batch, H]
    if (kind.has_cell_state)
      states = ctx.listElements(node.input(1));
    else
      states = {node.input(1)};
    const int64_t hidden = ctx.sizes(params[1]).at(1);

    std::string x = ctx.in(node.input(0));
    if (batch_first) x = ctx.op1("Transpose", {x}, {attr::ints("perm", {1, 0, 2})});
    std::vector<std::string> last_h, last_c;
    for (int64_t layer = 0; layer < layers; ++layer) {
      std::vector<std::string> w, r, b;
      for (int64_t dir = 0; dir < dirs; ++dir) {
        const size_t first = (layer * dirs + dir) * per_direction;
        w.push_back(reorderGates(ctx, kind, params[first]));
        r.push_back(reorderGates(ctx, kind, params[first + 1]));
        if (has_biases) b.push_back(packedBias(ctx, kind, params[first + 2], params[first + 3]));
      }
      // The initial states of this layer: rows [layer * dirs, (layer + 1) * dirs).
      auto layerState = [&](const Value* state) {
        return ctx.op1("Slice", {ctx.in(state), ctx.makeInts({layer * dirs}),
                                 ctx.makeInts({(layer + 1) * dirs}), ctx.makeInts({0})});
      };
      std::vector<std::string> inputs = {x, stackDirections(ctx, w), stackDirections(ctx, r),
                                         has_biases ? stackDirections(ctx, b) : ctx.none(),
                                         layerState(states[0])};
      if (kind.has_cell_state) inputs.push_back(layerState(states[1]));
      std::vector<std::string> outputs = recurrentNode(ctx, kind, inputs, hidden, dirs);
      // Y is [seq, dirs, batch, H]; the next layer wants [seq, batch, dirs * H].
      std::string y = ctx.op1("Transpose", {outputs[0]}, {attr::ints("perm", {0, 2, 1, 3})});
      x = ctx.op1("Reshape", {y, ctx.makeInts({0, 0, -1})});
      last_h.push_back(outputs[1]);
      if (kind.has_cell_state) last_c.push_back(outputs[2]);
    }
    if (batch_first) x = ctx.op1("Transpose", {x}, {attr::ints("perm", {1, 0, 2})});
    auto joined = [&](const std::vector<std::string>& per_layer) {
      return per_layer.size() == 1 ? per_layer.front()
                                   : ctx.op1("Concat", per_layer, {attr::i("axis", 0)});
    };
    ctx.bind(node.output(0), x);
    ctx.bind(node.output(1), joined(last_h));
    if (kind.has_cell_state) ctx.bind(node.output(2), joined(last_c));
  };
}

// lstm_cell(input, hx[h, c], w_ih, w_hh, b_ih, b_hh), gru_cell, rnn_tanh_cell
// and rnn_relu_cell(input, hx, ...): one step of nn.LSTMCell / GRUCell /
// RNNCell (a decoder's loop body), as the ONNX op over a sequence of one.
ConverterFn cell(CellKind kind) {
  return [kind](LoweringContext& ctx, const Node& node) {
    const auto unsqueezed = [&](const std::string& t) {
      return ctx.op1("Unsqueeze", {t, ctx.makeInts({0})});
    };
    const bool has_biases = !isAbsent(ctx, node, 4);
    std::vector<std::string> inputs = {
        unsqueezed(ctx.in(node.input(0))), unsqueezed(reorderGates(ctx, kind, node.input(2))),
        unsqueezed(reorderGates(ctx, kind, node.input(3))),
        has_biases ? unsqueezed(packedBias(ctx, kind, node.input(4), node.input(5))) : ctx.none()};
    const std::vector<const Value*> states = kind.has_cell_state
                                                 ? ctx.listElements(node.input(1))
                                                 : std::vector<const Value*>{node.input(1)};
    for (const Value* state : states) inputs.push_back(unsqueezed(ctx.in(state)));
    const std::vector<std::string> outputs =
        recurrentNode(ctx, kind, inputs, ctx.sizes(node.input(3)).at(1), 1);
    // Y_h (and Y_c) are [1, batch, H].
    for (size_t i = 0; i < node.outputs().size(); ++i)
      ctx.bind(node.output(i), ctx.op1("Squeeze", {outputs[i + 1], ctx.makeInts({0})}));
  };
}

}  // namespace

void populateRecurrentOps(ConverterRegistry& registry) {
  const std::string family = "recurrent";

  onOps(registry, {"aten::lstm"}, 14, family, recurrent(lstmKind()));
  onOps(registry, {"aten::gru"}, 14, family, recurrent(gruKind()));
  onOps(registry, {"aten::rnn_tanh"}, 14, family, recurrent(rnnKind("Tanh")));
  onOps(registry, {"aten::rnn_relu"}, 14, family, recurrent(rnnKind("Relu")));
  onOps(registry, {"aten::lstm_cell"}, 14, family, cell(lstmKind()));
  onOps(registry, {"aten::gru_cell"}, 14, family, cell(gruKind()));
  onOps(registry, {"aten::rnn_tanh_cell"}, 14, family, cell(rnnKind("Tanh")));
  onOps(registry, {"aten::rnn_relu_cell"}, 14, family, cell(rnnKind("Relu")));
}

}  // namespace mexport
