// mexport analyze FILE.onnx: the module hierarchy of any ONNX file (ours,
// torch.onnx's, one with hierarchy_tag attributes or none): node counts per
// module (own and total), op types per module, coverage by provenance when our
// metadata is there, and initializer sizes per module.
#include <unistd.h>

#include <fmt/format.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <map>

#include "commands/command_line.h"
#include "commands/commands.h"
#include "inspect/hierarchy.h"
#include "inspect/onnx_file.h"
#include "mexport/errors.h"

namespace mexport {
namespace {

namespace po = boost::program_options;
using Json = nlohmann::ordered_json;
using inspect::Hierarchy;
using inspect::ModuleStats;

const char* kAnalyzeUsage =
    "usage: mexport analyze FILE.onnx [--format summary|tree|json|csv] [--metadata FILE]\n"
    "The module hierarchy of an ONNX file, from its node names (`<tag>/<OpType>`, torch.onnx's\n"
    "`/encoder/layer.0/.../MatMul`), hierarchy_tag attributes or our metadata JSON (found\n"
    "beside the file as <stem>_<strategy>_metadata.json, or given with --metadata).\n";

const char* const kProvenances[] = {"direct", "inferred", "root", "untagged"};

std::string humanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

// "MatMul 2, Add 1": most frequent first, then by name.
std::string histogramText(const std::map<std::string, int64_t>& counts, const char* sep = ", ") {
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (const auto& [name, count] : sorted)
    text += (text.empty() ? "" : sep) + fmt::format("{} {}", name, count);
  return text;
}

std::map<std::string, int64_t> totalOpTypes(const Hierarchy& h) {
  std::map<std::string, int64_t> counts;
  for (const auto& m : h.modules)
    for (const auto& [op, n] : m.op_types) counts[op] += n;
  return counts;
}

// Provenance counts over the whole file; nodes the metadata does not name are
// counted as "not_in_metadata" (a stale or foreign metadata file).
std::map<std::string, int64_t> provenanceCounts(const Hierarchy& h) {
  std::map<std::string, int64_t> counts;
  for (const char* p : kProvenances) counts[p] = 0;
  counts["not_in_metadata"] = 0;
  for (const auto& n : h.nodes) ++counts[n.provenance.empty() ? "not_in_metadata" : n.provenance];
  return counts;
}

struct Analysis {
  std::string path;
  onnx::ModelProto model;
  std::optional<inspect::ExportMetadata> metadata;
  Hierarchy hierarchy;
};

Json initializerJson(const inspect::InitializerStats& s) {
  return {{"count", s.count}, {"elements", s.elements}, {"bytes", s.bytes}};
}

Json opsetsJson(const onnx::ModelProto& model) {
  Json opsets = Json::object();
  for (const auto& o : model.opset_import())
    opsets[o.domain().empty() ? "ai.onnx" : o.domain()] = o.version();
  return opsets;
}

void printJson(const Analysis& a) {
  const Hierarchy& h = a.hierarchy;
  const ModuleStats& root = h.modules[0];
  Json doc;
  doc["file"] = a.path;
  doc["ir_version"] = a.model.ir_version();
  doc["opsets"] = opsetsJson(a.model);
  doc["producer"] = {{"name", a.model.producer_name()}, {"version", a.model.producer_version()}};
  Json inputs = Json::array(), outputs = Json::array();
  for (const auto* in : inspect::realGraphInputs(a.model.graph()))
    inputs.push_back({{"name", in->name()}, {"type", inspect::valueTypeText(*in)}});
  for (const auto& out : a.model.graph().output())
    outputs.push_back({{"name", out.name()}, {"type", inspect::valueTypeText(out)}});
  doc["inputs"] = inputs;
  doc["outputs"] = outputs;
  doc["nodes"] = root.total_nodes;
  doc["initializers"] = initializerJson(root.total_initializers);
  doc["op_types"] = totalOpTypes(h);
  Json sources = Json::object();
  for (auto s : {inspect::TagSource::kNodeName, inspect::TagSource::kAttribute,
                 inspect::TagSource::kMetadata, inspect::TagSource::kNone})
    sources[inspect::tagSourceName(s)] = h.tag_sources.count(s) ? h.tag_sources.at(s) : 0;
  doc["tag_sources"] = sources;
  if (a.metadata) {
    Json coverage = Json::object();
    const auto counts = provenanceCounts(h);
    for (const auto& [p, n] : counts) coverage[p] = n;
    const int64_t tagged = counts.at("direct") + counts.at("inferred") + counts.at("root");
    coverage["total"] = root.total_nodes;
    coverage["tagged_ratio"] =
        root.total_nodes ? static_cast<double>(tagged) / static_cast<double>(root.total_nodes)
                         : 0.0;
    doc["metadata"] = {
        {"path", a.metadata->path}, {"strategy", a.metadata->strategy}, {"coverage", coverage}};
  } else {
    doc["metadata"] = nullptr;
  }
  doc["root"] = root.tag;
  Json modules = Json::array();
  for (int i : h.preorder()) {
    const ModuleStats& m = h.modules[i];
    modules.push_back({{"tag", m.tag},
                       {"name", m.name},
                       {"class", m.class_name},
                       {"parent", m.parent >= 0 ? Json(h.modules[m.parent].tag) : Json()},
                       {"depth", m.depth},
                       {"nodes", {{"own", m.own_nodes}, {"total", m.total_nodes}}},
                       {"op_types", m.op_types},
                       {"provenance", m.provenance},
                       {"initializers",
                        {{"own", initializerJson(m.own_initializers)},
                         {"total", initializerJson(m.total_initializers)}}}});
  }
  doc["modules"] = modules;
  // ONNX strings are bytes and JSON is UTF-8: invalid bytes print as U+FFFD.
  std::cout << doc.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

std::string csvField(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

void printCsv(const Analysis& a) {
  const Hierarchy& h = a.hierarchy;
  std::cout << "tag,parent,depth,class,nodes_own,nodes_total,initializers_own,"
               "initializer_elements_own,initializer_bytes_own,initializer_elements_total,"
               "initializer_bytes_total,direct,inferred,root,untagged,op_types\n";
  for (int i : h.preorder()) {
    const ModuleStats& m = h.modules[i];
    std::string ops;  // "Add:2 MatMul:1", by name: stable for diffs
    for (const auto& [op, n] : m.op_types)
      ops += (ops.empty() ? "" : " ") + fmt::format("{}:{}", op, n);
    auto provenance = [&](const char* p) { return m.provenance.count(p) ? m.provenance.at(p) : 0; };
    std::cout << fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", csvField(m.tag),
        csvField(m.parent >= 0 ? h.modules[m.parent].tag : ""), m.depth, csvField(m.class_name),
        m.own_nodes, m.total_nodes, m.own_initializers.count, m.own_initializers.elements,
        m.own_initializers.bytes, m.total_initializers.elements, m.total_initializers.bytes,
        provenance("direct"), provenance("inferred"), provenance("root"), provenance("untagged"),
        csvField(ops));
  }
}

std::string moduleLine(const ModuleStats& m) {
  std::string line = m.name;
  if (!m.class_name.empty() && m.class_name != m.name) line += " (" + m.class_name + ")";
  line += fmt::format("  {} node{}", m.total_nodes, m.total_nodes == 1 ? "" : "s");
  if (m.own_nodes != m.total_nodes) line += fmt::format(" (own {})", m.own_nodes);
  if (m.total_initializers.count)
    line += fmt::format(", {} params ({})", m.total_initializers.elements,
                        humanBytes(m.total_initializers.bytes));
  if (!m.op_types.empty()) line += "  [" + histogramText(m.op_types) + "]";
  return line;
}

void printTree(const Analysis& a) {
  const Hierarchy& h = a.hierarchy;
  // Box-drawing characters on a terminal, plain ASCII in pipes and files.
  const bool terminal = ::isatty(STDOUT_FILENO) != 0;
  const char* branch = terminal ? "├── " : "|-- ";
  const char* last = terminal ? "└── " : "`-- ";
  const char* pipe = terminal ? "│   " : "|   ";
  const ModuleStats& root = h.modules[0];
  std::cout << root.tag << moduleLine(root).substr(root.name.size()) << "\n";
  // Depth-first with the prefix each level draws.
  struct Item {
    int module;
    std::string prefix;
    bool is_last;
  };
  std::vector<Item> stack;
  const auto push_children = [&](int module, const std::string& prefix) {
    const auto& children = h.modules[module].children;
    for (size_t k = children.size(); k-- > 0;)
      stack.push_back({children[k], prefix, k + 1 == children.size()});
  };
  push_children(0, "");
  while (!stack.empty()) {
    const Item item = stack.back();
    stack.pop_back();
    std::cout << item.prefix << (item.is_last ? last : branch) << moduleLine(h.modules[item.module])
              << "\n";
    push_children(item.module, item.prefix + (item.is_last ? "    " : pipe));
  }
}

void printSummary(const Analysis& a) {
  const Hierarchy& h = a.hierarchy;
  const ModuleStats& root = h.modules[0];
  const auto& graph = a.model.graph();
  std::string producer = a.model.producer_name();
  if (!a.model.producer_version().empty()) producer += " " + a.model.producer_version();
  fmt::print("{}: ONNX IR {}, opset {}, producer {}\n", a.path, a.model.ir_version(),
             inspect::defaultOpset(a.model), producer.empty() ? "unknown" : producer);
  fmt::print("  {} nodes, {} initializers ({} values, {}), {} inputs, {} outputs\n",
             root.total_nodes, root.total_initializers.count, root.total_initializers.elements,
             humanBytes(root.total_initializers.bytes), inspect::realGraphInputs(graph).size(),
             graph.output_size());
  std::map<std::string, int> external_data;  // data file -> initializers stored in it
  for (const auto& init : graph.initializer())
    if (init.data_location() == onnx::TensorProto::EXTERNAL)
      for (const auto& entry : init.external_data())
        if (entry.key() == "location") ++external_data[entry.value()];
  for (const auto& [location, count] : external_data)
    fmt::print("  external data: {} initializers in {}\n", count, location);
  auto source = [&](inspect::TagSource s) {
    return h.tag_sources.count(s) ? h.tag_sources.at(s) : 0;
  };
  fmt::print(
      "  tags: node names {}, hierarchy_tag attributes {}, metadata {}, none {} (on the root)\n",
      source(inspect::TagSource::kNodeName), source(inspect::TagSource::kAttribute),
      source(inspect::TagSource::kMetadata), source(inspect::TagSource::kNone));
  if (a.metadata) {
    const auto counts = provenanceCounts(h);
    const int64_t tagged = counts.at("direct") + counts.at("inferred") + counts.at("root");
    fmt::print("  metadata: {} (strategy {})\n", a.metadata->path,
               a.metadata->strategy.empty() ? "?" : a.metadata->strategy);
    fmt::print("  coverage: {:.1f}% tagged: direct {}, inferred {}, root {}, untagged {}",
               root.total_nodes ? 100.0 * tagged / root.total_nodes : 0.0, counts.at("direct"),
               counts.at("inferred"), counts.at("root"), counts.at("untagged"));
    if (counts.at("not_in_metadata"))
      fmt::print(", not in metadata {} (is the metadata of another export?)",
                 counts.at("not_in_metadata"));
    fmt::print("\n");
  } else {
    fmt::print("  metadata: none found (coverage by provenance needs --metadata FILE)\n");
  }
  int max_depth = 0, with_nodes = 0;
  for (const auto& m : h.modules) {
    max_depth = std::max(max_depth, m.depth);
    with_nodes += m.own_nodes > 0;
  }
  fmt::print("  modules: {} ({} with nodes of their own), depth {}, root {}\n", h.modules.size(),
             with_nodes, max_depth, root.tag);
  fmt::print("  op types: {}\n", histogramText(totalOpTypes(h)));
  std::vector<int> order = h.preorder();
  std::stable_sort(order.begin(), order.end(),
                   [&](int x, int y) { return h.modules[x].own_nodes > h.modules[y].own_nodes; });
  const size_t shown = std::min<size_t>(order.size(), 10);
  fmt::print("  largest modules by own nodes (own / total nodes, parameters):\n");
  for (size_t k = 0; k < shown && h.modules[order[k]].own_nodes > 0; ++k) {
    const ModuleStats& m = h.modules[order[k]];
    fmt::print("    {}  {} / {}, {}\n", m.tag, m.own_nodes, m.total_nodes,
               m.total_initializers.elements);
  }
  fmt::print("  (mexport analyze {} --format tree for the whole tree)\n", a.path);
}

}  // namespace

int runAnalyzeCommand(const CommandArgs& args) {
  po::options_description options("analyze options");
  options.add_options()("format", po::value<std::string>()->default_value("summary"),
                        "summary | tree | json | csv")(
      "metadata", po::value<std::string>()->default_value(""),
      "metadata JSON of the export (default: <stem>_<strategy>_metadata.json beside FILE)");
  const ParsedCommandLine parsed = parseCommandLine(args, options);
  if (parsed.help) {
    std::cout << kAnalyzeUsage << options;
    return 0;
  }
  const auto& vm = parsed.options;
  const std::vector<std::string>& files = parsed.files;
  if (files.size() != 1)
    throw UsageError(
        "analyze takes one FILE.onnx; usage: mexport analyze FILE.onnx "
        "[--format summary|tree|json|csv] [--metadata FILE]");
  const std::string format = vm["format"].as<std::string>();
  if (format != "summary" && format != "tree" && format != "json" && format != "csv")
    throw UsageError("analyze: unknown --format '" + format + "'; use summary, tree, json or csv");

  Analysis a;
  a.path = files[0];
  a.model = inspect::readOnnxFile(a.path);
  a.metadata = inspect::loadMetadata(a.path, a.model, vm["metadata"].as<std::string>());
  a.hierarchy = inspect::buildHierarchy(a.model, a.metadata ? &*a.metadata : nullptr);
  if (format == "json")
    printJson(a);
  else if (format == "csv")
    printCsv(a);
  else if (format == "tree")
    printTree(a);
  else
    printSummary(a);
  return 0;
}

}  // namespace mexport
