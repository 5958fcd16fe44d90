#include "config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "mexport/errors.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;

std::string writeConfig(const std::string& text) {
  const fs::path dir =
      fs::temp_directory_path() / ("mexport_config_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "configs");
  const fs::path file = dir / "configs" / "model.yaml";
  std::ofstream(file) << text;
  return file.string();
}

std::string errorOf(const std::string& text) {
  try {
    loadConfig(writeConfig(text));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

const char kValid[] = R"(model:
  path: ../models/m.pt
  name: tiny
inputs:
  - name: input_ids
    shape: [1, 16]
    dtype: int64
    range: [0, 100]
    dynamic: {0: batch, 1: sequence}
outputs: [hidden]
export:
  output: ../out/m.onnx
  opset: 16
  strategy: htp
  hierarchy: attributes
  tag_style: path
emitters:
  onnx: {}
  metadata: {}
seed: 7
)";

TEST(Config, ReadsEveryKeyAndResolvesPathsAgainstTheConfigFile) {
  const std::string file = writeConfig(kValid);
  const Config c = loadConfig(file);
  const fs::path root = fs::path(file).parent_path().parent_path();
  EXPECT_EQ(c.model_path, (root / "models" / "m.pt").string());
  EXPECT_EQ(c.output, (root / "out" / "m.onnx").string());
  EXPECT_EQ(c.model_name, "tiny");
  ASSERT_EQ(c.inputs.size(), 1u);
  EXPECT_EQ(c.inputs[0].shape, (std::vector<int64_t>{1, 16}));
  EXPECT_EQ(c.inputs[0].dynamic.at(1), "sequence");
  EXPECT_EQ(c.opset, 16);
  EXPECT_EQ(c.hierarchy, HierarchyMode::kAttributes);
  EXPECT_EQ(c.tag_style, TagStyle::kPath);
  EXPECT_EQ(c.emitters.size(), 2u);
  EXPECT_EQ(c.seed, 7u);
}

TEST(Config, UnknownKeyNamesLineAndClosestKey) {
  std::string text = kValid;
  text.replace(text.find("  strategy: htp"), 15, "  stratgey: htp");
  const std::string error = errorOf(text);
  const auto line = 1 + std::count(text.begin(), text.begin() + text.find("stratgey"), '\n');
  EXPECT_NE(error.find("model.yaml:" + std::to_string(line) + ":"), std::string::npos) << error;
  EXPECT_NE(error.find("export.stratgey"), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean 'strategy'"), std::string::npos) << error;
}

TEST(Config, BadValuesAreErrorsWithTheKey) {
  std::string text = kValid;
  text.replace(text.find("opset: 16"), 9, "opset: x");
  EXPECT_NE(errorOf(text).find("'export.opset' must be an integer"), std::string::npos);
  text = kValid;
  text.replace(text.find("tag_style: path"), 15, "tag_style: paht");
  EXPECT_NE(errorOf(text).find("did you mean 'path'"), std::string::npos);
  text = kValid;
  text.replace(text.find("{0: batch"), 9, "{5: batch");
  EXPECT_NE(errorOf(text).find("has no axis 5"), std::string::npos);
}

// Found by fuzz/config_fuzzer: yaml-cpp's own exceptions escaped (the CLI
// said "internal error") for keys that are not names and for a plugins.paths
// mapping.
TEST(Config, KeysThatAreNotNamesAndPluginPathsThatAreNoListAreConfigErrors) {
  const std::string model = "model: {path: m.pt}\n";
  for (const std::string& text :
       {model + "? [a, b]\n: 1\n", model + "~: 1\n", model + "export: {{a: 1}: 2}\n",
        model + "emitters: {[onnx]: {}}\n", model + "emitters: {graphml: {? [a]: b}}\n"}) {
    const std::string error = errorOf(text);
    EXPECT_NE(error.find("keys must be names"), std::string::npos) << text << "\n" << error;
  }
  EXPECT_NE(errorOf(model + "plugins: {paths: {a: b}}\n").find("must be a list"),
            std::string::npos);
}

TEST(Config, InputFlags) {
  const InputSpec spec = parseInputFlag("input_ids:batch=2x16:int64");
  EXPECT_EQ(spec.name, "input_ids");
  EXPECT_EQ(spec.shape, (std::vector<int64_t>{2, 16}));
  EXPECT_EQ(spec.dynamic.at(0), "batch");
  EXPECT_EQ(spec.dtype, "int64");
  EXPECT_THROW(parseInputFlag("x:1xq:float32"), UsageError);
  EXPECT_THROW(parseInputFlag("x:1x2:flaot32"), UsageError);
  EXPECT_THROW(parseInputFlag("x"), UsageError);
}

TEST(Config, ClosestMatch) {
  EXPECT_EQ(closestMatch("exprot", {"model", "export", "inputs"}), "export");
}

}  // namespace
}  // namespace mexport
