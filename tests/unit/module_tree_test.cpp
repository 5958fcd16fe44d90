#include "mexport/module_tree.h"

#include <gtest/gtest.h>

#include <set>

namespace mexport {
namespace {

// A module list in pre-order; parents are given by path.
ModuleTree makeTree(
    const std::vector<std::tuple<std::string, std::string, bool>>& modules, TagStyle style,
    const std::string& container_type = "__torch__.torch.nn.modules.container.ModuleList") {
  std::vector<ModuleInfo> infos;
  for (const auto& [path, cls, called] : modules) {
    ModuleInfo m;
    m.path = path;
    m.class_name = cls;
    m.qualified_type =
        cls == "ModuleList" || cls == "Sequential" ? container_type : "__torch__." + cls;
    if (cls == "Sequential") m.qualified_type = "__torch__.torch.nn.modules.container.Sequential";
    m.called = called;
    if (!path.empty()) {
      const size_t dot = path.rfind('.');
      const std::string parent = dot == std::string::npos ? "" : path.substr(0, dot);
      m.name = dot == std::string::npos ? path : path.substr(dot + 1);
      for (size_t i = 0; i < infos.size(); ++i)
        if (infos[i].path == parent) m.parent = static_cast<int>(i);
    }
    infos.push_back(m);
  }
  return ModuleTree(infos, style);
}

const std::vector<std::tuple<std::string, std::string, bool>> kBertLike = {
    {"", "BertModel", true},
    {"embeddings", "BertEmbeddings", true},
    {"embeddings.word_embeddings", "Embedding", true},
    {"embeddings.position_embeddings", "Embedding", true},
    {"encoder", "BertEncoder", true},
    {"encoder.layer", "ModuleList", false},
    {"encoder.layer.0", "BertLayer", true},
    {"encoder.layer.0.attention", "BertAttention", true},
    {"encoder.layer.0.attention.self", "BertSelfAttention", true},
    {"encoder.layer.0.attention.self.query", "Linear", true},
    {"encoder.layer.0.output", "BertOutput", true},
    {"encoder.layer.0.output.dense", "Linear", true},
    {"encoder.layer.1", "BertLayer", true},
    {"encoder.layer.1.attention", "BertAttention", true},
    {"pooler", "BertPooler", true},
    {"pooler.dense", "Linear", true},
};

std::string tagOf(const ModuleTree& tree, const std::string& path) {
  return tree.at(tree.findPath(path)).tag;
}

TEST(ModuleTree, ClassStyleTagsFollowTheDesignRules) {
  const ModuleTree tree = makeTree(kBertLike, TagStyle::kClass);
  EXPECT_EQ(tagOf(tree, ""), "/BertModel");
  EXPECT_EQ(tagOf(tree, "embeddings.word_embeddings"), "/BertModel/BertEmbeddings/word_embeddings");
  EXPECT_EQ(tagOf(tree, "encoder.layer.0.attention.self.query"),
            "/BertModel/BertEncoder/BertLayer.0/BertAttention/BertSelfAttention/query");
  EXPECT_EQ(tagOf(tree, "encoder.layer.1"), "/BertModel/BertEncoder/BertLayer.1");
  EXPECT_EQ(tagOf(tree, "encoder.layer"), "/BertModel/BertEncoder/ModuleList.layer");
  EXPECT_EQ(tagOf(tree, "pooler.dense"), "/BertModel/BertPooler/dense");
}

TEST(ModuleTree, PathStyleTagsAreTorchOnnxScopes) {
  const ModuleTree tree = makeTree(kBertLike, TagStyle::kPath);
  EXPECT_EQ(tagOf(tree, "encoder.layer.0.attention.self.query"),
            "/encoder/layer.0/attention/self/query");
  EXPECT_EQ(tagOf(tree, ""), "/");
}

TEST(ModuleTree, SiblingsSharingAClassGetTheirAttribute) {
  const ModuleTree tree = makeTree({{"", "ResNet", true},
                                    {"conv1", "Conv2d", true},
                                    {"layer1", "Sequential", true},
                                    {"layer1.0", "BasicBlock", true},
                                    {"layer1.0.conv1", "Conv2d", true},
                                    {"layer2", "Sequential", true},
                                    {"layer2.0", "BasicBlock", true}},
                                   TagStyle::kClass);
  EXPECT_EQ(tagOf(tree, "layer1.0.conv1"), "/ResNet/Sequential.layer1/BasicBlock.0/conv1");
  EXPECT_EQ(tagOf(tree, "layer2.0"), "/ResNet/Sequential.layer2/BasicBlock.0");
}

TEST(ModuleTree, TagsStayUniqueWhenFlattenedContainersCollide) {
  // Two never-called lists under one module both hold a "0" of the same class.
  const ModuleTree tree = makeTree({{"", "Net", true},
                                    {"a", "ModuleList", false},
                                    {"a.0", "Block", true},
                                    {"b", "ModuleList", false},
                                    {"b.0", "Block", true}},
                                   TagStyle::kClass);
  std::set<std::string> tags;
  for (const auto& m : tree.modules()) EXPECT_TRUE(tags.insert(m.tag).second) << m.tag;
  EXPECT_EQ(tagOf(tree, "a.0"), "/Net/Block.a.0");
}

TEST(ModuleTree, CalledChildLooksThroughUncalledContainers) {
  const ModuleTree tree = makeTree(kBertLike, TagStyle::kClass);
  const int encoder = tree.findPath("encoder");
  EXPECT_EQ(tree.findCalledChild(encoder, "1"), tree.findPath("encoder.layer.1"));
  EXPECT_EQ(tree.findCalledChild(encoder, "missing"), -1);
}

TEST(ModuleTree, CommonAncestorAndDepth) {
  const ModuleTree tree = makeTree(kBertLike, TagStyle::kClass);
  const int query = tree.findPath("encoder.layer.0.attention.self.query");
  const int dense = tree.findPath("encoder.layer.0.output.dense");
  EXPECT_EQ(tree.commonAncestor(query, dense), tree.findPath("encoder.layer.0"));
  EXPECT_EQ(tree.commonAncestor(query, tree.findPath("pooler")), ModuleTree::kRoot);
  EXPECT_EQ(tree.depth(query), 6);  // the ModuleList counts, though it adds no tag segment
}

}  // namespace
}  // namespace mexport
