#include "lowering/driver.h"

#include <sys/mman.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/jit/ir/constants.h>

#include <memory>
#include <unordered_set>

#include "mexport/errors.h"
#include "weight_buffers.h"

namespace mexport {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// The bytes of a contiguous tensor in a string of their own. The pages of a
// large one are faulted in by one madvise(MADV_POPULATE_WRITE) before the
// copy: a fault per 4 KiB page costs more than the copy itself in a VM. The
// call is only a hint; kernels before 5.14 refuse it and nothing changes.
std::string tensorBytes(const at::Tensor& t) {
  const size_t size = t.nbytes();
  std::string bytes;
  bytes.reserve(size);
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (size >= page) {
    const auto begin = reinterpret_cast<uintptr_t>(bytes.data()) & ~(page - 1);
    const auto end = reinterpret_cast<uintptr_t>(bytes.data()) + size;
    ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
  }
  bytes.append(static_cast<const char*>(t.data_ptr()), size);
  return bytes;
}

// `value` as an ONNX tensor; its bytes are moved out of a weight buffer when
// `move_bytes` and the tensor is one (see WeightBytes::kMove), copied otherwise.
onnx::TensorProto toTensorProto(const at::Tensor& value, bool move_bytes = false) {
  const at::Tensor t = value.contiguous();
  onnx::TensorProto proto;
  for (int64_t d : t.sizes()) proto.add_dims(d);
  proto.set_data_type(onnxType(t.scalar_type()));
  std::optional<std::string> moved;
  if (move_bytes) moved = takeWeightBytes(t);
  proto.set_raw_data(moved ? std::move(*moved) : tensorBytes(t));
  return proto;
}

void setTensorType(onnx::ValueInfoProto& info, c10::ScalarType dtype,
                   const std::vector<int64_t>& sizes,
                   const std::map<int64_t, std::string>& dynamic) {
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnxType(dtype));
  auto* shape = tensor->mutable_shape();
  for (size_t axis = 0; axis < sizes.size(); ++axis) {
    auto* dim = shape->add_dim();
    auto name = dynamic.find(static_cast<int64_t>(axis));
    if (name != dynamic.end())
      dim->set_dim_param(name->second);
    else if (sizes[axis] >= 0)  // -1: varies between loop iterations or branches
      dim->set_dim_value(sizes[axis]);
  }
}

// A value's type with its dimensions unknown: sub-graph values change size
// from one iteration to the next, and the checker wants a shape field.
void setTensorRank(onnx::ValueInfoProto& info, c10::ScalarType dtype, int64_t rank) {
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnxType(dtype));
  auto* shape = tensor->mutable_shape();
  for (int64_t d = 0; d < rank; ++d) shape->add_dim();
}

// Renames tensors in `graph` and in its sub-graphs, which read their
// enclosing graphs' tensors by name.
void renameTensors(onnx::GraphProto& graph,
                   const std::unordered_map<std::string, std::string>& renames) {
  for (auto& node : *graph.mutable_node()) {
    for (auto& name : *node.mutable_input())
      if (auto it = renames.find(name); it != renames.end()) name = it->second;
    for (auto& name : *node.mutable_output())
      if (auto it = renames.find(name); it != renames.end()) name = it->second;
    for (auto& attribute : *node.mutable_attribute())
      if (attribute.has_g()) renameTensors(*attribute.mutable_g(), renames);
  }
}

// Node and tensor names are unique across a model and all its sub-graphs.
struct NameTable {
  std::unordered_map<std::string, int> counts;
  std::unordered_set<std::string> used;
};

// The tags of sub-graph nodes by node name, filled as they are made: their
// place in the model is known only once the If or Loop holding them is.
using SubgraphInfos = std::unordered_map<std::string, OnnxNodeInfo>;

// LoweringContext over one ONNX graph under construction: the main graph, or
// a sub-graph (If branch, Loop body) whose builder has a parent.
class OnnxBuilder final : public LoweringContext {
 public:
  // The builder of the main graph.
  OnnxBuilder(const LoadedModel& model, const NodeTags& tags, const Config& config,
              const ConverterRegistry& converters, WeightBytes weight_bytes,
              onnx::GraphProto& graph, std::vector<OnnxNodeInfo>& infos,
              SubgraphInfos& subgraph_infos)
      : model_(model),
        tags_(tags),
        config_(config),
        converters_(converters),
        weight_bytes_(weight_bytes),
        graph_(graph),
        infos_(&infos),
        subgraph_infos_(subgraph_infos),
        name_table_(std::make_shared<NameTable>()) {
    const auto& inputs = model.prepared.graph->inputs();
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (i < model.inputs.size()) {
        const InputSpec& spec = config.inputs[i];
        auto* info = graph_.add_input();
        info->set_name(spec.name);
        setTensorType(*info, model.inputs[i].scalar_type(), model.inputs[i].sizes().vec(),
                      spec.dynamic);
        names_[inputs[i]] = spec.name;
      } else {
        parameter_of_[inputs[i]] = &model.parameters[i - model.inputs.size()];
      }
    }
  }

  // The builder of a sub-graph of `parent`'s graph holding the nodes of
  // `block`. Its nodes go to the sub-graph infos: the export's node infos are
  // index-aligned with the main graph's nodes.
  OnnxBuilder(OnnxBuilder& parent, const torch::jit::Block& block, onnx::GraphProto& graph)
      : model_(parent.model_),
        tags_(parent.tags_),
        config_(parent.config_),
        converters_(parent.converters_),
        weight_bytes_(parent.weight_bytes_),
        graph_(graph),
        subgraph_infos_(parent.subgraph_infos_),
        name_table_(parent.name_table_),
        parent_(&parent),
        block_(&block) {}

  // Converts every node of `block` into this builder's graph.
  void convertBlock(const torch::jit::Block& block, ProgressListener* progress = nullptr) {
    const auto total = progress ? std::distance(block.nodes().begin(), block.nodes().end()) : 0;
    int64_t done = 0;
    for (const Node* node : block.nodes()) {
      if (progress) progress->advance(++done, total, ProgressListener::Unit::kNodes);
      if (isMaterializedOnUse(node->kind())) continue;
      const Converter* converter = converters_.find(node->kind().toQualString(), config_.opset);
      if (converter != nullptr) {
        convert(node, *converter);
        continue;
      }
      convert(node, Converter{node->kind().toQualString(), 1, "",
                              [opset = config_.opset](LoweringContext& ctx, const Node&) {
                                ctx.fail(fmt::format(
                                    "no ONNX converter for opset {}; `mexport export --list-ops` "
                                    "lists the supported ops; a plugin can add one (README, "
                                    "Plugins)",
                                    opset));
                              }});
    }
  }

  void convert(const Node* node, const Converter& converter) {
    current_ = node;
    try {
      converter.fn(*this, *node);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(fmt::format("converter failed: {}", firstLine(e.what())));
    }
    for (const Value* output : node->outputs())
      if (output->hasUses() && !names_.count(output) && !handled_without_tensor_.count(output) &&
          !isMaterializedOnUse(output->node()->kind()))
        fail(fmt::format("the converter produced no ONNX value for output '{}'",
                         output->debugName()));
  }

  void finishOutputs(const std::vector<std::string>& output_names) {
    std::unordered_set<std::string> fixed;  // names that cannot be renamed
    for (const auto& input : graph_.input()) fixed.insert(input.name());
    std::unordered_map<std::string, std::string> renames;
    for (size_t i = 0; i < model_.outputs.size(); ++i) {
      const Value* value = model_.outputs[i];
      current_ = value->node();
      std::string tensor = in(value);
      const bool is_initializer = parameter_of_.count(value) > 0;
      if (fixed.count(tensor) || renames.count(tensor) || is_initializer) {
        // A graph input, a weight or an output listed twice: give it its own tensor.
        tensor = op1("Identity", {tensor});
      }
      renames[tensor] = output_names[i];
      auto* info = graph_.add_output();
      info->set_name(output_names[i]);
      const ValueInfo& type = valueInfo(value);
      setTensorType(*info, type.dtype, {}, {});
      for (size_t d = 0; d < type.sizes.size(); ++d)
        info->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();
    }
    renameTensors(graph_, renames);
    for (auto& [value, name] : names_)
      if (auto it = renames.find(name); it != renames.end()) name = it->second;
  }

  // The ONNX tensor of each top-level torch value that has one, in graph order.
  std::vector<std::pair<const Value*, std::string>> tensorsOf(
      const torch::jit::Block* block) const {
    std::vector<std::pair<const Value*, std::string>> tensors;
    for (const Node* node : block->nodes())
      for (const Value* output : node->outputs())
        if (auto it = names_.find(output); it != names_.end())
          tensors.emplace_back(output, it->second);
    return tensors;
  }

  // --- LoweringContext -----------------------------------------------------
  int opset() const override { return config_.opset; }

  std::string in(const Value* value) override {
    if (auto it = names_.find(value); it != names_.end()) return it->second;
    // A sub-graph reads the values of enclosing graphs by name.
    if (parent_ != nullptr && !definedInBlock(value)) return parent_->in(value);
    if (auto p = parameter_of_.find(value); p != parameter_of_.end()) {
      auto* init = graph_.add_initializer();
      *init = toTensorProto(p->second->tensor, weight_bytes_ == WeightBytes::kMove);
      init->set_name(p->second->path);
      return names_[value] = p->second->path;
    }
    if (handled_without_tensor_.count(value))
      fail(fmt::format("value '{}' is a list with no ONNX tensor; read it with prim::ListUnpack",
                       value->debugName()));
    const Node* producer = value->node();
    CurrentNode guard(*this, producer);
    if (producer->kind() == c10::prim::Constant) return names_[value] = materializeConstant(value);
    if (producer->kind() == c10::prim::ListConstruct)
      return names_[value] = materializeIntList(value);
    fail(fmt::format("internal error: value '{}' from {} has no ONNX tensor yet",
                     value->debugName(), producer->kind().toQualString()));
  }

  std::string inAs(const Value* value, c10::ScalarType type) override {
    const auto key = std::make_pair(value, type);
    if (auto it = casts_.find(key); it != casts_.end()) return it->second;
    std::string name;
    auto known = constant(value);
    if (known && (known->isInt() || known->isDouble() || known->isBool())) {
      CurrentNode guard(*this, value->node());
      name = constScalar(known->toScalar(), type);
    } else if (known && known->isTensor()) {
      CurrentNode guard(*this, value->node());
      name = constTensor(known->toTensor().to(type));
    } else {
      name = in(value);
      if (scalarType(value) != type) name = op1("Cast", {name}, {attr::i("to", onnxType(type))});
    }
    return casts_[key] = name;
  }

  std::optional<c10::IValue> constant(const Value* value) const override {
    const Node* producer = value->node();
    if (producer->kind() == c10::prim::Constant) return torch::jit::toIValue(value);
    if (producer->kind() != c10::prim::ListConstruct) return std::nullopt;
    const auto element = value->type()->containedTypes().at(0)->kind();
    c10::impl::GenericList list(value->type()->containedTypes().at(0));
    for (const Value* item : producer->inputs()) {
      auto v = constant(item);
      if (!v) return std::nullopt;
      list.push_back(*v);
    }
    if (element == c10::TypeKind::IntType)
      return c10::IValue(c10::impl::toTypedList<int64_t>(list));
    if (element == c10::TypeKind::FloatType)
      return c10::IValue(c10::impl::toTypedList<double>(list));
    if (element == c10::TypeKind::BoolType) return c10::IValue(c10::impl::toTypedList<bool>(list));
    return std::nullopt;
  }

  std::vector<const Value*> listElements(const Value* value) const override {
    if (value->node()->kind() != c10::prim::ListConstruct)
      fail(fmt::format("list input '{}' is built by {}, not a list literal", value->debugName(),
                       value->node()->kind().toQualString()));
    // A literal something appends to holds more than its literal elements.
    static const std::unordered_set<std::string> kListWriters = {
        "aten::append",    "aten::extend", "aten::insert", "aten::pop",
        "aten::_set_item", "aten::clear",  "aten::remove"};
    for (const torch::jit::Use& use : value->uses())
      if (kListWriters.count(use.user->kind().toQualString()))
        fail(
            "the list grows at run time; mexport exports a growing list when a loop fills it "
            "(built empty before the loop, appended to once per iteration, read only after the "
            "loop: len, indexing, iteration, torch.stack / torch.cat) or when a loop grows it "
            "with tensors of one shape and reads it");
    return {value->node()->inputs().begin(), value->node()->inputs().end()};
  }

  c10::ScalarType scalarType(const Value* value) const override {
    if (auto it = model_.values.find(value); it != model_.values.end()) return it->second.dtype;
    if (auto v = constant(value)) {
      if (v->isTensor()) return v->toTensor().scalar_type();
      if (v->isInt() || v->isIntList()) return c10::ScalarType::Long;
      if (v->isDouble() || v->isDoubleList()) return c10::ScalarType::Double;
      if (v->isBool() || v->isBoolList()) return c10::ScalarType::Bool;
    }
    // A list of ints known only at run time (sizes) is an int64 tensor.
    if (value->type()->isSubtypeOf(*c10::ListType::ofInts())) return c10::ScalarType::Long;
    fail(fmt::format("no dtype is known for value '{}'", value->debugName()));
  }

  std::vector<int64_t> sizes(const Value* value) const override {
    if (auto it = model_.values.find(value); it != model_.values.end()) return it->second.sizes;
    if (auto v = constant(value)) {
      if (v->isTensor()) return v->toTensor().sizes().vec();
      if (v->isList()) return {static_cast<int64_t>(v->toListRef().size())};
      return {};
    }
    if (value->node()->kind() == c10::prim::ListConstruct)
      return {static_cast<int64_t>(value->node()->inputs().size())};
    fail(fmt::format("no shape is known for value '{}'", value->debugName()));
  }

  std::vector<std::string> op(const std::string& op_type, const std::vector<std::string>& inputs,
                              int num_outputs, const Attributes& attributes) override {
    const NodeTag tag = tagOf(current_);
    const std::string& module_tag =
        tag.module >= 0 ? model_.prepared.tree.at(tag.module).tag : kNoTag;
    onnx::NodeProto& node = *graph_.add_node();
    node.set_op_type(op_type);
    node.set_name(uniqueName(config_.hierarchy == HierarchyMode::kNone
                                 ? op_type
                                 : (module_tag == "/" ? "" : module_tag) + "/" + op_type));
    for (const auto& input : inputs) node.add_input(input);
    std::vector<std::string> outputs;
    for (int i = 0; i < num_outputs; ++i) {
      outputs.push_back(fmt::format("{}_output_{}", node.name(), i));
      node.add_output(outputs.back());
    }
    for (const auto& output : outputs) produced_.insert(output);
    for (const auto& attribute : attributes) *node.add_attribute() = attribute;
    if (config_.hierarchy != HierarchyMode::kNone)
      node.set_doc_string(
          fmt::format("{} in {}", current_->kind().toQualString(), modulePath(tag)));
    const OnnxNodeInfo info{current_->kind().toQualString(), tag.module, tag.provenance};
    if (infos_ != nullptr)
      infos_->push_back(info);
    else
      subgraph_infos_.emplace(node.name(), info);
    return outputs;
  }

  void bind(const Value* value, const std::string& onnx_name) override {
    names_[value] = onnx_name;
  }

  void markHandled(const Value* value) override { handled_without_tensor_.insert(value); }

  std::string makeInts(const std::vector<int64_t>& values) override {
    return constTensor(at::tensor(values, at::kLong));
  }

  std::string constScalar(const c10::Scalar& value, c10::ScalarType type) override {
    return constTensor(at::scalar_tensor(value, at::TensorOptions().dtype(type)));
  }

  std::string constTensor(const at::Tensor& value) override {
    return op1("Constant", {}, {attr::t("value", toTensorProto(value))});
  }

  onnx::GraphProto subgraph(const torch::jit::Block& block,
                            const std::vector<SubgraphInput>& inputs,
                            const std::vector<const Value*>& scan_outputs) override {
    CurrentNode guard(*this, current_);
    onnx::GraphProto graph;
    graph.set_name(uniqueName("subgraph"));
    OnnxBuilder child(*this, block, graph);
    for (const SubgraphInput& input : inputs) {
      std::string name = uniqueName(input.value != nullptr ? input.value->debugName() : "cond");
      auto* info = graph.add_input();
      info->set_name(name);
      setTensorRank(*info, input.dtype, input.rank);
      if (input.value != nullptr) child.names_[input.value] = name;
    }
    child.convertBlock(block);
    child.current_ = block.owningNode();
    std::unordered_set<std::string> listed;
    const auto add_output = [&](const Value* output) {
      std::string tensor = child.in(output);
      // A sub-graph output must be computed in the sub-graph, and only once.
      if (!child.produced_.count(tensor) || listed.count(tensor))
        tensor = child.op1("Identity", {tensor});
      listed.insert(tensor);
      auto* info = graph.add_output();
      info->set_name(tensor);
      setTensorRank(*info, dtypeOfValue(output), rankOfValue(output));
    };
    for (const Value* output : block.outputs()) add_output(output);
    for (const Value* output : scan_outputs) add_output(output);
    return graph;
  }

  std::vector<std::string> inlineBlock(const torch::jit::Block& block) override {
    CurrentNode guard(*this, current_);
    convertBlock(block);
    std::vector<std::string> outputs;
    for (const Value* output : block.outputs()) outputs.push_back(in(output));
    return outputs;
  }

  std::string where() const override {
    if (current_ == nullptr) return "model output";
    // Prefer the Python source the TorchScript code was generated from.
    std::string location;
    const auto original = current_->sourceRange().findSourceRangeThatGenerated();
    if (auto loc = original.value_or(current_->sourceRange()).file_line_col())
      location = fmt::format(" at {}:{}", std::get<0>(*loc), std::get<1>(*loc));
    const NodeTag tag = tagOf(current_);
    return fmt::format("{} in module {}{}", current_->kind().toQualString(), modulePath(tag),
                       location);
  }

  static std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

 private:
  static inline const std::string kNoTag;

  // Makes ONNX nodes built while materialising a value carry its producer's tag.
  class CurrentNode {
   public:
    CurrentNode(OnnxBuilder& builder, const Node* node)
        : builder_(builder), saved_(builder.current_) {
      builder_.current_ = node;
    }
    ~CurrentNode() { builder_.current_ = saved_; }

   private:
    OnnxBuilder& builder_;
    const Node* saved_;
  };

  NodeTag tagOf(const Node* node) const {
    auto it = tags_.find(node);
    return it == tags_.end() ? NodeTag{} : it->second;
  }

  std::string modulePath(const NodeTag& tag) const {
    if (tag.module < 0) return "(untagged)";
    const ModuleInfo& m = model_.prepared.tree.at(tag.module);
    return fmt::format("'{}' ({})", m.path.empty() ? "<root>" : m.path, m.tag);
  }

  const ValueInfo& valueInfo(const Value* value) const {
    auto it = model_.values.find(value);
    if (it == model_.values.end())
      fail(fmt::format("no dtype is known for output '{}'", value->debugName()));
    return it->second;
  }

  std::string uniqueName(const std::string& base) {
    int& count = name_table_->counts[base];
    std::string name = count == 0 ? base : fmt::format("{}_{}", base, count);
    ++count;
    while (!name_table_->used.insert(name).second) name = fmt::format("{}_{}", base, count++);
    return name;
  }

  // Whether `value` is computed inside this sub-graph's block (or deeper).
  bool definedInBlock(const Value* value) const {
    for (const torch::jit::Block* b = value->node()->owningBlock(); b != nullptr;
         b = b->owningNode() != nullptr ? b->owningNode()->owningBlock() : nullptr)
      if (b == block_) return true;
    return false;
  }

  // The dtype and rank of a value's ONNX tensor: torch numbers are 0-d.
  c10::ScalarType dtypeOfValue(const Value* value) const {
    switch (value->type()->kind()) {
      case c10::TypeKind::IntType:
        return c10::ScalarType::Long;
      case c10::TypeKind::FloatType:
        return c10::ScalarType::Double;
      case c10::TypeKind::BoolType:
        return c10::ScalarType::Bool;
      default:
        return scalarType(value);
    }
  }
  int64_t rankOfValue(const Value* value) const {
    return value->type()->kind() == c10::TypeKind::TensorType ? rank(value) : 0;
  }

  std::string materializeConstant(const Value* value) {
    const c10::IValue v = *torch::jit::toIValue(value);
    if (v.isTensor()) return constTensor(v.toTensor());
    if (v.isInt()) return constScalar(v.toInt(), c10::ScalarType::Long);
    if (v.isDouble()) return constScalar(v.toDouble(), c10::ScalarType::Double);
    if (v.isBool()) return constScalar(v.toBool(), c10::ScalarType::Bool);
    if (v.isIntList()) return makeInts(v.toIntVector());
    if (v.isDoubleList()) return constTensor(at::tensor(v.toDoubleVector(), at::kDouble));
    fail(fmt::format("constant {} cannot be used as a tensor", v.tagKind()));
  }

  // An int[] whose elements are known only at run time (sizes): Concat of
  // 1-element tensors.
  std::string materializeIntList(const Value* value) {
    if (auto known = constant(value); known && known->isIntList())
      return makeInts(known->toIntVector());
    if (value->type()->containedTypes().at(0)->kind() != c10::TypeKind::IntType)
      fail(fmt::format("list '{}' of {} cannot be used as one tensor", value->debugName(),
                       value->type()->str()));
    std::vector<std::string> parts;
    const std::string axis0 = makeInts({0});
    for (const Value* item : value->node()->inputs()) {
      auto known = constant(item);
      parts.push_back(known ? makeInts({known->toInt()}) : op1("Unsqueeze", {in(item), axis0}));
    }
    return op1("Concat", parts, {attr::i("axis", 0)});
  }

  const LoadedModel& model_;
  const NodeTags& tags_;
  const Config& config_;
  const ConverterRegistry& converters_;
  const WeightBytes weight_bytes_;
  onnx::GraphProto& graph_;
  std::vector<OnnxNodeInfo>* infos_ = nullptr;  // the main graph's; null in a sub-graph
  SubgraphInfos& subgraph_infos_;
  std::shared_ptr<NameTable> name_table_;
  OnnxBuilder* parent_ = nullptr;             // set for a sub-graph
  const torch::jit::Block* block_ = nullptr;  // a sub-graph's block
  std::unordered_set<std::string> produced_;  // tensors computed in this graph
  const Node* current_ = nullptr;
  std::unordered_map<const Value*, std::string> names_;
  std::unordered_map<const Value*, const Parameter*> parameter_of_;
  std::unordered_set<const Value*> handled_without_tensor_;
  std::map<std::pair<const Value*, c10::ScalarType>, std::string> casts_;
};

// Appends the nodes of the sub-graphs of `node` (attributes of graph type),
// and theirs, depth first, each with its tag from `infos`.
void collectSubgraphNodes(const onnx::NodeProto& node, int owner, const SubgraphInfos& infos,
                          std::vector<SubgraphNodeInfo>& out) {
  for (const onnx::AttributeProto& attribute : node.attribute()) {
    if (!attribute.has_g()) continue;
    const std::string graph = node.name() + "." + attribute.name();
    for (const onnx::NodeProto& inner : attribute.g().node()) {
      out.push_back({inner.name(), graph, owner, infos.at(inner.name())});
      collectSubgraphNodes(inner, owner, infos, out);
    }
  }
}

}  // namespace

bool isMaterializedOnUse(c10::Symbol kind) {
  return kind == c10::prim::Constant || kind == c10::prim::ListConstruct ||
         kind == c10::prim::TupleConstruct;
}

LoweredModel lowerToOnnx(const LoadedModel& model, const NodeTags& tags,
                         const ConverterRegistry& converters, const Config& config,
                         const std::string& producer_version, WeightBytes weight_bytes,
                         ProgressListener* progress) {
  LoweredModel lowered;
  onnx::ModelProto& proto = lowered.model;
  proto.set_ir_version(8);
  proto.set_producer_name("mexport");
  proto.set_producer_version(producer_version);
  auto* opset = proto.add_opset_import();
  opset->set_domain("");
  opset->set_version(config.opset);
  onnx::GraphProto& graph = *proto.mutable_graph();
  graph.set_name(config.model_name);

  SubgraphInfos subgraph_infos;
  OnnxBuilder builder(model, tags, config, converters, weight_bytes, graph, lowered.nodes,
                      subgraph_infos);
  builder.convertBlock(*model.prepared.graph->block(), progress);

  std::vector<std::string> output_names = config.outputs;
  if (!output_names.empty() && output_names.size() != model.outputs.size())
    throw UsageError(fmt::format("{}: 'outputs' lists {} names but the model returns {} tensors",
                                 config.source.empty() ? "command line" : config.source,
                                 output_names.size(), model.outputs.size()));
  for (size_t i = output_names.size(); i < model.outputs.size(); ++i)
    output_names.push_back(i == 0 ? "output" : fmt::format("output_{}", i));
  builder.finishOutputs(output_names);
  lowered.tensors = builder.tensorsOf(model.prepared.graph->block());
  for (int i = 0; i < graph.node_size(); ++i)
    collectSubgraphNodes(graph.node(i), i, subgraph_infos, lowered.subgraph_nodes);
  return lowered;
}

}  // namespace mexport
