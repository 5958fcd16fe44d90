#include "validation/onnx_evaluator.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <functional>
#include <numeric>

#include "mexport/errors.h"

namespace mexport {
namespace {

using Tensors = std::vector<at::Tensor>;

// Attribute readers with ONNX defaults.
class Attrs {
 public:
  explicit Attrs(const onnx::NodeProto& node) : node_(node) {}

  const onnx::AttributeProto* find(const std::string& name) const {
    for (const auto& a : node_.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t i(const std::string& name, int64_t fallback) const {
    const auto* a = find(name);
    return a ? a->i() : fallback;
  }
  float f(const std::string& name, float fallback) const {
    const auto* a = find(name);
    return a ? a->f() : fallback;
  }
  std::string s(const std::string& name, const std::string& fallback) const {
    const auto* a = find(name);
    return a ? a->s() : fallback;
  }
  std::vector<int64_t> ints(const std::string& name, std::vector<int64_t> fallback = {}) const {
    const auto* a = find(name);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
  }

 private:
  const onnx::NodeProto& node_;
};

c10::ScalarType torchType(int32_t onnx_type) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT:
      return at::kFloat;
    case onnx::TensorProto::DOUBLE:
      return at::kDouble;
    case onnx::TensorProto::FLOAT16:
      return at::kHalf;
    case onnx::TensorProto::BFLOAT16:
      return at::kBFloat16;
    case onnx::TensorProto::INT64:
      return at::kLong;
    case onnx::TensorProto::INT32:
      return at::kInt;
    case onnx::TensorProto::INT16:
      return at::kShort;
    case onnx::TensorProto::INT8:
      return at::kChar;
    case onnx::TensorProto::UINT8:
      return at::kByte;
    case onnx::TensorProto::BOOL:
      return at::kBool;
    default:
      throw ExportError(
          fmt::format("ONNX tensor type {} is not supported by the evaluator", onnx_type));
  }
}

int64_t axisOf(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

std::vector<int64_t> toInts(const at::Tensor& t) {
  const at::Tensor longs = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(longs.data_ptr<int64_t>(), longs.data_ptr<int64_t>() + longs.numel());
}

bool present(const Tensors& in, size_t i) { return i < in.size() && in[i].defined(); }

// A quantization scale or zero point shaped to broadcast against `x`: one
// value for the tensor, or a 1-D one along `axis`.
at::Tensor alongAxis(const at::Tensor& v, const at::Tensor& x, int64_t axis) {
  if (v.dim() == 0) return v;
  std::vector<int64_t> shape(x.dim(), 1);
  shape.at(axis) = v.numel();
  return v.numel() == 1 ? v.reshape({}) : v.reshape(shape);
}

// Pads as ONNX lists them ([x1_begin, x2_begin, ..., x1_end, ...]) for the
// trailing spatial dims, in at::pad's order (last dim first).
std::vector<int64_t> torchPads(const std::vector<int64_t>& pads) {
  const size_t dims = pads.size() / 2;
  std::vector<int64_t> out;
  for (size_t d = dims; d-- > 0;) {
    out.push_back(pads[d]);
    out.push_back(pads[d + dims]);
  }
  return out;
}

// Symmetric padding goes to the op; asymmetric is applied first with `fill`.
std::vector<int64_t> splitPads(at::Tensor& x, const Attrs& a, size_t spatial, double fill) {
  std::vector<int64_t> pads = a.ints("pads", std::vector<int64_t>(2 * spatial, 0));
  if (a.s("auto_pad", "NOTSET") != "NOTSET" && a.s("auto_pad", "NOTSET") != "VALID")
    throw ExportError(
        "auto_pad SAME_* is not supported by the evaluator; export with explicit pads");
  bool symmetric = true;
  for (size_t d = 0; d < spatial; ++d) symmetric = symmetric && pads[d] == pads[d + spatial];
  if (symmetric) return std::vector<int64_t>(pads.begin(), pads.begin() + spatial);
  x = at::constant_pad_nd(x, torchPads(pads), fill);
  return std::vector<int64_t>(spatial, 0);
}

using Op = std::function<Tensors(const onnx::NodeProto&, const Tensors&)>;

Op unary(at::Tensor (*fn)(const at::Tensor&)) {
  return [fn](const onnx::NodeProto&, const Tensors& in) { return Tensors{fn(in[0])}; };
}

Op binary(std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> fn) {
  return [fn](const onnx::NodeProto&, const Tensors& in) { return Tensors{fn(in[0], in[1])}; };
}

Tensors reduce(const onnx::NodeProto& node, const Tensors& in, bool axes_input,
               const std::function<at::Tensor(const at::Tensor&, std::vector<int64_t>, bool)>& fn) {
  const Attrs a(node);
  std::vector<int64_t> axes =
      axes_input ? (present(in, 1) ? toInts(in[1]) : std::vector<int64_t>{}) : a.ints("axes");
  const bool keep = a.i("keepdims", 1) != 0;
  if (axes.empty()) {
    if (axes_input && a.i("noop_with_empty_axes", 0) != 0) return {in[0]};
    axes.resize(in[0].dim());
    std::iota(axes.begin(), axes.end(), 0);
  }
  for (auto& axis : axes) axis = axisOf(axis, in[0].dim());
  return {fn(in[0], axes, keep)};
}

Tensors conv(const onnx::NodeProto& node, const Tensors& in, bool transposed) {
  const Attrs a(node);
  at::Tensor x = in[0];
  const size_t spatial = in[1].dim() - 2;
  const std::vector<int64_t> ones(spatial, 1);
  const std::vector<int64_t> padding = splitPads(x, a, spatial, 0.0);
  const at::Tensor bias = present(in, 2) ? in[2] : at::Tensor();
  return {at::convolution(
      x, in[1], bias, a.ints("strides", ones), padding, a.ints("dilations", ones), transposed,
      a.ints("output_padding", std::vector<int64_t>(spatial, 0)), a.i("group", 1))};
}

Tensors pool(const onnx::NodeProto& node, const Tensors& in, bool max) {
  const Attrs a(node);
  at::Tensor x = in[0];
  const std::vector<int64_t> kernel = a.ints("kernel_shape");
  const size_t spatial = kernel.size();
  const std::vector<int64_t> strides = a.ints("strides", std::vector<int64_t>(spatial, 1));
  const bool ceil = a.i("ceil_mode", 0) != 0;
  const std::vector<int64_t> padding =
      splitPads(x, a, spatial, max ? -std::numeric_limits<double>::infinity() : 0.0);
  if (max) {
    const std::vector<int64_t> dilations = a.ints("dilations", std::vector<int64_t>(spatial, 1));
    if (spatial == 1) return {at::max_pool1d(x, kernel, strides, padding, dilations, ceil)};
    if (spatial == 2) return {at::max_pool2d(x, kernel, strides, padding, dilations, ceil)};
    return {at::max_pool3d(x, kernel, strides, padding, dilations, ceil)};
  }
  const bool include_pad = a.i("count_include_pad", 0) != 0;
  if (spatial == 1) return {at::avg_pool1d(x, kernel, strides, padding, ceil, include_pad)};
  if (spatial == 2) return {at::avg_pool2d(x, kernel, strides, padding, ceil, include_pad)};
  return {at::avg_pool3d(x, kernel, strides, padding, ceil, include_pad)};
}

Tensors slice(const Tensors& in) {
  at::Tensor x = in[0];
  const std::vector<int64_t> starts = toInts(in[1]), ends = toInts(in[2]);
  std::vector<int64_t> axes(starts.size());
  std::iota(axes.begin(), axes.end(), 0);
  if (present(in, 3)) axes = toInts(in[3]);
  const std::vector<int64_t> steps =
      present(in, 4) ? toInts(in[4]) : std::vector<int64_t>(starts.size(), 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t axis = axisOf(axes[i], x.dim()), dim = x.size(axis), step = steps[i];
    auto clampIndex = [&](int64_t v, int64_t low, int64_t high) {
      if (v < 0) v += dim;
      return std::min(std::max(v, low), high);
    };
    if (step > 0) {
      const int64_t start = clampIndex(starts[i], 0, dim), end = clampIndex(ends[i], 0, dim);
      x = x.slice(axis, start, std::max(start, end), step);
    } else {
      const int64_t start = clampIndex(starts[i], -1, dim - 1),
                    end = clampIndex(ends[i], -1, dim - 1);
      x = x.index_select(axis, at::arange(start, end, step, at::kLong));
    }
  }
  return {x};
}

Tensors gather(const onnx::NodeProto& node, const Tensors& in) {
  const int64_t axis = axisOf(Attrs(node).i("axis", 0), in[0].dim());
  at::Tensor indices = in[1].to(at::kLong);
  indices = at::where(indices < 0, indices + in[0].size(axis), indices);
  std::vector<int64_t> shape(in[0].sizes().begin(), in[0].sizes().begin() + axis);
  for (int64_t d : indices.sizes()) shape.push_back(d);
  for (int64_t d = axis + 1; d < in[0].dim(); ++d) shape.push_back(in[0].size(d));
  return {in[0].index_select(axis, indices.flatten()).reshape(shape)};
}

Tensors reshape(const Tensors& in) {
  std::vector<int64_t> shape = toInts(in[1]);
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] == 0) shape[d] = in[0].size(static_cast<int64_t>(d));
  return {in[0].reshape(shape)};
}

Tensors constant(const onnx::NodeProto& node) {
  const Attrs a(node);
  if (const auto* value = a.find("value")) return {tensorFromProto(value->t())};
  if (const auto* value = a.find("value_float")) return {at::scalar_tensor(value->f(), at::kFloat)};
  if (const auto* value = a.find("value_int")) return {at::scalar_tensor(value->i(), at::kLong)};
  if (const auto* value = a.find("value_ints"))
    return {
        at::tensor(std::vector<int64_t>(value->ints().begin(), value->ints().end()), at::kLong)};
  throw ExportError(
      fmt::format("Constant node '{}' has no value the evaluator reads", node.name()));
}

// GatherND and ScatterND address `data` the same way: the last axis of
// `indices` indexes its leading k axes. Their index tuples as offsets into
// `data` seen as [-1, trailing dims...], the view returned beside them.
std::pair<at::Tensor, at::Tensor> tupleOffsets(const at::Tensor& data, const at::Tensor& tuples) {
  at::Tensor indices = tuples.to(at::kLong);
  const int64_t k = indices.size(-1);
  at::Tensor linear = at::zeros(indices.sizes().slice(0, indices.dim() - 1), at::kLong);
  for (int64_t d = 0; d < k; ++d) {
    at::Tensor index = indices.select(-1, d);
    index = at::where(index < 0, index + data.size(d), index);
    linear = linear * data.size(d) + index;
  }
  std::vector<int64_t> flat_shape = {-1};
  for (int64_t d = k; d < data.dim(); ++d) flat_shape.push_back(data.size(d));
  return {linear.flatten(), data.reshape(flat_shape)};
}

// GatherND with batch_dims 0.
Tensors gatherNd(const onnx::NodeProto& node, const Tensors& in) {
  if (Attrs(node).i("batch_dims", 0) != 0)
    throw ExportError("GatherND with batch_dims is not supported by the evaluator");
  const auto [offsets, flat] = tupleOffsets(in[0], in[1]);
  std::vector<int64_t> out_shape(in[1].sizes().begin(), in[1].sizes().end() - 1);
  for (int64_t d = in[1].size(-1); d < in[0].dim(); ++d) out_shape.push_back(in[0].size(d));
  return {flat.index_select(0, offsets).reshape(out_shape)};
}

// ScatterND without reduction: a copy of `data` with the updates written at
// the index tuples.
Tensors scatterNd(const onnx::NodeProto& node, const Tensors& in) {
  if (Attrs(node).s("reduction", "none") != "none")
    throw ExportError("ScatterND with a reduction is not supported by the evaluator");
  const auto [offsets, flat] = tupleOffsets(in[0], in[1]);
  std::vector<int64_t> update_shape(flat.sizes().begin(), flat.sizes().end());
  update_shape[0] = offsets.numel();
  at::Tensor out = flat.clone();
  out.index_copy_(0, offsets, in[2].reshape(update_shape));
  return {out.reshape(in[0].sizes())};
}

at::Tensor activation(const std::string& name, const at::Tensor& x) {
  if (name == "Sigmoid") return at::sigmoid(x);
  if (name == "Tanh") return at::tanh(x);
  if (name == "Relu") return at::relu(x);
  throw ExportError("recurrent activation " + name + " is not supported by the evaluator");
}

// ONNX LSTM (gates i, o, f, c), GRU (z, r, h) and RNN, layout 0:
// X [seq, batch, input], W [dirs, gates*H, input], R [dirs, gates*H, H],
// B [dirs, 2*gates*H]; outputs Y [seq, dirs, batch, H], Y_h and (LSTM) Y_c.
Tensors recurrent(const onnx::NodeProto& node, const Tensors& in, const std::string& kind) {
  const Attrs a(node);
  if (a.i("layout", 0) != 0 || present(in, 4) || present(in, 7))
    throw ExportError(
        kind + " with layout 1, sequence_lens or peepholes is not supported by the evaluator");
  const at::Tensor& x = in[0];
  const int64_t seq = x.size(0), batch = x.size(1), dirs = in[1].size(0);
  const int64_t gates = kind == "LSTM" ? 4 : kind == "GRU" ? 3 : 1;
  const int64_t hidden = in[2].size(2);
  std::vector<std::string> acts;
  if (const auto* list = a.find("activations"))
    acts.assign(list->strings().begin(), list->strings().end());
  const std::string direction = a.s("direction", "forward");
  Tensors ys, hs, cs;
  for (int64_t dir = 0; dir < dirs; ++dir) {
    const bool reverse = direction == "reverse" || (direction == "bidirectional" && dir == 1);
    const at::Tensor w = in[1][dir], r = in[2][dir];
    const at::Tensor b = present(in, 3) ? in[3][dir] : at::zeros({2 * gates * hidden}, x.options());
    const at::Tensor wb = b.slice(0, 0, gates * hidden), rb = b.slice(0, gates * hidden);
    at::Tensor h = present(in, 5) ? in[5][dir] : at::zeros({batch, hidden}, x.options());
    at::Tensor c = present(in, 6) ? in[6][dir] : at::zeros({batch, hidden}, x.options());
    auto act = [&](size_t i, const char* fallback) {
      const size_t per_dir = acts.size() / static_cast<size_t>(dirs);
      return acts.empty() ? std::string(fallback) : acts.at(dir * per_dir + i);
    };
    Tensors steps(seq);
    for (int64_t step = 0; step < seq; ++step) {
      const int64_t t = reverse ? seq - 1 - step : step;
      const at::Tensor xw = at::matmul(x[t], w.t()) + wb;
      const at::Tensor hr = at::matmul(h, r.t()) + rb;
      if (kind == "LSTM") {
        const auto xg = xw.chunk(4, 1), hg = hr.chunk(4, 1);
        const at::Tensor i = activation(act(0, "Sigmoid"), xg[0] + hg[0]);
        const at::Tensor o = activation(act(0, "Sigmoid"), xg[1] + hg[1]);
        const at::Tensor f = activation(act(0, "Sigmoid"), xg[2] + hg[2]);
        const at::Tensor candidate = activation(act(1, "Tanh"), xg[3] + hg[3]);
        c = f * c + i * candidate;
        h = o * activation(act(2, "Tanh"), c);
      } else if (kind == "GRU") {
        const auto xg = xw.chunk(3, 1), hg = hr.chunk(3, 1);
        const at::Tensor z = activation(act(0, "Sigmoid"), xg[0] + hg[0]);
        const at::Tensor reset = activation(act(0, "Sigmoid"), xg[1] + hg[1]);
        const at::Tensor candidate =
            a.i("linear_before_reset", 0)
                ? activation(act(1, "Tanh"), xg[2] + reset * hg[2])
                : activation(act(1, "Tanh"), xg[2] +
                                                 at::matmul(reset * h, r.slice(0, 2 * hidden).t()) +
                                                 rb.slice(0, 2 * hidden));
        h = (1 - z) * candidate + z * h;
      } else {
        h = activation(act(0, "Tanh"), xw + hr);
      }
      steps[t] = h;
    }
    ys.push_back(at::stack(steps, 0));
    hs.push_back(h);
    cs.push_back(c);
  }
  Tensors out = {at::stack(ys, 1), at::stack(hs, 0)};
  if (kind == "LSTM") out.push_back(at::stack(cs, 0));
  return out;
}

const std::map<std::string, Op>& ops() {
  static const std::map<std::string, Op> table = [] {
    std::map<std::string, Op> t;
    // Elementwise.
    t["Add"] = binary([](auto& a, auto& b) { return a + b; });
    t["Sub"] = binary([](auto& a, auto& b) { return a - b; });
    t["Mul"] = binary([](auto& a, auto& b) { return a * b; });
    t["Div"] = binary([](auto& a, auto& b) {
      return at::isIntegralType(a.scalar_type(), true) ? at::div(a, b, "trunc") : a / b;
    });
    t["Pow"] = binary([](auto& a, auto& b) { return at::pow(a, b).to(a.scalar_type()); });
    t["Mod"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{Attrs(n).i("fmod", 0) ? at::fmod(in[0], in[1]) : at::remainder(in[0], in[1])};
    };
    t["Max"] = [](const onnx::NodeProto&, const Tensors& in) {
      at::Tensor r = in[0];
      for (size_t i = 1; i < in.size(); ++i) r = at::maximum(r, in[i]);
      return Tensors{r};
    };
    t["Min"] = [](const onnx::NodeProto&, const Tensors& in) {
      at::Tensor r = in[0];
      for (size_t i = 1; i < in.size(); ++i) r = at::minimum(r, in[i]);
      return Tensors{r};
    };
    t["Equal"] = binary([](auto& a, auto& b) { return at::eq(a, b); });
    t["Less"] = binary([](auto& a, auto& b) { return at::lt(a, b); });
    t["LessOrEqual"] = binary([](auto& a, auto& b) { return at::le(a, b); });
    t["Greater"] = binary([](auto& a, auto& b) { return at::gt(a, b); });
    t["GreaterOrEqual"] = binary([](auto& a, auto& b) { return at::ge(a, b); });
    t["And"] = binary([](auto& a, auto& b) { return at::logical_and(a, b); });
    t["Or"] = binary([](auto& a, auto& b) { return at::logical_or(a, b); });
    t["Xor"] = binary([](auto& a, auto& b) { return at::logical_xor(a, b); });
    t["Where"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{at::where(in[0], in[1], in[2])};
    };
    t["Not"] = unary(at::logical_not);
    t["Abs"] = unary(at::abs);
    t["Neg"] = unary(at::neg);
    t["Exp"] = unary(at::exp);
    t["Log"] = unary(at::log);
    t["Sqrt"] = unary(at::sqrt);
    t["Reciprocal"] = unary(at::reciprocal);
    t["Floor"] = unary(at::floor);
    t["Ceil"] = unary(at::ceil);
    t["Round"] = unary(at::round);
    t["Sign"] = unary(at::sign);
    t["Sin"] = unary(at::sin);
    t["Cos"] = unary(at::cos);
    t["Erf"] = unary(at::erf);
    t["Tanh"] = unary(at::tanh);
    t["Sigmoid"] = unary(at::sigmoid);
    t["Relu"] = unary(at::relu);
    t["Softplus"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{at::softplus(in[0])};
    };
    t["Identity"] = [](const onnx::NodeProto&, const Tensors& in) { return Tensors{in[0]}; };
    // Activations with attributes.
    t["LeakyRelu"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::leaky_relu(in[0], Attrs(n).f("alpha", 0.01f))};
    };
    t["Elu"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::elu(in[0], Attrs(n).f("alpha", 1.0f))};
    };
    t["Celu"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::celu(in[0], Attrs(n).f("alpha", 1.0f))};
    };
    t["Selu"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      const float alpha = a.f("alpha", 1.67326319217681884765625f),
                  gamma = a.f("gamma", 1.05070102214813232421875f);
      return Tensors{gamma * at::where(in[0] > 0, in[0], alpha * (at::exp(in[0]) - 1))};
    };
    t["HardSigmoid"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      return Tensors{at::clamp(a.f("alpha", 0.2f) * in[0] + a.f("beta", 0.5f), 0, 1)};
    };
    t["HardSwish"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{in[0] * at::clamp(in[0] / 6 + 0.5, 0, 1)};
    };
    t["PRelu"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{at::where(in[0] < 0, in[0] * in[1], in[0])};
    };
    t["Clip"] = [](const onnx::NodeProto&, const Tensors& in) {
      at::Tensor r = in[0];
      if (present(in, 1)) r = at::maximum(r, in[1]);
      if (present(in, 2)) r = at::minimum(r, in[2]);
      return Tensors{r};
    };
    t["Softmax"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::softmax(in[0], Attrs(n).i("axis", -1))};
    };
    t["LogSoftmax"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::log_softmax(in[0], Attrs(n).i("axis", -1))};
    };
    // Linear algebra.
    t["MatMul"] = binary([](auto& a, auto& b) { return at::matmul(a, b); });
    t["Gemm"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      const at::Tensor x = a.i("transA", 0) ? in[0].t() : in[0];
      const at::Tensor w = a.i("transB", 0) ? in[1].t() : in[1];
      at::Tensor r = a.f("alpha", 1.0f) * at::matmul(x, w);
      if (present(in, 2)) r = r + a.f("beta", 1.0f) * in[2];
      return Tensors{r};
    };
    t["Einsum"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::einsum(Attrs(n).s("equation", ""), in)};
    };
    // Shapes and indexing.
    t["Constant"] = [](const onnx::NodeProto& n, const Tensors&) { return constant(n); };
    t["Cast"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{in[0].to(torchType(static_cast<int32_t>(Attrs(n).i("to", 1))))};
    };
    t["Shape"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      const int64_t rank = in[0].dim();
      const int64_t start = std::clamp(axisOf(a.i("start", 0), rank), int64_t{0}, rank);
      const int64_t end = std::clamp(axisOf(a.i("end", rank), rank), start, rank);
      return Tensors{at::tensor(in[0].sizes().slice(start, end - start).vec(), at::kLong)};
    };
    t["Reshape"] = [](const onnx::NodeProto&, const Tensors& in) { return reshape(in); };
    t["Flatten"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const int64_t axis = axisOf(Attrs(n).i("axis", 1), in[0].dim());
      int64_t outer = 1;
      for (int64_t d = 0; d < axis; ++d) outer *= in[0].size(d);
      return Tensors{in[0].reshape({outer, -1})};
    };
    t["Transpose"] = [](const onnx::NodeProto& n, const Tensors& in) {
      std::vector<int64_t> reversed(in[0].dim());
      std::iota(reversed.rbegin(), reversed.rend(), 0);
      return Tensors{in[0].permute(Attrs(n).ints("perm", reversed))};
    };
    t["Unsqueeze"] = [](const onnx::NodeProto&, const Tensors& in) {
      std::vector<int64_t> axes = toInts(in[1]);
      const int64_t rank = in[0].dim() + static_cast<int64_t>(axes.size());
      for (auto& axis : axes) axis = axisOf(axis, rank);
      std::sort(axes.begin(), axes.end());
      at::Tensor r = in[0];
      for (int64_t axis : axes) r = r.unsqueeze(axis);
      return Tensors{r};
    };
    t["Squeeze"] = [](const onnx::NodeProto&, const Tensors& in) {
      if (!present(in, 1)) return Tensors{in[0].squeeze()};
      std::vector<int64_t> axes = toInts(in[1]);
      for (auto& axis : axes) axis = axisOf(axis, in[0].dim());
      std::sort(axes.rbegin(), axes.rend());
      at::Tensor r = in[0];
      for (int64_t axis : axes) r = r.squeeze(axis);
      return Tensors{r};
    };
    t["Concat"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::cat(in, Attrs(n).i("axis", 0))};
    };
    t["Split"] = [](const onnx::NodeProto& n, const Tensors& in) -> Tensors {
      const int64_t axis = axisOf(Attrs(n).i("axis", 0), in[0].dim());
      if (present(in, 1)) return at::split_with_sizes(in[0], toInts(in[1]), axis);
      const int64_t parts = n.output_size();
      return at::split(in[0], (in[0].size(axis) + parts - 1) / parts, axis);
    };
    t["Slice"] = [](const onnx::NodeProto&, const Tensors& in) { return slice(in); };
    t["Gather"] = gather;
    t["GatherND"] = gatherNd;
    t["ScatterND"] = scatterNd;
    t["NonZero"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{at::nonzero(in[0]).t().contiguous()};
    };
    t["GatherElements"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const int64_t axis = axisOf(Attrs(n).i("axis", 0), in[0].dim());
      at::Tensor indices = in[1].to(at::kLong);
      indices = at::where(indices < 0, indices + in[0].size(axis), indices);
      return Tensors{at::gather(in[0], axis, indices)};
    };
    t["Expand"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{in[0].expand(at::infer_size(in[0].sizes(), toInts(in[1]))).contiguous()};
    };
    t["Tile"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{in[0].repeat(toInts(in[1]))};
    };
    t["Range"] = [](const onnx::NodeProto&, const Tensors& in) {
      return Tensors{at::arange(in[0].item(), in[1].item(), in[2].item(), in[0].options())};
    };
    t["Trilu"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const int64_t k = present(in, 1) ? in[1].item<int64_t>() : 0;
      return Tensors{Attrs(n).i("upper", 1) ? at::triu(in[0], k) : at::tril(in[0], k)};
    };
    t["Pad"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const std::string mode = Attrs(n).s("mode", "constant");
      const std::vector<int64_t> pads = torchPads(toInts(in[1]));
      if (mode == "constant")
        return Tensors{
            at::constant_pad_nd(in[0], pads, present(in, 2) ? in[2].item<double>() : 0.0)};
      // at::pad pads trailing dims only: drop the untouched leading pairs.
      std::vector<int64_t> trailing = pads;
      while (trailing.size() > 2 && trailing[trailing.size() - 1] == 0 &&
             trailing[trailing.size() - 2] == 0)
        trailing.resize(trailing.size() - 2);
      return Tensors{at::pad(in[0], trailing, mode == "edge" ? "replicate" : mode)};
    };
    t["CumSum"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      const int64_t axis = axisOf(in[1].item<int64_t>(), in[0].dim());
      at::Tensor x = a.i("reverse", 0) ? in[0].flip(axis) : in[0];
      at::Tensor r = at::cumsum(x, axis);
      if (a.i("exclusive", 0)) r = r - x;
      return Tensors{a.i("reverse", 0) ? r.flip(axis) : r};
    };
    // Quantization: per tensor, or per slice along `axis` with 1-D scales.
    t["QuantizeLinear"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const int64_t axis = axisOf(Attrs(n).i("axis", 1), in[0].dim());
      const at::Tensor zero_point = present(in, 2) ? in[2] : at::zeros({}, at::kByte);
      const bool is_signed = zero_point.scalar_type() == at::kChar;
      const at::Tensor q = at::round(in[0] / alongAxis(in[1], in[0], axis)) +
                           alongAxis(zero_point, in[0], axis).to(in[0].scalar_type());
      return Tensors{
          at::clamp(q, is_signed ? -128 : 0, is_signed ? 127 : 255).to(zero_point.scalar_type())};
    };
    t["DequantizeLinear"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const int64_t axis = axisOf(Attrs(n).i("axis", 1), in[0].dim());
      const at::Tensor scale = alongAxis(in[1], in[0], axis);
      const at::Tensor zero_point = present(in, 2)
                                        ? alongAxis(in[2], in[0], axis).to(scale.scalar_type())
                                        : at::zeros({}, scale.options());
      return Tensors{(in[0].to(scale.scalar_type()) - zero_point) * scale};
    };
    // Reductions.
    t["ReduceSum"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, true, [](auto& x, auto axes, bool keep) {
        return at::sum(x, axes, keep, x.scalar_type());
      });
    };
    t["ReduceMean"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false,
                    [](auto& x, auto axes, bool keep) { return at::mean(x, axes, keep); });
    };
    t["ReduceMax"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false,
                    [](auto& x, auto axes, bool keep) { return at::amax(x, axes, keep); });
    };
    t["ReduceMin"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false,
                    [](auto& x, auto axes, bool keep) { return at::amin(x, axes, keep); });
    };
    t["ReduceL1"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false,
                    [](auto& x, auto axes, bool keep) { return at::sum(at::abs(x), axes, keep); });
    };
    t["ReduceL2"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false, [](auto& x, auto axes, bool keep) {
        return at::sqrt(at::sum(x * x, axes, keep));
      });
    };
    t["ReduceLogSumExp"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false,
                    [](auto& x, auto axes, bool keep) { return at::logsumexp(x, axes, keep); });
    };
    t["ReduceProd"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return reduce(n, in, false, [](auto& x, auto axes, bool keep) {
        at::Tensor r = x;
        std::sort(axes.rbegin(), axes.rend());
        for (int64_t axis : axes) r = at::prod(r, axis, keep);
        return r;
      });
    };
    for (const char* name : {"ArgMax", "ArgMin"}) {
      const bool is_max = std::string(name) == "ArgMax";
      t[name] = [is_max](const onnx::NodeProto& n, const Tensors& in) {
        const Attrs a(n);
        const int64_t axis = axisOf(a.i("axis", 0), in[0].dim());
        const bool keep = a.i("keepdims", 1) != 0;
        at::Tensor x = a.i("select_last_index", 0) ? in[0].flip(axis) : in[0];
        at::Tensor r = is_max ? at::argmax(x, axis, keep) : at::argmin(x, axis, keep);
        if (a.i("select_last_index", 0)) r = in[0].size(axis) - 1 - r;
        return Tensors{r};
      };
    }
    for (const char* kind : {"LSTM", "GRU", "RNN"})
      t[kind] = [kind = std::string(kind)](const onnx::NodeProto& n, const Tensors& in) {
        return recurrent(n, in, kind);
      };
    // Convolution, pooling, normalisation.
    t["Conv"] = [](const onnx::NodeProto& n, const Tensors& in) { return conv(n, in, false); };
    t["ConvTranspose"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return conv(n, in, true);
    };
    t["MaxPool"] = [](const onnx::NodeProto& n, const Tensors& in) { return pool(n, in, true); };
    t["AveragePool"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return pool(n, in, false);
    };
    t["GlobalAveragePool"] = [](const onnx::NodeProto&, const Tensors& in) {
      std::vector<int64_t> spatial(in[0].dim() - 2);
      std::iota(spatial.begin(), spatial.end(), 2);
      return Tensors{at::mean(in[0], spatial, true)};
    };
    t["GlobalMaxPool"] = [](const onnx::NodeProto&, const Tensors& in) {
      std::vector<int64_t> spatial(in[0].dim() - 2);
      std::iota(spatial.begin(), spatial.end(), 2);
      return Tensors{at::amax(in[0], spatial, true)};
    };
    t["BatchNormalization"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::batch_norm(in[0], in[1], in[2], in[3], in[4], false, 0.0,
                                    Attrs(n).f("epsilon", 1e-5f), false)};
    };
    t["InstanceNormalization"] = [](const onnx::NodeProto& n, const Tensors& in) {
      return Tensors{at::instance_norm(in[0], in[1], in[2], {}, {}, true, 0.0,
                                       Attrs(n).f("epsilon", 1e-5f), false)};
    };
    t["LayerNormalization"] = [](const onnx::NodeProto& n, const Tensors& in) {
      const Attrs a(n);
      const int64_t axis = axisOf(a.i("axis", -1), in[0].dim());
      const std::vector<int64_t> shape(in[0].sizes().begin() + axis, in[0].sizes().end());
      return Tensors{at::layer_norm(in[0], shape, in[1], present(in, 2) ? in[2] : at::Tensor(),
                                    a.f("epsilon", 1e-5f))};
    };
    return t;
  }();
  return table;
}

using Values = std::unordered_map<std::string, at::Tensor>;

// Runs `graph`'s nodes with `values` in scope, adding what they compute; with
// `last_readers` (name -> index of the last node reading it), each name is
// dropped after that node.
void runGraph(const onnx::GraphProto& graph, Values& values, ProgressListener* progress = nullptr,
              const std::unordered_map<std::string, int>* last_readers = nullptr);
std::unordered_map<std::string, int> lastReaders(const onnx::GraphProto& graph);

const onnx::GraphProto& subgraph(const onnx::NodeProto& node, const std::string& name) {
  const auto* a = Attrs(node).find(name);
  if (a == nullptr || !a->has_g())
    throw ExportError(fmt::format("node '{}' has no '{}' graph", node.name(), name));
  return a->g();
}

// If and Loop run their bodies with the enclosing values in scope.
Tensors runIf(const onnx::NodeProto& node, const Tensors& in, const Values& values) {
  const onnx::GraphProto& branch =
      subgraph(node, in[0].item<bool>() ? "then_branch" : "else_branch");
  Values scope = values;
  const std::unordered_map<std::string, int> last_readers = lastReaders(branch);
  runGraph(branch, scope, nullptr, &last_readers);
  Tensors out;
  for (const auto& output : branch.output()) out.push_back(scope.at(output.name()));
  return out;
}

Tensors runLoop(const onnx::NodeProto& node, const Tensors& in, const Values& values) {
  const onnx::GraphProto& body = subgraph(node, "body");
  const int64_t trips =
      present(in, 0) ? in[0].item<int64_t>() : std::numeric_limits<int64_t>::max();
  bool keep_going = present(in, 1) ? in[1].item<bool>() : true;
  Tensors carried(in.begin() + 2, in.end());
  const size_t scan_count = body.output_size() - 1 - carried.size();
  std::vector<Tensors> scans(scan_count);
  // Each iteration frees what its body computed as it goes, as the main graph does.
  const std::unordered_map<std::string, int> last_readers = lastReaders(body);
  for (int64_t i = 0; i < trips && keep_going; ++i) {
    Values scope = values;
    scope[body.input(0).name()] = at::scalar_tensor(i, at::kLong);
    scope[body.input(1).name()] = at::scalar_tensor(keep_going, at::kBool);
    for (size_t k = 0; k < carried.size(); ++k) scope[body.input(2 + k).name()] = carried[k];
    runGraph(body, scope, nullptr, &last_readers);
    keep_going = scope.at(body.output(0).name()).item<bool>();
    for (size_t k = 0; k < carried.size(); ++k) carried[k] = scope.at(body.output(1 + k).name());
    for (size_t k = 0; k < scan_count; ++k)
      scans[k].push_back(scope.at(body.output(1 + carried.size() + k).name()));
  }
  Tensors out = carried;
  for (auto& scan : scans) {
    if (scan.empty())
      throw ExportError(fmt::format("Loop '{}' ran no iteration, so its scan outputs have no shape",
                                    node.name()));
    out.push_back(at::stack(scan, 0));
  }
  return out;
}

// The names a node reads, those its sub-graphs read from enclosing scopes
// included (and, harmlessly, the sub-graphs' own).
void namesRead(const onnx::NodeProto& node, std::vector<std::string>& out) {
  out.insert(out.end(), node.input().begin(), node.input().end());
  for (const auto& attribute : node.attribute())
    if (attribute.has_g())
      for (const auto& inner : attribute.g().node()) namesRead(inner, out);
}

// The index of the last node of `graph` reading each name; graph outputs are
// read after every node.
std::unordered_map<std::string, int> lastReaders(const onnx::GraphProto& graph) {
  std::unordered_map<std::string, int> last;
  for (int i = 0; i < graph.node_size(); ++i) {
    std::vector<std::string> read;
    namesRead(graph.node(i), read);
    for (const std::string& name : read) last[name] = i;
  }
  for (const auto& output : graph.output()) last[output.name()] = graph.node_size();
  return last;
}

// An initializer's tensor, reading raw data in place: the model outlives the
// run, and a copy would hold the weights twice.
at::Tensor initializerTensor(const onnx::TensorProto& proto) {
  if (!proto.has_raw_data()) return tensorFromProto(proto);
  const std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  const auto options = at::TensorOptions().dtype(torchType(proto.data_type()));
  at::Tensor view = at::from_blob(const_cast<char*>(proto.raw_data().data()), dims, options);
  if (view.nbytes() != proto.raw_data().size()) return tensorFromProto(proto);  // names the error
  return view;
}

void runGraph(const onnx::GraphProto& graph, Values& values, ProgressListener* progress,
              const std::unordered_map<std::string, int>* last_readers) {
  for (const auto& init : graph.initializer()) values[init.name()] = initializerTensor(init);
  int64_t done = 0;
  for (const auto& node : graph.node()) {
    ++done;
    if (progress) progress->advance(done, graph.node_size(), ProgressListener::Unit::kNodes);
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      throw ExportError(fmt::format("node '{}': domain '{}' is not supported by the evaluator",
                                    node.name(), node.domain()));
    const bool control_flow = node.op_type() == "If" || node.op_type() == "Loop";
    auto op = ops().find(node.op_type());
    if (!control_flow && op == ops().end())
      throw ExportError(fmt::format(
          "node '{}': ONNX op {} has no implementation in mexport's evaluator; validate with "
          "ONNX Runtime instead, or report it",
          node.name(), node.op_type()));
    Tensors in;
    for (const auto& name : node.input()) {
      if (name.empty()) {
        in.emplace_back();
        continue;
      }
      auto value = values.find(name);
      if (value == values.end())
        throw ExportError(fmt::format("node '{}' reads '{}', which nothing before it produces",
                                      node.name(), name));
      in.push_back(value->second);
    }
    Tensors out;
    try {
      if (node.op_type() == "If")
        out = runIf(node, in, values);
      else if (node.op_type() == "Loop")
        out = runLoop(node, in, values);
      else
        out = op->second(node, in);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      throw ExportError(fmt::format("node '{}' ({}) failed in the evaluator: {}", node.name(),
                                    node.op_type(), what.substr(0, what.find('\n'))));
    }
    for (int i = 0; i < node.output_size() && i < static_cast<int>(out.size()); ++i)
      if (!node.output(i).empty()) values[node.output(i)] = out[i];
    if (last_readers == nullptr) continue;
    const int index = static_cast<int>(done - 1);
    std::vector<std::string> read;
    namesRead(node, read);
    read.insert(read.end(), node.output().begin(), node.output().end());
    for (const std::string& name : read) {
      auto last = last_readers->find(name);
      if (last == last_readers->end() || last->second == index) values.erase(name);
    }
  }
}

}  // namespace

at::Tensor tensorFromProto(const onnx::TensorProto& proto) {
  const c10::ScalarType type = torchType(proto.data_type());
  const std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  if (proto.has_raw_data()) {
    at::Tensor t = at::empty(dims, at::TensorOptions().dtype(type));
    if (t.nbytes() != proto.raw_data().size())
      throw ExportError(fmt::format("tensor '{}' has {} bytes of data for {} expected",
                                    proto.name(), proto.raw_data().size(), t.nbytes()));
    std::memcpy(t.data_ptr(), proto.raw_data().data(), t.nbytes());
    return t;
  }
  switch (proto.data_type()) {
    case onnx::TensorProto::FLOAT:
      return at::tensor(std::vector<float>(proto.float_data().begin(), proto.float_data().end()))
          .reshape(dims);
    case onnx::TensorProto::DOUBLE:
      return at::tensor(std::vector<double>(proto.double_data().begin(), proto.double_data().end()))
          .reshape(dims);
    case onnx::TensorProto::INT64:
      return at::tensor(std::vector<int64_t>(proto.int64_data().begin(), proto.int64_data().end()))
          .reshape(dims);
    default:
      // Narrow integer types, bool and float16 live in int32_data.
      return at::tensor(std::vector<int32_t>(proto.int32_data().begin(), proto.int32_data().end()))
          .to(type)
          .reshape(dims);
  }
}

OnnxEvaluator::OnnxEvaluator(const onnx::ModelProto& model) : model_(model) {}

std::vector<std::string> OnnxEvaluator::supportedOps() {
  std::vector<std::string> names;
  for (const auto& [name, op] : ops()) names.push_back(name);
  names.insert(names.end(), {"If", "Loop"});
  return names;
}

std::unordered_map<std::string, at::Tensor> OnnxEvaluator::run(
    const std::map<std::string, at::Tensor>& inputs, ProgressListener* progress, Keep keep) const {
  c10::InferenceMode guard;
  Values values;
  const onnx::GraphProto& graph = model_.graph();
  for (const auto& input : graph.input()) {
    auto it = inputs.find(input.name());
    if (it != inputs.end()) {
      values[input.name()] = it->second;
      continue;
    }
    const bool is_initializer =
        std::any_of(graph.initializer().begin(), graph.initializer().end(),
                    [&](const onnx::TensorProto& init) { return init.name() == input.name(); });
    if (!is_initializer)
      throw UsageError(fmt::format(
          "no value given for the ONNX input '{}'; name the config's inputs like the model's",
          input.name()));
  }
  if (keep == Keep::kEverything) {
    runGraph(graph, values, progress);
    return values;
  }
  const std::unordered_map<std::string, int> last_readers = lastReaders(graph);
  runGraph(graph, values, progress, &last_readers);
  return values;
}

}  // namespace mexport
