#include "model_loader.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/csrc/jit/serialization/import.h>

#include <filesystem>
#include <regex>

#include "inputs.h"
#include "mexport/errors.h"

namespace mexport {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string demangle(const std::string& name) {
  static const std::regex kMangle("___torch_mangle_\\d+\\.");
  return std::regex_replace(name, kMangle, "");
}

std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

int64_t ownParameterCount(const torch::jit::Module& module) {
  int64_t count = 0;
  for (const auto& p : module.named_parameters(false)) count += p.value.numel();
  for (const auto& b : module.named_buffers(false)) count += b.value.numel();
  return count;
}

ModuleTree buildModuleTree(const torch::jit::Module& root, TagStyle style) {
  std::vector<ModuleInfo> modules;
  std::unordered_map<std::string, int> index_of;
  for (const auto& item : root.named_modules()) {
    ModuleInfo info;
    info.path = item.name;
    const auto type = item.value.type();
    info.qualified_type = demangle(type->name() ? type->name()->qualifiedName() : "Module");
    info.class_name = demangle(type->name() ? type->name()->name() : "Module");
    info.called = type->findMethod("forward") != nullptr;
    info.parameters = ownParameterCount(item.value);
    if (!info.path.empty()) {
      const size_t dot = info.path.rfind('.');
      const std::string parent = dot == std::string::npos ? "" : info.path.substr(0, dot);
      info.name = dot == std::string::npos ? info.path : info.path.substr(dot + 1);
      info.parent = index_of.at(parent);
    }
    index_of[info.path] = static_cast<int>(modules.size());
    modules.push_back(std::move(info));
  }
  return ModuleTree(std::move(modules), style);
}

std::string joinPath(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// Replaces every prim::GetAttr chain starting at `self` by what it reads: a
// tensor becomes a graph input named by its parameter path (one input per
// tensor, so tied weights stay one initializer), any other value a constant.
class AttributeResolver {
 public:
  AttributeResolver(torch::jit::Graph& graph, const torch::jit::Module& root) : graph_(graph) {
    objects_[graph.inputs().at(0)] = {"", root._ivalue()};
  }

  std::vector<Parameter> run() {
    resolveBlock(graph_.block());
    for (auto it = module_reads_.rbegin(); it != module_reads_.rend(); ++it) {
      if ((*it)->output()->hasUses())
        throw ExportError(
            fmt::format("module '{}' is used as a value by {}; mexport exports tensors only",
                        objects_[(*it)->output()].path,
                        (*it)->output()->uses()[0].user->kind().toQualString()));
      (*it)->destroy();
    }
    if (graph_.inputs().at(0)->hasUses())
      throw ExportError(
          fmt::format("the model's forward uses 'self' in {}; only attribute reads are supported",
                      graph_.inputs().at(0)->uses()[0].user->kind().toQualString()));
    graph_.eraseInput(0);
    return std::move(parameters_);
  }

 private:
  struct ObjectRef {
    std::string path;
    c10::intrusive_ptr<c10::ivalue::Object> object;
  };

  void resolveBlock(torch::jit::Block* block) {
    for (auto it = block->nodes().begin(); it != block->nodes().end();) {
      Node* node = *it++;
      for (torch::jit::Block* sub : node->blocks()) resolveBlock(sub);
      if (node->kind() == c10::prim::SetAttr)
        throw ExportError(fmt::format(
            "the model assigns attribute '{}' in forward (prim::SetAttr); mexport exports "
            "stateless forward passes only",
            node->s(c10::attr::name)));
      if (node->kind() != c10::prim::GetAttr) continue;
      auto owner = objects_.find(node->input());
      if (owner == objects_.end()) continue;
      const std::string name = node->s(c10::attr::name);
      const std::string path = joinPath(owner->second.path, name);
      const c10::IValue value = owner->second.object->getAttr(name);
      if (value.isObject()) {
        objects_[node->output()] = {path, value.toObject()};
        module_reads_.push_back(node);
      } else if (value.isTensor()) {
        node->output()->replaceAllUsesWith(parameterInput(path, value.toTensor()));
        node->destroy();
      } else {
        torch::jit::WithInsertPoint guard(node);
        auto constant = graph_.insertConstant(value);
        constant->node()->copyMetadata(node);
        node->output()->replaceAllUsesWith(constant);
        node->destroy();
      }
    }
  }

  Value* parameterInput(const std::string& path, const at::Tensor& tensor) {
    auto known = by_tensor_.find(tensor.unsafeGetTensorImpl());
    if (known != by_tensor_.end()) return known->second;
    Value* input = graph_.addInput();
    input->setType(c10::TensorType::create(tensor));
    parameters_.push_back({path, tensor});
    by_tensor_[tensor.unsafeGetTensorImpl()] = input;
    return input;
  }

  torch::jit::Graph& graph_;
  std::unordered_map<const Value*, ObjectRef> objects_;
  std::vector<Node*> module_reads_;
  std::vector<Parameter> parameters_;
  std::unordered_map<const c10::TensorImpl*, Value*> by_tensor_;
};

void flattenOutput(Value* value, std::vector<const Value*>& out) {
  Node* producer = value->node();
  if (producer->kind() == c10::prim::TupleConstruct ||
      producer->kind() == c10::prim::ListConstruct) {
    if (value->type()->kind() == c10::TypeKind::TupleType ||
        value->type()->kind() == c10::TypeKind::ListType) {
      for (Value* element : producer->inputs()) flattenOutput(element, out);
      return;
    }
  }
  if (value->type()->kind() != c10::TypeKind::TensorType)
    throw ExportError(fmt::format(
        "the model returns a {}; mexport exports tensors and tuples or lists of tensors",
        value->type()->str()));
  out.push_back(value);
}

bool recordable(const Value* value) {
  switch (value->type()->kind()) {
    case c10::TypeKind::TensorType:
    case c10::TypeKind::IntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::NumberType:
    case c10::TypeKind::BoolType:
      return true;
    default:
      return false;
  }
}

ValueInfo infoOf(const c10::IValue& value) {
  if (value.isTensor()) return {value.toTensor().scalar_type(), value.toTensor().sizes().vec()};
  if (value.isInt()) return {c10::ScalarType::Long, {}};
  if (value.isDouble()) return {c10::ScalarType::Double, {}};
  if (value.isBool()) return {c10::ScalarType::Bool, {}};
  return {};
}

// Runs the prepared graph once on the example inputs, with every value of the
// top-level block as an extra output, and records dtypes and sizes. The
// executor optimises its own copy of the graph; the extra outputs are removed
// afterwards.
void referenceRun(LoadedModel& model) {
  torch::jit::Graph& graph = *model.prepared.graph;
  // Functions return one value: pack the real outputs and every probed value
  // into one tuple for the run, then put the real outputs back.
  const std::vector<Value*> real_outputs(graph.outputs().begin(), graph.outputs().end());
  std::vector<Value*> returned = real_outputs;
  std::vector<const Value*> probed;
  for (Node* node : graph.nodes())
    for (Value* output : node->outputs())
      if (recordable(output)) {
        returned.push_back(output);
        probed.push_back(output);
      }
  Node* pack = graph.appendNode(graph.createTuple(returned));
  while (!graph.outputs().empty()) graph.eraseOutput(graph.outputs().size() - 1);
  graph.registerOutput(pack->output());
  auto restore = [&] {
    graph.eraseOutput(0);
    pack->destroy();
    for (Value* output : real_outputs) graph.registerOutput(output);
  };

  std::vector<c10::IValue> stack(model.inputs.begin(), model.inputs.end());
  for (const Parameter& p : model.parameters) stack.emplace_back(p.tensor);
  try {
    // Through the graph executor, as module.forward runs: its passes decide some
    // dtypes (a traced 0-d constant becomes a Python scalar that does not
    // promote), so a bare interpreter would disagree with PyTorch.
    c10::InferenceMode guard;
    torch::jit::GraphFunction function("reference", model.prepared.graph, nullptr);
    function.run(stack);
  } catch (const c10::Error& e) {
    restore();
    throw ExportError(fmt::format(
        "the model failed on the example inputs: {}; check the inputs' shapes and dtypes",
        firstLine(e.what_without_backtrace())));
  }
  restore();
  const auto& results = stack.at(0).toTupleRef().elements();
  const size_t first_probe = real_outputs.size();
  std::unordered_map<const Value*, c10::IValue> seen;
  for (size_t i = 0; i < probed.size(); ++i) {
    model.values[probed[i]] = infoOf(results[first_probe + i]);
    seen.emplace(probed[i], results[first_probe + i]);
  }
  for (size_t i = 0; i < graph.inputs().size(); ++i) {
    const at::Tensor& t = i < model.inputs.size()
                              ? model.inputs[i]
                              : model.parameters[i - model.inputs.size()].tensor;
    model.values[graph.inputs()[i]] = {t.scalar_type(), t.sizes().vec()};
    seen.emplace(graph.inputs()[i], t);
  }
  for (const Value* output : model.outputs)
    model.reference_outputs.push_back(seen.at(output).toTensor());
}

bool hasControlFlow(const torch::jit::Block* block) {
  for (const Node* node : block->nodes())
    if (node->kind() == c10::prim::If || node->kind() == c10::prim::Loop) return true;
  return false;
}

}  // namespace

LoadedModel loadModel(const Config& config) {
  namespace fs = std::filesystem;
  if (!fs::is_regular_file(config.model_path))
    throw UsageError(
        fmt::format("model file '{}' not found; trace it with torch.jit.trace(...).save(PATH)",
                    config.model_path));
  LoadedModel model;
  try {
    model.module = torch::jit::load(config.model_path, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    throw ExportError(
        fmt::format("cannot load '{}' as TorchScript ({}); save the model with torch.jit.save "
                    "after torch.jit.trace or torch.jit.script",
                    config.model_path, firstLine(e.what())));
  }
  model.module.eval();
  if (!model.module.find_method("forward"))
    throw ExportError(fmt::format("'{}' has no forward method to export", config.model_path));

  model.prepared.name = config.model_name;
  model.prepared.module = &model.module;
  model.prepared.tree = buildModuleTree(model.module, config.tag_style);

  auto graph = model.module.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  const size_t user_inputs = graph->inputs().size() - 1;
  if (config.inputs.size() != user_inputs)
    throw UsageError(fmt::format("{}: the model's forward takes {} inputs but {} are given",
                                 config.source.empty() ? "command line" : config.source,
                                 user_inputs, config.inputs.size()));
  model.parameters = AttributeResolver(*graph, model.module).run();
  for (size_t i = 0; i < model.parameters.size(); ++i)
    model.prepared.parameters[graph->inputs()[user_inputs + i]] = model.parameters[i].path;
  torch::jit::LowerSimpleTuples(graph);
  torch::jit::EliminateDeadCode(graph);
  model.prepared.graph = graph;
  model.prepared.has_control_flow = hasControlFlow(graph->block());
  for (Value* output : graph->outputs()) flattenOutput(output, model.outputs);

  model.inputs = makeInputs(config.inputs, config.seed);
  referenceRun(model);
  return model;
}

}  // namespace mexport
