#include "model_loader.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/serialization/import.h>

#include <filesystem>
#include <regex>
#include <unordered_set>

#include "graph_rewrites.h"
#include "inputs.h"
#include "mexport/errors.h"
#include "reference_run.h"
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

// Runs `graph`, whose inputs are the prepared graph's (the example inputs,
// then the parameters), on the example inputs.
c10::IValue runOnExampleInputs(const LoadedModel& model,
                               const std::shared_ptr<torch::jit::Graph>& graph) {
  return runGraph(graph, inputStack(model));
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

// Folds what the None and rank checks decided (`if x is not None` branches)
// and int and bool arithmetic on constants; tensors are never folded. Then
// lifts writes out of If and Loop blocks: constant propagation drops a
// loop-carried value the body passes through unchanged, which a written
// tensor is.
void foldConstants(std::shared_ptr<torch::jit::Graph>& graph) {
  torch::jit::ConstantPropagationImmutableTypes(graph);
  torch::jit::EliminateDeadCode(graph);
  liftWritesOutOfBlocks(*graph);
}

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

// Refuses a real run whose example inputs and intermediate values (as the
// meta walk estimates them) would not fit in the memory left: the kernel
// would kill the process without a word.
void checkReferenceFits(const LoadedModel& model, const MetaWalk& walk, ReferenceRun run,
                        const Config& config) {
  int64_t input_bytes = 0;
  for (const at::Tensor& input : model.inputs) input_bytes += static_cast<int64_t>(input.nbytes());
  const std::optional<int64_t> available = availableMemoryBytes();
  if (!available || input_bytes + walk.peak_bytes <= *available) return;
  const bool validation_is_why = run == ReferenceRun::kOutputs && walk.complete;
  throw ExportError(fmt::format(
      "the reference run would need about {:.1f} GB at these example inputs ({:.1f} GB of "
      "inputs, {:.1f} GB of intermediate values at most, reached at {}) but {:.1f} GB of memory "
      "is available; {}smaller example inputs in {}",
      (input_bytes + walk.peak_bytes) / 1e9, input_bytes / 1e9, walk.peak_bytes / 1e9,
      walk.peak_node, *available / 1e9,
      validation_is_why ? "export with --no-validate, which needs no real run, or use " : "use ",
      config.source.empty() ? "the --input flags" : config.source));
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
  graph = withoutTuples(graph);
  foldStaticNoneChecks(graph->block());
  foldConstants(graph);
  for (size_t i = 0; i < model.parameters.size(); ++i)
    model.prepared.parameters[graph->inputs()[user_inputs + i]] = model.parameters[i].path;
  model.prepared.graph = graph;
  model.prepared.has_control_flow = hasControlFlow(graph->block());
  for (Value* output : graph->outputs()) flattenOutput(output, model.outputs);

  // The walk needs the inputs' dtypes and sizes only: an input too big for
  // memory is refused before it is made.
  model.inputs = makeInputs(config.inputs, config.seed, InputValues::kMetaOnly);
  model.timings.emplace_back("prepare", clock.lap());
  MetaWalk walk = walkOnMeta(model, {});
  // These rewrites read the walk's types; the walk then types what they made.
  const bool folded = foldRankChecks(graph->block(), model.values);
  const bool split = splitOptionals(*graph, model.values);
  if (growingListsAsStacks(*graph, model.values) || split || folded) {
    foldConstants(graph);
    model.prepared.has_control_flow = hasControlFlow(graph->block());
    model.outputs.clear();
    for (Value* output : graph->outputs()) flattenOutput(output, model.outputs);
    walk = walkOnMeta(model, {});
  }
  model.timings.emplace_back("shapes", clock.lap());
  if (run == ReferenceRun::kShapes && walk.complete) return model;

  checkReferenceFits(model, walk, run, config);
  model.inputs = makeInputs(config.inputs, config.seed);
  RunRecords records;
  try {
    records = runReference(model, run == ReferenceRun::kOutputs, config.reference_timeout);
  } catch (const c10::Error& e) {
    throw ExportError(describeForwardFailure(model, config, e.what_without_backtrace()));
  } catch (const std::exception& e) {  // the interpreter's own error for an op that failed
    throw ExportError(describeForwardFailure(model, config, e.what()));
  }
  // Values the run did not reach (branches not taken, loops not entered) keep
  // the walk's types, now from the run's exact values where it had them.
  walkOnMeta(model, records);
  model.timings.emplace_back("reference", clock.lap());
  return model;
}

}  // namespace mexport
