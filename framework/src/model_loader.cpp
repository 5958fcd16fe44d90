#include "model_loader.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/canonicalize_graph_fuser_ops.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/lower_tuples.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/csrc/jit/serialization/import.h>

#include <filesystem>
#include <regex>
#include <unordered_set>

#include "inputs.h"
#include "meta_kernels.h"
#include "mexport/errors.h"
#include "stopwatch.h"
#include "weight_buffers.h"

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

// The graph's inputs for a run: the example inputs, then the parameters.
std::vector<c10::IValue> inputStack(const LoadedModel& model) {
  std::vector<c10::IValue> stack(model.inputs.begin(), model.inputs.end());
  for (const Parameter& p : model.parameters) stack.emplace_back(p.tensor);
  return stack;
}

// --- values inside prim::If / prim::Loop blocks ---------------------------------
//
// The graph executor returns top-level values only. To record the values of
// blocks, a copy of the graph is rewritten so that each of them escapes to the
// top level: an If gains an output (its other branches return
// prim::Uninitialized), a Loop a carried value (initially Uninitialized) that
// ends up holding the last iteration's value. A branch that the example inputs
// do not take is recorded by further runs in which the If's condition (and
// those of the Ifs around it) is forced to a constant.

// A copy of the prepared graph and the prepared value each copied value is.
struct GraphCopy {
  std::shared_ptr<torch::jit::Graph> graph;
  std::unordered_map<const Value*, const Value*> original;  // copy -> prepared
  std::unordered_map<const Node*, Node*> copy_of;           // prepared -> copy
};

void mapBlock(const torch::jit::Block* from, torch::jit::Block* to, GraphCopy& copy) {
  for (size_t i = 0; i < from->inputs().size(); ++i)
    copy.original[to->inputs()[i]] = from->inputs()[i];
  auto it = to->nodes().begin();
  for (const Node* node : from->nodes()) {
    Node* twin = *it++;
    copy.copy_of[node] = twin;
    for (size_t i = 0; i < node->outputs().size(); ++i)
      copy.original[twin->outputs()[i]] = node->outputs()[i];
    for (size_t b = 0; b < node->blocks().size(); ++b)
      mapBlock(node->blocks()[b], twin->blocks()[b], copy);
  }
}

GraphCopy copyGraph(torch::jit::Graph& graph) {
  GraphCopy copy;
  copy.graph = graph.copy();
  mapBlock(graph.block(), copy.graph->block(), copy);
  return copy;
}

// Makes `value` visible at the top level of its graph (see above) and
// returns the top-level value that carries it.
Value* escapeToTop(Value* value) {
  torch::jit::Block* block = value->node()->owningBlock();
  Node* owner = block->owningNode();
  if (owner == nullptr) return value;
  torch::jit::Graph& graph = *owner->owningGraph();
  auto uninitialized = [&](Node* before) {
    torch::jit::WithInsertPoint guard(before);
    return graph.insertNode(graph.createUninitialized(value->type()))->output();
  };
  if (owner->kind() == c10::prim::If) {
    for (torch::jit::Block* branch : owner->blocks())
      branch->registerOutput(branch == block ? value : uninitialized(branch->return_node()));
  } else if (owner->kind() == c10::prim::Loop) {
    owner->addInput(uninitialized(owner));
    block->addInput()->setType(value->type());
    block->registerOutput(value);
  } else {
    return nullptr;
  }
  return escapeToTop(owner->addOutput()->setType(value->type()));
}

// The recordable values of a block and of the blocks nested in it.
void blockValues(torch::jit::Block* block, std::vector<Value*>& out) {
  for (Value* input : block->inputs())
    if (recordable(input)) out.push_back(input);
  for (Node* node : block->nodes()) {
    for (Value* output : node->outputs())
      if (recordable(output)) out.push_back(output);
    for (torch::jit::Block* sub : node->blocks()) blockValues(sub, out);
  }
}

// Runs `graph` on `stack` and returns its one output. The graph executor, as
// module.forward uses, turns a traced 0-d constant operand back into the
// Python scalar it was (CanonicalizeOps), which does not promote: int64 * 2.5
// is float32, not float64. The rest of what it does (profiling, optimising a
// copy) took 80 ms of BERT-base's shapes run, so the interpreter runs a
// canonicalised copy instead.
c10::IValue runGraph(const std::shared_ptr<torch::jit::Graph>& graph,
                     std::vector<c10::IValue> stack) {
  c10::InferenceMode inference;
  const std::shared_ptr<torch::jit::Graph> canonical = graph->copy();
  torch::jit::CanonicalizeOps(canonical);
  torch::jit::Code code(canonical, "forward");
  torch::jit::InterpreterState(code).run(stack);
  return stack.at(0);
}

// Runs `graph`, whose inputs are the prepared graph's (the example inputs,
// then the parameters), on the example inputs.
c10::IValue runOnExampleInputs(const LoadedModel& model,
                               const std::shared_ptr<torch::jit::Graph>& graph) {
  return runGraph(graph, inputStack(model));
}

// One run of a rewritten copy that records every block value it reaches into
// model.values (values already recorded are kept). `forced` maps If nodes of
// the prepared graph to the branch they must take. Returns false when the run
// failed (a forced branch may not work on these inputs).
bool recordBlocksOnce(LoadedModel& model, const std::unordered_map<const Node*, bool>& forced) {
  GraphCopy copy = copyGraph(*model.prepared.graph);
  for (const auto& [node, branch] : forced) {
    Node* twin = copy.copy_of.at(node);
    torch::jit::WithInsertPoint guard(twin);
    twin->replaceInput(0, copy.graph->insertConstant(branch));
  }
  std::vector<Value*> inner;
  for (Node* node : copy.graph->nodes())
    for (torch::jit::Block* block : node->blocks()) blockValues(block, inner);
  std::vector<Value*> returned;
  std::vector<const Value*> probed;
  for (Value* value : inner) {
    auto original = copy.original.find(value);
    Value* top = escapeToTop(value);
    if (top == nullptr || original == copy.original.end()) continue;
    returned.push_back(top);
    probed.push_back(original->second);
  }
  if (returned.empty()) return true;
  while (!copy.graph->outputs().empty()) copy.graph->eraseOutput(copy.graph->outputs().size() - 1);
  copy.graph->registerOutput(copy.graph->appendNode(copy.graph->createTuple(returned))->output());

  c10::IValue packed;
  try {
    packed = runOnExampleInputs(model, copy.graph);
  } catch (const std::exception&) {  // c10::Error and whatever a forced branch throws
    return false;
  }
  const auto& results = packed.toTupleRef().elements();
  for (size_t i = 0; i < probed.size(); ++i) {
    ValueInfo info = infoOf(results[i]);  // an Uninitialized value reads as None
    if (info.dtype != c10::ScalarType::Undefined) model.values.emplace(probed[i], info);
  }
  return true;
}

// The If nodes, at any depth, with a branch whose values are not recorded.
void ifsWithUnrecordedBranch(const torch::jit::Block* block, const LoadedModel& model,
                             std::vector<std::pair<const Node*, bool>>& out) {
  for (const Node* node : block->nodes()) {
    if (node->kind() == c10::prim::If) {
      for (size_t b = 0; b < 2; ++b) {
        for (const Node* inner : node->blocks()[b]->nodes()) {
          bool missing = false;
          for (const Value* output : inner->outputs())
            missing |= recordable(output) && !model.values.count(output);
          if (missing) {
            out.emplace_back(node, b == 0);
            break;
          }
        }
      }
    }
    for (const torch::jit::Block* sub : node->blocks()) ifsWithUnrecordedBranch(sub, model, out);
  }
}

void recordBlockValues(LoadedModel& model) {
  recordBlocksOnce(model, {});
  // One forced run per branch still unknown, each also forcing the Ifs around
  // it; bounded, since every run costs a forward pass.
  const int kMaxForcedRuns = 16;
  std::vector<std::pair<const Node*, bool>> pending;
  ifsWithUnrecordedBranch(model.prepared.graph->block(), model, pending);
  for (int run = 0; run < kMaxForcedRuns && run < static_cast<int>(pending.size()); ++run) {
    const auto& [target, branch] = pending[run];
    std::unordered_map<const Node*, bool> forced = {{target, branch}};
    for (const Node* inner = target; inner->owningBlock()->owningNode() != nullptr;) {
      const Node* outer = inner->owningBlock()->owningNode();
      if (outer->kind() == c10::prim::If)
        forced[outer] = outer->blocks()[0] == inner->owningBlock();
      inner = outer;
    }
    recordBlocksOnce(model, forced);
  }
}

// Runs the prepared graph on `stack` (runGraph), with every value of the
// top-level block as an extra output, and returns those values and the graph
// inputs. The executor runs a copy of the graph; the extra outputs are removed
// afterwards, also when the run throws.
std::unordered_map<const Value*, c10::IValue> runRecordingValues(
    const std::shared_ptr<torch::jit::Graph>& shared_graph, std::vector<c10::IValue> stack) {
  torch::jit::Graph& graph = *shared_graph;
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

  std::unordered_map<const Value*, c10::IValue> seen;
  for (size_t i = 0; i < graph.inputs().size(); ++i) seen.emplace(graph.inputs()[i], stack[i]);
  c10::IValue packed;
  try {
    packed = runGraph(shared_graph, std::move(stack));
  } catch (...) {
    restore();
    throw;
  }
  restore();
  const auto& results = packed.toTupleRef().elements();
  for (size_t i = 0; i < probed.size(); ++i)
    seen.emplace(probed[i], results[real_outputs.size() + i]);
  return seen;
}

// The dtype and sizes of every top-level value from a run on meta tensors:
// every op computes its result's dtype and sizes as on CPU, without the
// arithmetic (BERT-base's forward takes seconds, this a few milliseconds).
// False when the graph needs real values: control flow, an op that reads a
// tensor's contents (item, nonzero), or one with no meta kernel.
bool recordShapesOnMeta(LoadedModel& model) {
  if (model.prepared.has_control_flow) return false;
  registerMissingMetaKernels();
  std::vector<c10::IValue> stack;
  for (const c10::IValue& input : inputStack(model)) {
    const at::Tensor& t = input.toTensor();
    stack.emplace_back(at::empty_strided(t.sizes(), t.strides(), t.options().device(c10::kMeta)));
  }
  std::unordered_map<const Value*, c10::IValue> seen;
  try {
    seen = runRecordingValues(model.prepared.graph, std::move(stack));
  } catch (const std::exception&) {
    return false;
  }
  for (const auto& [value, ivalue] : seen) model.values[value] = infoOf(ivalue);
  return true;
}

// Throws (c10::Error, or the interpreter's std::runtime_error) when the forward fails on the
// example inputs.
void recordReference(LoadedModel& model) {
  const auto seen = runRecordingValues(model.prepared.graph, inputStack(model));
  for (const auto& [value, ivalue] : seen) model.values[value] = infoOf(ivalue);
  if (model.prepared.has_control_flow) recordBlockValues(model);
  for (const Value* output : model.outputs)
    model.reference_outputs.push_back(seen.at(output).toTensor());
}

// The function a prim::CallMethod or prim::CallFunction node calls, if it is
// a graph.
torch::jit::GraphFunction* calleeOf(Node* node) {
  if (node->kind() != c10::prim::CallMethod && node->kind() != c10::prim::CallFunction)
    return nullptr;
  return torch::jit::tryToGraphFunction(node);
}

// Inlines every method and function call, as torch::jit::Inline does, with
// two differences that make it faster:
//  - each callee's graph is inlined as compiled, once, callees first (so every
//    node keeps its whole call stack). Inline inlines each method's optimised
//    graph, optimised on its own: 50 ms of BERT-base's 55.
//  - a function's graph is built by appending, callee bodies included. Inline
//    inserts each body before its call node, and a block whose nodes are
//    inserted one after another at the same place renumbers all its nodes
//    every few dozen: 0.25 s to inline a 192-layer encoder into forward.
class Inliner {
 public:
  // A copy of `source` with every call inlined.
  std::shared_ptr<torch::jit::Graph> inlined(torch::jit::Graph& source) {
    auto result = std::make_shared<torch::jit::Graph>();
    std::unordered_map<Value*, Value*> env;
    for (Value* input : source.inputs()) env[input] = result->addInput()->copyMetadata(input);
    const auto lookup = [&](Value* value) { return env.at(value); };
    for (Node* node : source.nodes()) {
      std::vector<Value*> outputs;
      if (torch::jit::GraphFunction* callee = calleeOf(node)) {
        outputs = appendBody(*result, node, callee, lookup);
      } else {
        Node* copy = result->appendNode(result->createClone(node, lookup));
        for (torch::jit::Block* block : copy->blocks()) inlineInPlace(block);
        outputs.assign(copy->outputs().begin(), copy->outputs().end());
      }
      for (size_t i = 0; i < outputs.size(); ++i) env[node->outputs()[i]] = outputs[i];
    }
    for (Value* output : source.outputs()) result->registerOutput(env.at(output));
    return result;
  }

 private:
  torch::jit::Graph& inlinedCallee(torch::jit::GraphFunction* callee) {
    auto found = graphs_.find(callee);
    if (found != graphs_.end()) return *found->second;
    std::shared_ptr<torch::jit::Graph> graph = inlined(*callee->graph());
    return *graphs_.emplace(callee, std::move(graph)).first->second;
  }

  // Appends the inlined body of `callee` for the call `call`, whose inputs
  // `lookup` maps into `graph`, and returns the values standing for the
  // call's outputs. Call stacks and names are set as inlineCallTo sets them.
  template <typename Lookup>
  std::vector<Value*> appendBody(torch::jit::Graph& graph, Node* call,
                                 torch::jit::GraphFunction* callee, const Lookup& lookup) {
    const torch::jit::InlinedCallStackPtr frame = callFrame(graph, call, callee, lookup);
    std::vector<Value*> arguments;
    for (Value* input : call->inputs()) arguments.push_back(lookup(input));
    if (call->kind() == c10::prim::CallFunction)
      arguments.erase(arguments.begin());  // the function
    Node* last = graph.return_node()->prev();
    std::unordered_map<Value*, Value*> value_map;
    std::vector<Value*> outputs =
        torch::jit::insertGraph(graph, inlinedCallee(callee), arguments, value_map);
    CallStacks stacks{callee, frame, {}};
    for (Node* node = last->next(); node != graph.return_node(); node = node->next())
      stacks.push(node);
    for (size_t i = 0; i < outputs.size(); ++i)
      if (call->output(i)->hasDebugName()) outputs[i]->setDebugName(call->output(i)->debugName());
    return outputs;
  }

  // The call stack inlineCallTo gives a node of `callee`'s body inlined for
  // `call`, which names the module instance the call runs in. libtorch does
  // not export the constructor of that name, so the frame is taken from
  // inlining a one-node body for a copy of the call, then removed.
  template <typename Lookup>
  static torch::jit::InlinedCallStackPtr callFrame(torch::jit::Graph& graph, Node* call,
                                                   torch::jit::GraphFunction* callee,
                                                   const Lookup& lookup) {
    Node* probe = graph.appendNode(graph.createClone(call, lookup));
    if (probe->kind() == c10::prim::CallFunction) probe->removeInput(0);  // the function
    torch::jit::Graph body;
    for (size_t i = 0; i < probe->inputs().size(); ++i) body.addInput();
    Node* marker = body.appendNode(body.create(c10::prim::Uninitialized, 1));
    for (size_t i = 0; i < probe->outputs().size(); ++i) body.registerOutput(marker->output());
    torch::jit::inlineCallTo(probe, callee, &body);
    Node* inlined_marker = graph.return_node()->prev();
    torch::jit::InlinedCallStackPtr frame = *inlined_marker->callstack();
    inlined_marker->destroy();
    return frame;
  }

  // Puts one call's frame under the call stacks of the nodes of its body.
  struct CallStacks {
    torch::jit::GraphFunction* callee;
    torch::jit::InlinedCallStackPtr frame;  // for a node with no stack of its own
    std::unordered_map<torch::jit::InlinedCallStack*, torch::jit::InlinedCallStackPtr> made;

    void push(Node* node) {
      if (const auto stack = node->callstack()) {
        auto found = made.find(stack->get());
        if (found == made.end())
          found = made.emplace(stack->get(),
                               c10::make_intrusive<torch::jit::InlinedCallStack>(
                                   *stack, callee, frame->source_range(), frame->module_instance()))
                      .first;
        node->setCallStack(found->second);
      } else {
        node->setCallStack(frame);
      }
      for (torch::jit::Block* block : node->blocks())
        for (Node* inner : block->nodes()) push(inner);
    }
  };

  // The calls in a block of a control-flow node, inlined where they are.
  void inlineInPlace(torch::jit::Block* block) {
    for (Node* node = block->param_node()->next(); node != block->return_node();) {
      Node* next = node->next();
      if (torch::jit::GraphFunction* callee = calleeOf(node)) {
        if (node->kind() == c10::prim::CallFunction) node->removeInput(0);  // the function
        torch::jit::inlineCallTo(node, callee, &inlinedCallee(callee));
      } else {
        for (torch::jit::Block* sub : node->blocks()) inlineInPlace(sub);
      }
      node = next;
    }
  }

  std::unordered_map<torch::jit::GraphFunction*, std::shared_ptr<torch::jit::Graph>> graphs_;
};

bool hasControlFlow(const torch::jit::Block* block) {
  for (const Node* node : block->nodes())
    if (node->kind() == c10::prim::If || node->kind() == c10::prim::Loop) return true;
  return false;
}

// --- explaining a forward that fails on the example inputs ----------------------

// The reason in a torch error: the interpreter puts it on the last line, after
// its tracebacks ("RuntimeError: The size of tensor a (16) must match ...").
std::string torchReason(const std::string& what) {
  if (what.rfind("The following operation failed in the TorchScript interpreter", 0) != 0)
    return firstLine(what);
  std::string text = what.substr(0, what.find_last_not_of('\n') + 1);
  text = text.substr(text.rfind('\n') + 1);
  static const std::regex kErrorType("^\\w+Error: ");
  return std::regex_replace(text, kErrorType, "");
}

// Whether the prepared graph cut after its first `count` top-level nodes runs
// on the example inputs; every value it computes is an output, so that the
// executor removes none of them.
bool prefixRuns(const LoadedModel& model, size_t count) {
  auto graph = model.prepared.graph->copy();
  while (!graph->outputs().empty()) graph->eraseOutput(graph->outputs().size() - 1);
  const std::vector<Node*> nodes(graph->nodes().begin(), graph->nodes().end());
  for (size_t i = nodes.size(); i-- > count;) nodes[i]->destroy();
  std::vector<Value*> kept;
  for (size_t i = 0; i < count; ++i)
    for (Value* output : nodes[i]->outputs()) kept.push_back(output);
  graph->registerOutput(graph->appendNode(graph->createTuple(kept))->output());
  try {
    runOnExampleInputs(model, graph);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The values `node` reads, those read inside its blocks included.
void valuesRead(const Node* node, std::vector<const Value*>& out) {
  out.insert(out.end(), node->inputs().begin(), node->inputs().end());
  for (const torch::jit::Block* block : node->blocks()) {
    for (const Node* inner : block->nodes()) valuesRead(inner, out);
    valuesRead(block->return_node(), out);
  }
}

// The indices of the example inputs that `node` depends on, nearest first
// (fewest ops in between).
std::vector<size_t> inputsReaching(const Node* node, const torch::jit::Graph& graph,
                                   size_t user_inputs) {
  std::vector<size_t> reached;
  std::unordered_set<const Value*> seen;
  std::vector<const Value*> frontier;
  valuesRead(node, frontier);
  while (!frontier.empty()) {  // breadth first: one op further back per round
    std::vector<const Value*> next;
    for (const Value* value : frontier) {
      if (!seen.insert(value).second) continue;
      if (value->node() == graph.param_node()) {
        if (value->offset() < user_inputs) reached.push_back(value->offset());
      } else {
        valuesRead(value->node(), next);
      }
    }
    frontier = std::move(next);
  }
  return reached;
}

// Names the op where the forward failed and the example inputs that reach
// it: the op is the first top-level node whose prefix of the graph fails,
// found by bisection (a few runs, on this failure path only).
std::string describeForwardFailure(const LoadedModel& model, const Config& config,
                                   const std::string& what) {
  const std::string where = config.source.empty() ? "the --input flags" : config.source;
  const std::string reason = torchReason(what);
  const torch::jit::Graph& graph = *model.prepared.graph;
  const std::vector<const Node*> nodes(graph.nodes().begin(), graph.nodes().end());
  size_t runs = 0, fails = nodes.size();  // prefixes of `runs` nodes run, of `fails` fail
  if (prefixRuns(model, fails))
    return fmt::format("the model failed on the example inputs: {}; check the inputs in {}", reason,
                       where);
  while (fails - runs > 1) {
    const size_t middle = (runs + fails) / 2;
    (prefixRuns(model, middle) ? runs : fails) = middle;
  }
  const Node* failing = nodes[fails - 1];
  std::vector<std::string> inputs;
  for (size_t i : inputsReaching(failing, graph, model.inputs.size()))
    inputs.push_back(fmt::format("'{}' ({} [{}])", config.inputs[i].name,
                                 dtypeName(model.inputs[i].scalar_type()),
                                 fmt::join(model.inputs[i].sizes(), ", ")));
  const std::string location = sourceLocation(*failing);
  return fmt::format(
      "the model failed on the example inputs at {}{}: {}; {}", failing->kind().toQualString(),
      location.empty() ? "" : " (" + location + ")", reason,
      inputs.empty() ? "check the inputs in " + where
                     : fmt::format("the inputs reaching it, nearest first: {}; check their "
                                   "shapes and dtypes in {}",
                                   fmt::join(inputs, ", "), where));
}

}  // namespace

std::string sourceLocation(const torch::jit::Node& node) {
  const auto range = node.sourceRange();
  const auto original = range.findSourceRangeThatGenerated();
  if (auto loc = original.value_or(range).file_line_col())
    return fmt::format("{}:{}", std::get<0>(*loc), std::get<1>(*loc));
  return "";
}

std::unordered_map<const torch::jit::Value*, c10::IValue> probeValues(LoadedModel& model) {
  try {
    return runRecordingValues(model.prepared.graph, inputStack(model));
  } catch (const c10::Error& e) {
    throw ExportError(fmt::format(
        "the model failed on the example inputs: {}; check the inputs' shapes and dtypes",
        firstLine(e.what_without_backtrace())));
  }
}

LoadedModel loadModel(const Config& config, ReferenceRun run) {
  namespace fs = std::filesystem;
  if (!fs::is_regular_file(config.model_path))
    throw UsageError(
        fmt::format("model file '{}' not found; trace it with torch.jit.trace(...).save(PATH)",
                    config.model_path));
  LoadedModel model;
  Stopwatch clock;
  try {
    const WeightBufferScope weight_buffers;
    model.module = torch::jit::load(config.model_path, c10::Device(c10::kCPU));
  } catch (const std::exception& e) {
    throw ExportError(
        fmt::format("cannot load '{}' as TorchScript ({}); save the model with torch.jit.save "
                    "after torch.jit.trace or torch.jit.script",
                    config.model_path, firstLine(e.what())));
  }
  model.timings.emplace_back("load", clock.lap());
  model.module.eval();
  if (!model.module.find_method("forward"))
    throw ExportError(fmt::format("'{}' has no forward method to export", config.model_path));

  model.prepared.name = config.model_name;
  model.prepared.module = &model.module;
  model.prepared.tree = buildModuleTree(model.module, config.tag_style);

  std::shared_ptr<torch::jit::Graph> graph =
      Inliner().inlined(*model.module.get_method("forward").graph());
  const size_t user_inputs = graph->inputs().size() - 1;
  if (config.inputs.size() != user_inputs) {
    std::vector<std::string> arguments, given;
    for (size_t i = 1; i <= user_inputs; ++i)
      arguments.push_back(graph->inputs()[i]->debugNameBase());
    for (const auto& spec : config.inputs) given.push_back(spec.name);
    throw UsageError(fmt::format(
        "{}: the model's forward takes {} inputs ({}) but {} are given ({}); give one input per "
        "forward() argument, in order",
        config.source.empty() ? "command line" : config.source, user_inputs,
        fmt::join(arguments, ", "), config.inputs.size(), fmt::join(given, ", ")));
  }
  model.parameters = AttributeResolver(*graph, model.module).run();
  for (size_t i = 0; i < model.parameters.size(); ++i)
    model.prepared.parameters[graph->inputs()[user_inputs + i]] = model.parameters[i].path;
  torch::jit::LowerSimpleTuples(graph);
  torch::jit::EliminateDeadCode(graph);
  model.prepared.graph = graph;
  model.prepared.has_control_flow = hasControlFlow(graph->block());
  for (Value* output : graph->outputs()) flattenOutput(output, model.outputs);

  model.inputs = makeInputs(config.inputs, config.seed);
  model.timings.emplace_back("prepare", clock.lap());
  if (run == ReferenceRun::kShapes && recordShapesOnMeta(model)) {
    model.timings.emplace_back("shapes", clock.lap());
    return model;
  }
  try {
    recordReference(model);
  } catch (const c10::Error& e) {
    throw ExportError(describeForwardFailure(model, config, e.what_without_backtrace()));
  } catch (const std::exception& e) {  // the interpreter's own error for an op that failed
    throw ExportError(describeForwardFailure(model, config, e.what()));
  }
  model.timings.emplace_back("reference", clock.lap());
  return model;
}

}  // namespace mexport
