// <stem>_<strategy>_metadata.json: the module hierarchy, every ONNX node's tag
// and provenance, coverage, strategy attempts and timings.
#include <nlohmann/json.hpp>

#include "emitters/builtin_emitters.h"

namespace mexport {
namespace {

using Json = nlohmann::ordered_json;

const char* hierarchyName(HierarchyMode mode) {
  switch (mode) {
    case HierarchyMode::kTags:
      return "tags";
    case HierarchyMode::kAttributes:
      return "attributes";
    case HierarchyMode::kNone:
      return "none";
  }
  return "tags";
}

class MetadataEmitter final : public Emitter {
 public:
  std::string name() const override { return "metadata"; }

  void emit(const ExportResult& r, const EmitterOptions&, OutputFiles& out) const override {
    Json doc;
    doc["tool"] = {{"name", "mexport"}, {"version", r.tool_version}};
    doc["model"] = {{"name", r.settings.model_name},
                    {"path", r.settings.model_path},
                    {"class", r.tree.at(ModuleTree::kRoot).class_name},
                    {"parameters", r.tree.totalParameters(ModuleTree::kRoot)}};
    doc["export"] = {{"strategy", r.strategy},
                     {"opset", r.settings.opset},
                     {"hierarchy", hierarchyName(r.settings.hierarchy)},
                     {"tag_style", r.settings.tag_style == TagStyle::kClass ? "class" : "path"},
                     {"output", r.settings.output_path}};
    Json modules = Json::array();
    for (int i = 0; i < r.tree.size(); ++i) {
      const ModuleInfo& m = r.tree.at(i);
      modules.push_back(
          {{"path", m.path},
           {"class", m.class_name},
           {"qualified_type", m.qualified_type},
           {"tag", m.tag},
           {"parameters", r.tree.totalParameters(i)},
           {"execution_order", r.execution_order[i] >= 0 ? Json(r.execution_order[i]) : Json()},
           {"nodes", r.module_nodes[i]}});
    }
    doc["modules"] = std::move(modules);
    Json nodes = Json::object();
    // Node names are unique, so entries are appended as they are: operator[]
    // of an ordered_json object searches its keys linearly, which made this
    // loop quadratic in the node count.
    auto& entries = nodes.get_ref<Json::object_t&>();
    const auto& onnx_nodes = r.model.graph().node();
    entries.reserve(onnx_nodes.size() + r.subgraph_nodes.size());
    const auto entry = [&](const OnnxNodeInfo& n) {
      return Json{{"tag", n.module >= 0 ? r.tree.at(n.module).tag : ""},
                  {"provenance", provenanceName(n.provenance)},
                  {"source", n.source_op}};
    };
    // Each main-graph node, then the nodes of its If / Loop bodies, which
    // also name the body they are in.
    auto inner = r.subgraph_nodes.begin();
    for (int i = 0; i < onnx_nodes.size(); ++i) {
      entries.emplace_back(onnx_nodes[i].name(), entry(r.nodes[i]));
      for (; inner != r.subgraph_nodes.end() && inner->owner == i; ++inner) {
        Json json = entry(inner->info);
        json["graph"] = inner->graph;
        entries.emplace_back(inner->name, std::move(json));
      }
    }
    doc["nodes"] = std::move(nodes);
    doc["coverage"] = {
        {"total", r.coverage.total},       {"direct", r.coverage.direct},
        {"inferred", r.coverage.inferred}, {"root", r.coverage.root},
        {"untagged", r.coverage.untagged}, {"tagged_ratio", r.coverage.taggedRatio()}};
    Json attempts = Json::array();
    for (const auto& a : r.attempts)
      attempts.push_back(
          {{"name", a.name}, {"outcome", a.outcome}, {"reason", a.reason}, {"seconds", a.seconds}});
    doc["strategy_attempts"] = std::move(attempts);
    Json numeric = Json::array();
    for (const auto& c : r.numeric_checks)
      numeric.push_back({{"output", c.output},
                         {"max_abs_diff", c.max_abs_diff},
                         {"max_rel_diff", c.max_rel_diff},
                         {"passed", c.passed}});
    doc["validation"] = {{"numeric", r.numeric_checks.empty() ? Json() : std::move(numeric)}};
    Json timings = Json::object();
    for (const auto& [stage, seconds] : r.timings) timings[stage] = seconds;
    doc["timings"] = std::move(timings);
    out.write(siblingPath(r.settings.output_path, "_" + r.strategy + "_metadata.json"),
              doc.dump(2) + "\n");
  }
};

}  // namespace

std::shared_ptr<const Emitter> makeMetadataEmitter() { return std::make_shared<MetadataEmitter>(); }

}  // namespace mexport
