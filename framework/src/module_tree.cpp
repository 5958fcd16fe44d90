#include "mexport/module_tree.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace mexport {
namespace {

const char kContainerNamespace[] = "__torch__.torch.nn.modules.container.";

bool isIntegerKey(const std::string& name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

ModuleTree::ModuleTree(std::vector<ModuleInfo> modules, TagStyle style)
    : modules_(std::move(modules)) {
  for (int i = 0; i < size(); ++i) {
    modules_[i].children.clear();
    by_path_.emplace(modules_[i].path, i);
  }
  for (int i = 1; i < size(); ++i) modules_[modules_[i].parent].children.push_back(i);
  computeTags(style);
}

int ModuleTree::findPath(std::string_view path) const {
  auto it = by_path_.find(std::string(path));
  return it == by_path_.end() ? -1 : it->second;
}

int ModuleTree::findCalledChild(int parent, std::string_view name) const {
  for (int child : modules_[parent].children)
    if (modules_[child].name == name) return child;
  for (int child : modules_[parent].children) {
    if (modules_[child].called) continue;
    int found = findCalledChild(child, name);
    if (found >= 0) return found;
  }
  return -1;
}

int ModuleTree::depth(int index) const {
  int d = 0;
  for (; modules_[index].parent >= 0; index = modules_[index].parent) ++d;
  return d;
}

int ModuleTree::commonAncestor(int a, int b) const {
  int da = depth(a), db = depth(b);
  for (; da > db; --da) a = modules_[a].parent;
  for (; db > da; --db) b = modules_[b].parent;
  while (a != b) {
    a = modules_[a].parent;
    b = modules_[b].parent;
  }
  return a;
}

int64_t ModuleTree::totalParameters(int index) const {
  int64_t total = modules_[index].parameters;
  for (int child : modules_[index].children) total += totalParameters(child);
  return total;
}

// Class style: a segment per called module, chosen so that siblings differ:
// container children "Class.key", leaves their attribute name, a class shared
// with a sibling "Class.attr", otherwise the class name. Containers that are
// never called add no segment for their children; their own tag is
// "<parent>/Class.attr" so that it stays unique.
// Path style: torch.onnx's attribute paths, "/encoder/layer.0/attention".
void ModuleTree::computeTags(TagStyle style) {
  if (modules_.empty()) return;
  if (style == TagStyle::kPath) {
    modules_[kRoot].tag = "/";
    for (int i = 1; i < size(); ++i) {
      const ModuleInfo& parent = modules_[modules_[i].parent];
      const bool joins_parent = isIntegerKey(modules_[i].name) && modules_[i].parent != kRoot;
      std::string base = parent.tag == "/" ? "" : parent.tag;
      modules_[i].tag = base + (joins_parent ? "." : "/") + modules_[i].name;
    }
    return;
  }

  modules_[kRoot].tag = "/" + modules_[kRoot].class_name;
  // Owner of a module's segment: its nearest called ancestor.
  auto owner = [&](int i) {
    int p = modules_[i].parent;
    while (p != kRoot && !modules_[p].called) p = modules_[p].parent;
    return p;
  };
  auto relativePath = [&](int i, int ancestor) {
    const std::string& base = modules_[ancestor].path;
    return base.empty() ? modules_[i].path : modules_[i].path.substr(base.size() + 1);
  };

  std::vector<std::string> segment(size());
  std::map<int, std::vector<int>> siblings;  // owner -> called modules it owns
  for (int i = 1; i < size(); ++i) {
    const ModuleInfo& m = modules_[i];
    const ModuleInfo& parent = modules_[m.parent];
    const bool container_child = !parent.called || isIntegerKey(m.name) ||
                                 parent.qualified_type.rfind(kContainerNamespace, 0) == 0;
    if (!m.called)
      segment[i] = m.class_name + "." + m.name;
    else if (container_child)
      segment[i] = m.class_name + "." + m.name;
    else if (m.children.empty())
      segment[i] = m.name;
    else
      segment[i] = m.class_name;
    siblings[owner(i)].push_back(i);
  }
  for (auto& [own, members] : siblings) {
    // A class name shared by siblings gets the attribute; anything still equal
    // gets the path below the owner, which is unique.
    std::map<std::string, int> count;
    for (int i : members) ++count[segment[i]];
    for (int i : members)
      if (count[segment[i]] > 1 && segment[i] == modules_[i].class_name)
        segment[i] = modules_[i].class_name + "." + modules_[i].name;
    count.clear();
    for (int i : members) ++count[segment[i]];
    for (int i : members)
      if (count[segment[i]] > 1) segment[i] = modules_[i].class_name + "." + relativePath(i, own);
  }
  for (int i = 1; i < size(); ++i) modules_[i].tag = modules_[owner(i)].tag + "/" + segment[i];
}

}  // namespace mexport
