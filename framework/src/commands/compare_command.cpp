// mexport compare A.onnx B.onnx: a structural diff of two ONNX files by module
// tag: nodes added / removed / changed per tag, initializers that differ,
// opset and graph input/output differences. Exit 0 when equal, 1 when not.
//
// Two exports of one model by different strategies (or with --clean-onnx)
// have the same nodes and differ only in tags, so node names differ too:
// nodes are matched first by structure (op, attributes and the structure of
// their inputs, whatever the value names), then by name, then by tag, op type
// and order. Such files are "structure equal, tags differ" and exit 0.
#include <fmt/format.h>
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <functional>
#include <iostream>
#include <set>

#include "commands/command_line.h"
#include "commands/commands.h"
#include "inspect/hierarchy.h"
#include "inspect/onnx_file.h"
#include "mexport/errors.h"

namespace mexport {
namespace {

namespace po = boost::program_options;
using Json = nlohmann::ordered_json;

const char* kCompareUsage =
    "usage: mexport compare A.onnx B.onnx [--format text|json]\n"
    "Structural diff by module tag: nodes added/removed/changed per tag, initializers that\n"
    "differ (max abs difference), opset and graph input/output differences.\n"
    "Exit 0 when equal, 1 when different. Two exports of the same model that differ only in\n"
    "tags (another strategy, --clean-onnx) are reported as \"structure equal, tags differ\"\n"
    "and exit 0.\n";

constexpr size_t kTextListLimit = 20;  // items per list in text output; json has all

// One side of the comparison.
struct Side {
  std::string path;
  onnx::ModelProto model;
  inspect::Hierarchy hierarchy;  // nodes with tags, initializer modules
  std::map<std::string, const onnx::TensorProto*> initializers;
  std::set<std::string> graph_inputs;
  std::map<std::string, std::pair<int, int>> producer;  // value -> (node, output index)
  std::vector<size_t> structure;                        // per node: hash of its dataflow cone

  const onnx::NodeProto& node(int i) const { return *hierarchy.nodes[i].node; }
  const std::string& tag(int i) const { return hierarchy.nodes[i].tag; }
  int size() const { return static_cast<int>(hierarchy.nodes.size()); }
};

// An attribute as bytes, without what does not change the computation.
std::string canonicalAttribute(const onnx::AttributeProto& attr) {
  onnx::AttributeProto copy = attr;
  copy.clear_doc_string();
  if (copy.has_t()) {
    copy.mutable_t()->clear_name();
    copy.mutable_t()->clear_doc_string();
  }
  std::string bytes;
  copy.SerializeToString(&bytes);
  return bytes;
}

std::map<std::string, std::string> canonicalAttributes(const onnx::NodeProto& node) {
  std::map<std::string, std::string> attrs;
  for (const auto& attr : node.attribute())
    if (attr.name() != "hierarchy_tag") attrs[attr.name()] = canonicalAttribute(attr);
  return attrs;
}

void loadSide(Side& side, const std::string& path) {
  side.path = path;
  side.model = inspect::readOnnxFile(path);
  side.hierarchy = inspect::buildHierarchy(side.model, nullptr);
  for (const auto& init : side.model.graph().initializer()) side.initializers[init.name()] = &init;
  for (const auto* input : inspect::realGraphInputs(side.model.graph()))
    side.graph_inputs.insert(input->name());
  for (int i = 0; i < side.size(); ++i)
    for (int k = 0; k < side.node(i).output_size(); ++k)
      if (!side.node(i).output(k).empty()) side.producer[side.node(i).output(k)] = {i, k};

  // Structure hash in graph order (topological): op, attributes and, per
  // input, the graph input or initializer name or the producer's hash.
  std::hash<std::string> hash;
  side.structure.resize(side.size());
  for (int i = 0; i < side.size(); ++i) {
    const onnx::NodeProto& node = side.node(i);
    std::string key = node.domain() + "::" + node.op_type();
    for (const auto& [name, bytes] : canonicalAttributes(node)) key += "|a:" + name + "=" + bytes;
    for (const auto& input : node.input()) {
      const auto produced = side.producer.find(input);
      if (input.empty())
        key += "|-";
      else if (produced != side.producer.end() && produced->second.first < i)
        key += fmt::format("|n:{}:{}", side.structure[produced->second.first],
                           produced->second.second);
      else if (side.initializers.count(input))
        key += "|w:" + input;
      else
        key += "|v:" + input;  // graph input, or an outer-scope value of a subgraph
    }
    key += fmt::format("|o:{}", node.output_size());
    side.structure[i] = hash(key);
  }
}

struct NodeMatch {
  std::vector<int> a_to_b, b_to_a;
  int by_structure = 0, by_name = 0, by_tag_and_op = 0;
};

NodeMatch matchNodes(const Side& a, const Side& b) {
  NodeMatch m;
  m.a_to_b.assign(a.size(), -1);
  m.b_to_a.assign(b.size(), -1);
  const auto pair = [&](int i, int j, int& counter) {
    m.a_to_b[i] = j;
    m.b_to_a[j] = i;
    ++counter;
  };
  // Pairs up the unmatched nodes of each group in order, same names first.
  const auto pair_groups = [&](const auto& key_a, const auto& key_b, int& counter) {
    using Key = decltype(key_a(0));
    std::map<Key, std::vector<int>> groups_b;
    for (int j = 0; j < b.size(); ++j)
      if (m.b_to_a[j] < 0) groups_b[key_b(j)].push_back(j);
    std::map<Key, std::vector<int>> groups_a;
    for (int i = 0; i < a.size(); ++i)
      if (m.a_to_b[i] < 0) groups_a[key_a(i)].push_back(i);
    for (auto& [key, members_a] : groups_a) {
      auto found = groups_b.find(key);
      if (found == groups_b.end()) continue;
      std::vector<int>& members_b = found->second;
      std::map<std::string, int> b_by_name;  // names are unique in a valid file
      for (int j : members_b) b_by_name.emplace(b.node(j).name(), j);
      for (int i : members_a) {
        const auto same_name = b_by_name.find(a.node(i).name());
        if (same_name != b_by_name.end() && m.b_to_a[same_name->second] < 0)
          pair(i, same_name->second, counter);
      }
      size_t next = 0;
      for (int i : members_a) {
        if (m.a_to_b[i] >= 0) continue;
        while (next < members_b.size() && m.b_to_a[members_b[next]] >= 0) ++next;
        if (next == members_b.size()) break;
        pair(i, members_b[next++], counter);
      }
    }
  };
  pair_groups([&](int i) { return a.structure[i]; }, [&](int j) { return b.structure[j]; },
              m.by_structure);
  // By name: names are unique in a valid file, so no order is needed.
  std::map<std::string, int> b_by_name;
  for (int j = 0; j < b.size(); ++j)
    if (m.b_to_a[j] < 0 && !b.node(j).name().empty()) b_by_name.emplace(b.node(j).name(), j);
  for (int i = 0; i < a.size(); ++i) {
    if (m.a_to_b[i] >= 0 || a.node(i).name().empty()) continue;
    const auto found = b_by_name.find(a.node(i).name());
    if (found != b_by_name.end() && m.b_to_a[found->second] < 0) pair(i, found->second, m.by_name);
  }
  pair_groups([&](int i) { return a.tag(i) + "\n" + a.node(i).op_type(); },
              [&](int j) { return b.tag(j) + "\n" + b.node(j).op_type(); }, m.by_tag_and_op);
  return m;
}

// "x (from /m/MatMul)" for a value a node reads.
std::string describeInput(const Side& side, const std::string& value) {
  if (value.empty()) return "(none)";
  const auto produced = side.producer.find(value);
  if (produced != side.producer.end())
    return fmt::format("'{}' (output {} of {})", value, produced->second.second,
                       side.node(produced->second.first).name());
  if (side.initializers.count(value)) return "initializer '" + value + "'";
  if (side.graph_inputs.count(value)) return "graph input '" + value + "'";
  return "'" + value + "'";
}

// Why two matched nodes differ; empty when they compute the same thing.
std::vector<std::string> nodeDifferences(const Side& a, const Side& b, const NodeMatch& m, int i,
                                         int j) {
  std::vector<std::string> reasons;
  const onnx::NodeProto& na = a.node(i);
  const onnx::NodeProto& nb = b.node(j);
  if (na.op_type() != nb.op_type() || na.domain() != nb.domain())
    reasons.push_back("op type " + na.op_type() + " -> " + nb.op_type());
  const auto attrs_a = canonicalAttributes(na), attrs_b = canonicalAttributes(nb);
  for (const auto& [name, bytes] : attrs_a) {
    const auto found = attrs_b.find(name);
    if (found == attrs_b.end())
      reasons.push_back("attribute " + name + " removed");
    else if (found->second != bytes)
      reasons.push_back("attribute " + name + " changed");
  }
  for (const auto& [name, bytes] : attrs_b)
    if (!attrs_a.count(name)) reasons.push_back("attribute " + name + " added");
  if (na.input_size() != nb.input_size())
    reasons.push_back(fmt::format("{} inputs -> {}", na.input_size(), nb.input_size()));
  for (int k = 0; k < std::min(na.input_size(), nb.input_size()); ++k) {
    const std::string &va = na.input(k), &vb = nb.input(k);
    const auto pa = a.producer.find(va), pb = b.producer.find(vb);
    bool same;
    if (pa != a.producer.end() || pb != b.producer.end())
      same = pa != a.producer.end() && pb != b.producer.end() &&
             m.a_to_b[pa->second.first] == pb->second.first &&
             pa->second.second == pb->second.second;
    else
      same = va == vb;  // initializers and graph inputs by name, or both empty
    if (!same)
      reasons.push_back(
          fmt::format("input {}: {} -> {}", k, describeInput(a, va), describeInput(b, vb)));
  }
  if (na.output_size() != nb.output_size())
    reasons.push_back(fmt::format("{} outputs -> {}", na.output_size(), nb.output_size()));
  return reasons;
}

struct InitializerDiff {
  std::string name, what, module;
  std::optional<double> max_abs_diff;
};

std::optional<InitializerDiff> compareInitializer(const Side& a, const Side& b,
                                                  const onnx::TensorProto& ta,
                                                  const onnx::TensorProto& tb) {
  InitializerDiff diff;
  diff.name = ta.name();
  diff.module = a.hierarchy.modules[a.hierarchy.initializer_module.at(ta.name())].tag;
  const std::string type_a = inspect::dataTypeName(ta.data_type()) + inspect::shapeText(ta);
  const std::string type_b = inspect::dataTypeName(tb.data_type()) + inspect::shapeText(tb);
  if (type_a != type_b) {
    diff.what = type_a + " -> " + type_b;
    return diff;
  }
  // Same raw bytes: equal without decoding (large models keep raw_data).
  if (ta.has_raw_data() && tb.has_raw_data() && ta.raw_data() == tb.raw_data() &&
      ta.data_location() != onnx::TensorProto::EXTERNAL &&
      tb.data_location() != onnx::TensorProto::EXTERNAL)
    return std::nullopt;
  const auto va = inspect::tensorValues(ta, a.path), vb = inspect::tensorValues(tb, b.path);
  if (!va || !vb) {  // strings, complex or unreadable data: compare the bytes
    onnx::TensorProto ca = ta, cb = tb;
    ca.clear_doc_string();
    cb.clear_doc_string();
    std::string bytes_a, bytes_b;
    ca.SerializeToString(&bytes_a);
    cb.SerializeToString(&bytes_b);
    if (bytes_a == bytes_b) return std::nullopt;
    diff.what = type_a + ": contents differ";
    return diff;
  }
  double max_diff = 0;
  bool differs = false;
  for (size_t k = 0; k < va->size(); ++k) {
    const double x = (*va)[k], y = (*vb)[k];
    if (x == y || (std::isnan(x) && std::isnan(y))) continue;
    differs = true;
    max_diff = std::max(max_diff, std::isnan(x) || std::isnan(y) ? INFINITY : std::fabs(x - y));
  }
  if (!differs) return std::nullopt;
  diff.what = type_a;
  diff.max_abs_diff = max_diff;
  return diff;
}

struct IoDiff {
  std::string kind;  // input or output
  int index;
  std::string a, b;  // "name type", "" when absent
};

std::vector<IoDiff> compareIo(const std::string& kind,
                              const std::vector<const onnx::ValueInfoProto*>& a,
                              const std::vector<const onnx::ValueInfoProto*>& b) {
  std::vector<IoDiff> diffs;
  const auto text = [](const onnx::ValueInfoProto* v) {
    return v->name() + " " + inspect::valueTypeText(*v);
  };
  for (size_t k = 0; k < std::max(a.size(), b.size()); ++k) {
    const std::string ta = k < a.size() ? text(a[k]) : "", tb = k < b.size() ? text(b[k]) : "";
    if (ta != tb) diffs.push_back({kind, static_cast<int>(k), ta, tb});
  }
  return diffs;
}

std::vector<const onnx::ValueInfoProto*> graphOutputs(const onnx::GraphProto& graph) {
  std::vector<const onnx::ValueInfoProto*> outputs;
  for (const auto& out : graph.output()) outputs.push_back(&out);
  return outputs;
}

std::map<std::string, int64_t> opsets(const onnx::ModelProto& model) {
  std::map<std::string, int64_t> versions;
  for (const auto& o : model.opset_import())
    versions[o.domain().empty() ? "ai.onnx" : o.domain()] = o.version();
  return versions;
}

// What differs between A and B.
struct Comparison {
  struct ModuleDiff {
    std::vector<int> removed, changed;  // A node indices
    std::vector<int> added;             // B node indices
  };
  bool ir_differs = false;
  std::map<std::string, int64_t> opsets_a, opsets_b;
  int opset_differences = 0;
  std::vector<IoDiff> io;
  NodeMatch match;
  int matched = 0, removed = 0, added = 0, changed = 0, tags_differ = 0;
  std::map<std::string, ModuleDiff> modules;                // by A's tag; B's for added nodes
  std::map<int, std::vector<std::string>> changed_reasons;  // by A node index
  std::map<std::pair<std::string, std::string>, int> tag_changes;  // (A tag, B tag) -> nodes
  std::vector<std::string> initializers_removed, initializers_added;
  std::vector<InitializerDiff> initializers_differ;

  bool structureEqual() const {
    return !ir_differs && opset_differences == 0 && io.empty() && removed == 0 && added == 0 &&
           changed == 0 && initializers_removed.empty() && initializers_added.empty() &&
           initializers_differ.empty();
  }
};

Comparison compareModels(const Side& a, const Side& b) {
  Comparison c;
  c.ir_differs = a.model.ir_version() != b.model.ir_version();
  c.opsets_a = opsets(a.model);
  c.opsets_b = opsets(b.model);
  std::set<std::string> domains;
  for (const auto& [domain, version] : c.opsets_a) domains.insert(domain);
  for (const auto& [domain, version] : c.opsets_b) domains.insert(domain);
  for (const auto& domain : domains)
    c.opset_differences += !c.opsets_a.count(domain) || !c.opsets_b.count(domain) ||
                           c.opsets_a.at(domain) != c.opsets_b.at(domain);
  c.io = compareIo("input", inspect::realGraphInputs(a.model.graph()),
                   inspect::realGraphInputs(b.model.graph()));
  for (auto& d : compareIo("output", graphOutputs(a.model.graph()), graphOutputs(b.model.graph())))
    c.io.push_back(d);

  c.match = matchNodes(a, b);
  for (int i = 0; i < a.size(); ++i) {
    const int j = c.match.a_to_b[i];
    if (j < 0) {
      c.modules[a.tag(i)].removed.push_back(i);
      ++c.removed;
      continue;
    }
    ++c.matched;
    auto reasons = nodeDifferences(a, b, c.match, i, j);
    if (!reasons.empty()) {
      c.modules[a.tag(i)].changed.push_back(i);
      c.changed_reasons[i] = std::move(reasons);
      ++c.changed;
    }
    if (a.tag(i) != b.tag(j)) {
      ++c.tags_differ;
      ++c.tag_changes[{a.tag(i), b.tag(j)}];
    }
  }
  for (int j = 0; j < b.size(); ++j)
    if (c.match.b_to_a[j] < 0) {
      c.modules[b.tag(j)].added.push_back(j);
      ++c.added;
    }

  for (const auto& [name, tensor] : a.initializers) {
    const auto found = b.initializers.find(name);
    if (found == b.initializers.end())
      c.initializers_removed.push_back(name);
    else if (auto diff = compareInitializer(a, b, *tensor, *found->second))
      c.initializers_differ.push_back(std::move(*diff));
  }
  for (const auto& [name, tensor] : b.initializers)
    if (!a.initializers.count(name)) c.initializers_added.push_back(name);
  return c;
}

// "equal", "structure equal, tags differ (N nodes)" or "different: 1 node removed, ...".
std::string resultText(const Comparison& c) {
  if (c.structureEqual())
    return c.tags_differ ? fmt::format("structure equal, tags differ ({} node{})", c.tags_differ,
                                       c.tags_differ == 1 ? "" : "s")
                         : "equal";
  std::vector<std::string> parts;
  const auto count = [&](size_t n, const char* one, const char* many) {
    if (n) parts.push_back(fmt::format("{} {}", n, n == 1 ? one : many));
  };
  count(c.removed, "node removed", "nodes removed");
  count(c.added, "node added", "nodes added");
  count(c.changed, "node changed", "nodes changed");
  count(c.initializers_differ.size(), "initializer differs", "initializers differ");
  count(c.initializers_removed.size(), "initializer removed", "initializers removed");
  count(c.initializers_added.size(), "initializer added", "initializers added");
  count(c.opset_differences, "opset difference", "opset differences");
  count(c.io.size(), "graph input/output difference", "graph input/output differences");
  count(c.ir_differs ? 1 : 0, "IR version difference", "IR version differences");
  return fmt::format("different: {}", fmt::join(parts, ", "));
}

// "a.onnx" side summary for both formats.
Json sideJson(const Side& s) {
  Json opset_json = Json::object();
  for (const auto& [domain, version] : opsets(s.model)) opset_json[domain] = version;
  return {{"file", s.path},
          {"nodes", s.size()},
          {"initializers", s.model.graph().initializer_size()},
          {"ir_version", s.model.ir_version()},
          {"opsets", opset_json}};
}

std::string opsetText(const std::map<std::string, int64_t>& versions) {
  std::string text;
  for (const auto& [domain, version] : versions)
    text += (text.empty() ? "" : ", ") + fmt::format("{} {}", domain, version);
  return text.empty() ? "none" : text;
}

template <typename T, typename Fn>
void printLimited(const std::vector<T>& items, Fn print_item, const std::string& indent) {
  for (size_t k = 0; k < items.size() && k < kTextListLimit; ++k) print_item(items[k]);
  if (items.size() > kTextListLimit)
    fmt::print("{}... and {} more (--format json lists all)\n", indent,
               items.size() - kTextListLimit);
}

Json nodeJson(const Side& s, int i) {
  return Json{{"name", s.node(i).name()}, {"op_type", s.node(i).op_type()}};
}

void printJson(const Side& a, const Side& b, const Comparison& c) {
  Json doc;
  doc["a"] = sideJson(a);
  doc["b"] = sideJson(b);
  doc["result"] =
      c.structureEqual() ? (c.tags_differ ? "structure equal, tags differ" : "equal") : "different";
  doc["equal"] = c.structureEqual() && c.tags_differ == 0;
  doc["structure_equal"] = c.structureEqual();
  doc["summary"] = resultText(c);
  doc["ir_version"] =
      c.ir_differs ? Json{{"a", a.model.ir_version()}, {"b", b.model.ir_version()}} : Json();
  Json opset_diffs = Json::array();
  for (const auto& [domain, version] : c.opsets_a)
    if (!c.opsets_b.count(domain) || c.opsets_b.at(domain) != version)
      opset_diffs.push_back(
          {{"domain", domain},
           {"a", version},
           {"b", c.opsets_b.count(domain) ? Json(c.opsets_b.at(domain)) : Json()}});
  for (const auto& [domain, version] : c.opsets_b)
    if (!c.opsets_a.count(domain))
      opset_diffs.push_back({{"domain", domain}, {"a", nullptr}, {"b", version}});
  doc["opsets"] = opset_diffs;
  Json io_json = Json::array();
  for (const auto& d : c.io)
    io_json.push_back({{"kind", d.kind},
                       {"index", d.index},
                       {"a", d.a.empty() ? Json() : Json(d.a)},
                       {"b", d.b.empty() ? Json() : Json(d.b)}});
  doc["io"] = io_json;
  doc["nodes"] = {{"matched", c.matched},
                  {"removed", c.removed},
                  {"added", c.added},
                  {"changed", c.changed},
                  {"tags_differ", c.tags_differ},
                  {"matched_by",
                   {{"structure", c.match.by_structure},
                    {"name", c.match.by_name},
                    {"tag_and_op_type", c.match.by_tag_and_op}}}};
  Json module_json = Json::array();
  for (const auto& [tag, d] : c.modules) {
    Json removed = Json::array(), added = Json::array(), changed = Json::array();
    for (int i : d.removed) removed.push_back(nodeJson(a, i));
    for (int j : d.added) added.push_back(nodeJson(b, j));
    for (int i : d.changed) {
      Json entry = nodeJson(a, i);
      entry["b_name"] = b.node(c.match.a_to_b[i]).name();
      entry["reasons"] = c.changed_reasons.at(i);
      changed.push_back(entry);
    }
    module_json.push_back(
        {{"tag", tag}, {"removed", removed}, {"added", added}, {"changed", changed}});
  }
  doc["modules"] = module_json;
  Json tag_json = Json::array();
  for (const auto& [tags, n] : c.tag_changes)
    tag_json.push_back({{"a", tags.first}, {"b", tags.second}, {"nodes", n}});
  doc["tag_changes"] = tag_json;
  Json differ_json = Json::array();
  for (const auto& d : c.initializers_differ)
    differ_json.push_back({{"name", d.name},
                           {"type", d.what},
                           {"module", d.module},
                           {"max_abs_diff", d.max_abs_diff ? Json(*d.max_abs_diff) : Json()}});
  doc["initializers"] = {{"a", a.initializers.size()},
                         {"b", b.initializers.size()},
                         {"removed", c.initializers_removed},
                         {"added", c.initializers_added},
                         {"differ", differ_json}};
  // ONNX strings are bytes and JSON is UTF-8: invalid bytes print as U+FFFD.
  std::cout << doc.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

void printText(const Side& a, const Side& b, const Comparison& c) {
  for (const Side* s : {&a, &b})
    fmt::print("{}: {} ({} nodes, {} initializers, IR {}, {})\n", s == &a ? "A" : "B", s->path,
               s->size(), s->initializers.size(), s->model.ir_version(),
               opsetText(opsets(s->model)));
  if (c.ir_differs)
    fmt::print("IR version: {} -> {}\n", a.model.ir_version(), b.model.ir_version());
  if (c.opset_differences)
    fmt::print("opsets: {} -> {}\n", opsetText(c.opsets_a), opsetText(c.opsets_b));
  for (const auto& d : c.io)
    fmt::print("graph {} {}: {} -> {}\n", d.kind, d.index, d.a.empty() ? "(none)" : d.a,
               d.b.empty() ? "(none)" : d.b);
  fmt::print(
      "nodes: {} matched ({} by structure, {} by name, {} by tag and op type), "
      "{} removed, {} added, {} changed; tags differ on {}\n",
      c.matched, c.match.by_structure, c.match.by_name, c.match.by_tag_and_op, c.removed, c.added,
      c.changed, c.tags_differ);
  for (const auto& [tag, d] : c.modules) {
    fmt::print("  {}:\n", tag);
    const auto removed = [&](int i) {
      fmt::print("    removed {} ({})\n", a.node(i).op_type(), a.node(i).name());
    };
    const auto added = [&](int j) {
      fmt::print("    added {} ({})\n", b.node(j).op_type(), b.node(j).name());
    };
    const auto changed = [&](int i) {
      fmt::print("    changed {} ({}): {}\n", a.node(i).op_type(), a.node(i).name(),
                 fmt::join(c.changed_reasons.at(i), "; "));
    };
    printLimited(d.removed, removed, "    ");
    printLimited(d.added, added, "    ");
    printLimited(d.changed, changed, "    ");
  }
  if (c.tags_differ) {
    const std::vector<std::pair<std::pair<std::string, std::string>, int>> tag_list(
        c.tag_changes.begin(), c.tag_changes.end());
    fmt::print("tags differ (A tag -> B tag: nodes):\n");
    printLimited(
        tag_list,
        [](const auto& t) {
          fmt::print("  {} -> {}: {}\n", t.first.first, t.first.second, t.second);
        },
        "  ");
  }
  fmt::print("initializers: {} in A, {} in B: {} differ, {} removed, {} added\n",
             a.initializers.size(), b.initializers.size(), c.initializers_differ.size(),
             c.initializers_removed.size(), c.initializers_added.size());
  const auto differs = [](const InitializerDiff& d) {
    fmt::print("  differs {} {}{} (in {})\n", d.name, d.what,
               d.max_abs_diff ? fmt::format(": max abs diff {:.6g}", *d.max_abs_diff) : "",
               d.module);
  };
  printLimited(c.initializers_differ, differs, "  ");
  printLimited(
      c.initializers_removed, [](const std::string& n) { fmt::print("  removed {}\n", n); }, "  ");
  printLimited(
      c.initializers_added, [](const std::string& n) { fmt::print("  added {}\n", n); }, "  ");
  fmt::print("result: {}\n", resultText(c));
}

}  // namespace

int runCompareCommand(const CommandArgs& args) {
  po::options_description options("compare options");
  options.add_options()("format", po::value<std::string>()->default_value("text"), "text | json");
  const ParsedCommandLine parsed = parseCommandLine(args, options);
  if (parsed.help) {
    std::cout << kCompareUsage << options;
    return 0;
  }
  const auto& vm = parsed.options;
  const std::vector<std::string>& files = parsed.files;
  if (files.size() != 2)
    throw UsageError(
        "compare takes two files; usage: mexport compare A.onnx B.onnx "
        "[--format text|json]");
  const std::string format = vm["format"].as<std::string>();
  if (format != "text" && format != "json")
    throw UsageError("compare: unknown --format '" + format + "'; use text or json");

  Side a, b;
  loadSide(a, files[0]);
  loadSide(b, files[1]);

  const Comparison comparison = compareModels(a, b);
  if (format == "json")
    printJson(a, b, comparison);
  else
    printText(a, b, comparison);
  return comparison.structureEqual() ? 0 : 1;
}

}  // namespace mexport
