// <stem>_<strategy>_export_report.txt: the export in words, for people.
#include <fmt/format.h>

#include <map>

#include "emitters/builtin_emitters.h"

namespace mexport {
namespace {

class ReportEmitter final : public Emitter {
 public:
  std::string name() const override { return "report"; }

  void emit(const ExportResult& r, const EmitterOptions&, OutputFiles& out) const override {
    std::string text;
    auto line = [&](auto&&... args) {
      text += fmt::format(std::forward<decltype(args)>(args)...) + "\n";
    };
    const Coverage& c = r.coverage;
    auto percent = [&](int64_t n) {
      return c.total == 0 ? 0.0 : 100.0 * double(n) / double(c.total);
    };

    line("mexport {} export report", r.tool_version);
    line("model:      {} ({})", r.settings.model_name, r.settings.model_path);
    line("output:     {}", r.settings.output_path);
    line("strategy:   {}", r.strategy);
    for (const auto& a : r.attempts)
      line("  attempt:  {} {} in {:.3f} s{}", a.name, a.outcome, a.seconds,
           a.reason.empty() ? "" : ": " + a.reason);
    line("opset:      {}", r.settings.opset);
    line("parameters: {}", r.tree.totalParameters(ModuleTree::kRoot));
    line("ONNX nodes: {}", c.total);
    line(
        "coverage:   {:.1f}% tagged: direct {} ({:.1f}%), inferred {} ({:.1f}%), root {} "
        "({:.1f}%), untagged {}",
        percent(c.total - c.untagged), c.direct, percent(c.direct), c.inferred, percent(c.inferred),
        c.root, percent(c.root), c.untagged);
    line("");
    line("Modules (ONNX nodes tagged with the module itself / with it or below it):");
    std::vector<int64_t> subtree(r.tree.size(), 0);
    for (int i = r.tree.size() - 1; i >= 0; --i) {
      subtree[i] += r.module_nodes[i];
      if (r.tree.at(i).parent >= 0) subtree[r.tree.at(i).parent] += subtree[i];
    }
    for (int i = 0; i < r.tree.size(); ++i) {
      const ModuleInfo& m = r.tree.at(i);
      line("{:{}}{}  [{}] {} / {}{}", "", 2 * r.tree.depth(i), m.tag, m.class_name,
           r.module_nodes[i], subtree[i], m.called ? "" : "  (container, never called)");
    }
    line("");
    std::map<std::string, int> op_types;
    for (const auto& node : r.model.graph().node()) ++op_types[node.op_type()];
    line("ONNX op types:");
    for (const auto& [type, count] : op_types) line("  {:<24} {}", type, count);
    line("");
    line("Timings (seconds):");
    for (const auto& [stage, seconds] : r.timings) line("  {:<8} {:.3f}", stage, seconds);
    out.write(siblingPath(r.settings.output_path, "_" + r.strategy + "_export_report.txt"), text);
  }
};

}  // namespace

std::shared_ptr<const Emitter> makeReportEmitter() { return std::make_shared<ReportEmitter>(); }

}  // namespace mexport
