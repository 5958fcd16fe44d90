// The nn.Module hierarchy of a model and the tags derived from it. Built by the
// host from the loaded TorchScript module; plain data, no torch types.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mexport {

enum class TagStyle { kClass, kPath };

struct ModuleInfo {
  std::string path;            // attribute path from the root ("encoder.layer.0"); "" for the root
  std::string name;            // attribute name in the parent ("0", "query"); "" for the root
  std::string class_name;      // "BertLayer", mangling stripped
  std::string qualified_type;  // "__torch__.BertLayer", mangling stripped
  std::string tag;             // "/BertModel/BertEncoder/BertLayer.0"
  int parent = -1;
  std::vector<int> children;
  bool called = true;      // false for containers without forward (ModuleList, ModuleDict)
  int64_t parameters = 0;  // elements in the module's own parameters and buffers
};

class ModuleTree {
 public:
  ModuleTree() = default;
  // `modules` in pre-order: the root first, each parent before its children, with
  // `parent` and `name` set. Fills `children` and computes every tag.
  ModuleTree(std::vector<ModuleInfo> modules, TagStyle style);

  const std::vector<ModuleInfo>& modules() const { return modules_; }
  const ModuleInfo& at(int index) const { return modules_.at(index); }
  int size() const { return static_cast<int>(modules_.size()); }
  static constexpr int kRoot = 0;

  // Index of the module at an attribute path, or -1.
  int findPath(std::string_view path) const;
  // Child of `parent` called `name`, looking through containers that are never
  // called (they are skipped in call stacks), or -1.
  int findCalledChild(int parent, std::string_view name) const;
  // Deepest module that contains both (a module contains itself).
  int commonAncestor(int a, int b) const;
  int depth(int index) const;
  // Parameters of the module and everything below it.
  int64_t totalParameters(int index) const;

 private:
  void computeTags(TagStyle style);

  std::vector<ModuleInfo> modules_;
  std::unordered_map<std::string, int> by_path_;
};

}  // namespace mexport
