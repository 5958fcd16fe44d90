// The converter API: how an aten/prim op becomes ONNX nodes. Converters are
// registered per op kind with the opset they need (torch-mlir's onOp), one
// source file per op family, and see the graph through LoweringContext.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/ir/ir.h>

namespace mexport {

using Attributes = std::vector<onnx::AttributeProto>;

// Attribute builders: attr::i("axis", 1), attr::ints("perm", {0, 2, 1}).
namespace attr {
onnx::AttributeProto i(const std::string& name, int64_t value);
onnx::AttributeProto f(const std::string& name, float value);
onnx::AttributeProto s(const std::string& name, const std::string& value);
onnx::AttributeProto ints(const std::string& name, const std::vector<int64_t>& values);
onnx::AttributeProto floats(const std::string& name, const std::vector<float>& values);
onnx::AttributeProto t(const std::string& name, const onnx::TensorProto& value);
onnx::AttributeProto g(const std::string& name, const onnx::GraphProto& value);
}  // namespace attr

onnx::TensorProto_DataType onnxType(c10::ScalarType type);

class LoweringContext {
 public:
  virtual ~LoweringContext() = default;

  virtual int opset() const = 0;

  // --- reading the torch graph -------------------------------------------
  // The ONNX tensor holding a torch value. Constants, int lists and scalars
  // become ONNX tensors on first use: an int is a 0-d int64 tensor, a float a
  // 0-d float tensor, an int[] a 1-D int64 tensor.
  virtual std::string in(const torch::jit::Value* value) = 0;
  // Same, converted to `type` (constants are built in that type; anything else
  // gets a Cast when its type differs).
  virtual std::string inAs(const torch::jit::Value* value, c10::ScalarType type) = 0;
  // Compile-time value of an input (prim::Constant, or a prim::ListConstruct of
  // constants), else nullopt.
  virtual std::optional<c10::IValue> constant(const torch::jit::Value* value) const = 0;
  // Element values of a prim::ListConstruct (e.g. the tensors of aten::cat).
  virtual std::vector<const torch::jit::Value*> listElements(
      const torch::jit::Value* value) const = 0;
  // Dtype and sizes of a tensor value, from the meta walk and the reference
  // run. Sizes are those of the example inputs: use them for ranks, never bake
  // them into the graph where the model reads a size, since dynamic axes would
  // break. A dim is -1 where it varies (loop iterations, branches) or cannot be
  // known without data (a branch the example does not take).
  virtual c10::ScalarType scalarType(const torch::jit::Value* value) const = 0;
  virtual std::vector<int64_t> sizes(const torch::jit::Value* value) const = 0;
  int64_t rank(const torch::jit::Value* value) const {
    return static_cast<int64_t>(sizes(value).size());
  }

  // Typed constant readers; throw an ExportError naming the op when the input
  // is not a compile-time constant of that kind.
  int64_t constInt(const torch::jit::Value* value) const;
  double constDouble(const torch::jit::Value* value) const;
  bool constBool(const torch::jit::Value* value) const;
  std::vector<int64_t> constInts(const torch::jit::Value* value) const;
  bool isNone(const torch::jit::Value* value) const;

  // --- writing ONNX ------------------------------------------------------
  // Appends an ONNX node made from the torch node being converted (it inherits
  // that node's tag) and returns its output names.
  virtual std::vector<std::string> op(const std::string& op_type,
                                      const std::vector<std::string>& inputs, int num_outputs = 1,
                                      const Attributes& attributes = {}) = 0;
  std::string op1(const std::string& op_type, const std::vector<std::string>& inputs,
                  const Attributes& attributes = {}) {
    return op(op_type, inputs, 1, attributes).front();
  }
  // Makes `onnx_name` the ONNX tensor of a torch output. Binding an output to
  // one of the inputs' tensors (dropout, contiguous) emits nothing.
  virtual void bind(const torch::jit::Value* value, const std::string& onnx_name) = 0;

  // Marks a torch output the converter deliberately gives no ONNX tensor: a
  // Tensor[] (split, chunk) whose reader, a prim::ListUnpack, is bound by the
  // producer itself. in() of such a value is an error.
  virtual void markHandled(const torch::jit::Value* value) = 0;

  // Constants (ONNX Constant nodes, tagged like the current node).
  virtual std::string makeInts(const std::vector<int64_t>& values) = 0;  // 1-D int64
  virtual std::string constScalar(const c10::Scalar& value,
                                  c10::ScalarType type) = 0;  // 0-d of `type`
  virtual std::string constTensor(const at::Tensor& value) = 0;
  // An empty input name, for skipping an optional ONNX input.
  static std::string none() { return std::string(); }

  // --- blocks of prim::If and prim::Loop ------------------------------------
  // An input of a sub-graph: the torch block input it stands for (nullptr for
  // an ONNX-only input, such as Loop's condition) and its dtype and rank.
  struct SubgraphInput {
    const torch::jit::Value* value = nullptr;
    c10::ScalarType dtype = c10::ScalarType::Undefined;
    int64_t rank = 0;
  };
  // Converts the nodes of `block` into an ONNX graph (an If branch, a Loop
  // body) with the same converters; every node keeps its own tag. `inputs`
  // become the graph inputs in order; the block's outputs, then
  // `scan_outputs` (values of the block, a Loop's per-iteration results), its
  // outputs. Values of the enclosing graphs are read by name (ONNX
  // outer-scope references).
  virtual onnx::GraphProto subgraph(const torch::jit::Block& block,
                                    const std::vector<SubgraphInput>& inputs,
                                    const std::vector<const torch::jit::Value*>& scan_outputs) = 0;
  // Converts the nodes of `block` into the current graph (the taken branch of
  // an If whose condition is a constant) and returns the ONNX tensors of the
  // block's outputs.
  virtual std::vector<std::string> inlineBlock(const torch::jit::Block& block) = 0;

  // Location of the node being converted, for error messages:
  // "aten::cumprod in module 'odd' (/Tiny/odd) at model.py:12".
  virtual std::string where() const = 0;
  // Throws an ExportError: "<where>: <message>".
  [[noreturn]] void fail(const std::string& message) const;
};

using ConverterFn = std::function<void(LoweringContext& ctx, const torch::jit::Node& node)>;

struct Converter {
  std::string op;       // "aten::linear"
  int since_opset = 1;  // the lowest opset this converter supports
  std::string family;   // "linear", "activation", ...; for listings
  ConverterFn fn;
};

// Converters by op kind; several per op for different opsets, the newest that
// the target opset allows wins.
class ConverterRegistry {
 public:
  // Throws std::invalid_argument on a second converter for the same op and opset.
  void onOp(const std::string& op, int since_opset, const std::string& family, ConverterFn fn);
  const Converter* find(std::string_view op, int opset) const;
  bool contains(std::string_view op, int since_opset) const;
  // All converters, sorted by family then op.
  std::vector<const Converter*> list() const;
  // Moves every converter of `other` in; throws std::invalid_argument on a clash.
  void merge(ConverterRegistry&& other);

 private:
  std::map<std::string, std::vector<Converter>, std::less<>> by_op_;
};

}  // namespace mexport
