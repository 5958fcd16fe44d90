// The non-virtual parts of the converter API: attribute builders, typed
// constant readers and the converter registry.
#include <algorithm>
#include <stdexcept>

#include "mexport/errors.h"
#include "mexport/lowering.h"

namespace mexport {

namespace attr {

onnx::AttributeProto i(const std::string& name, int64_t value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
  return a;
}

onnx::AttributeProto f(const std::string& name, float value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
  return a;
}

onnx::AttributeProto s(const std::string& name, const std::string& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::STRING);
  a.set_s(value);
  return a;
}

onnx::AttributeProto ints(const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a.add_ints(v);
  return a;
}

onnx::AttributeProto floats(const std::string& name, const std::vector<float>& values) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a.add_floats(v);
  return a;
}

onnx::AttributeProto t(const std::string& name, const onnx::TensorProto& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::TENSOR);
  *a.mutable_t() = value;
  return a;
}

onnx::AttributeProto g(const std::string& name, const onnx::GraphProto& value) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::GRAPH);
  *a.mutable_g() = value;
  return a;
}

}  // namespace attr

onnx::TensorProto_DataType onnxType(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float:
      return onnx::TensorProto::FLOAT;
    case c10::ScalarType::Double:
      return onnx::TensorProto::DOUBLE;
    case c10::ScalarType::Half:
      return onnx::TensorProto::FLOAT16;
    case c10::ScalarType::BFloat16:
      return onnx::TensorProto::BFLOAT16;
    case c10::ScalarType::Long:
      return onnx::TensorProto::INT64;
    case c10::ScalarType::Int:
      return onnx::TensorProto::INT32;
    case c10::ScalarType::Short:
      return onnx::TensorProto::INT16;
    case c10::ScalarType::Char:
      return onnx::TensorProto::INT8;
    case c10::ScalarType::Byte:
      return onnx::TensorProto::UINT8;
    case c10::ScalarType::Bool:
      return onnx::TensorProto::BOOL;
    default:
      throw ExportError(std::string("dtype ") + c10::toString(type) + " has no ONNX equivalent");
  }
}

int64_t LoweringContext::constInt(const torch::jit::Value* value) const {
  auto v = constant(value);
  if (!v || !v->isInt()) fail("expected a constant int for input '" + value->debugName() + "'");
  return v->toInt();
}

double LoweringContext::constDouble(const torch::jit::Value* value) const {
  auto v = constant(value);
  if (!v || !(v->isDouble() || v->isInt()))
    fail("expected a constant number for input '" + value->debugName() + "'");
  return v->isDouble() ? v->toDouble() : static_cast<double>(v->toInt());
}

bool LoweringContext::constBool(const torch::jit::Value* value) const {
  auto v = constant(value);
  if (!v || !v->isBool()) fail("expected a constant bool for input '" + value->debugName() + "'");
  return v->toBool();
}

std::vector<int64_t> LoweringContext::constInts(const torch::jit::Value* value) const {
  auto v = constant(value);
  if (v && v->isIntList()) return v->toIntVector();
  if (v && v->isInt()) return {v->toInt()};
  fail("expected a constant int list for input '" + value->debugName() + "'");
}

bool LoweringContext::isNone(const torch::jit::Value* value) const {
  if (value->type()->kind() == c10::TypeKind::NoneType) return true;
  auto v = constant(value);
  return v && v->isNone();
}

void LoweringContext::fail(const std::string& message) const {
  throw ExportError(where() + ": " + message);
}

void ConverterRegistry::onOp(const std::string& op, int since_opset, const std::string& family,
                             ConverterFn fn) {
  if (contains(op, since_opset))
    throw std::invalid_argument("a converter for " + op + " since opset " +
                                std::to_string(since_opset) + " is already registered");
  auto& versions = by_op_[op];
  versions.push_back(Converter{op, since_opset, family, std::move(fn)});
  std::sort(versions.begin(), versions.end(),
            [](const Converter& a, const Converter& b) { return a.since_opset < b.since_opset; });
}

const Converter* ConverterRegistry::find(std::string_view op, int opset) const {
  auto it = by_op_.find(op);
  if (it == by_op_.end()) return nullptr;
  const Converter* best = nullptr;
  for (const Converter& c : it->second)
    if (c.since_opset <= opset) best = &c;
  return best;
}

bool ConverterRegistry::contains(std::string_view op, int since_opset) const {
  auto it = by_op_.find(op);
  if (it == by_op_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [&](const Converter& c) { return c.since_opset == since_opset; });
}

std::vector<const Converter*> ConverterRegistry::list() const {
  std::vector<const Converter*> all;
  for (const auto& [op, versions] : by_op_)
    for (const Converter& c : versions) all.push_back(&c);
  std::stable_sort(all.begin(), all.end(), [](const Converter* a, const Converter* b) {
    return a->family != b->family ? a->family < b->family : a->op < b->op;
  });
  return all;
}

void ConverterRegistry::merge(ConverterRegistry&& other) {
  for (const auto& [op, versions] : other.by_op_)
    for (const Converter& c : versions)
      if (contains(op, c.since_opset))
        throw std::invalid_argument("a converter for " + op + " since opset " +
                                    std::to_string(c.since_opset) + " is already registered");
  for (auto& [op, versions] : other.by_op_)
    for (Converter& c : versions) onOp(c.op, c.since_opset, c.family, std::move(c.fn));
  other.by_op_.clear();
}

}  // namespace mexport
