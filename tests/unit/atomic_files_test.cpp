#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mexport/emitter.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;

fs::path freshDir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("mexport_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

TEST(OutputFiles, NothingAppearsBeforeCommit) {
  const fs::path dir = freshDir("commit");
  OutputFiles files;
  files.write((dir / "a.onnx").string(), "abc");
  EXPECT_FALSE(fs::exists(dir / "a.onnx"));
  const auto written = files.commit();
  ASSERT_EQ(written.size(), 1u);
  std::stringstream content;
  content << std::ifstream(dir / "a.onnx").rdbuf();
  EXPECT_EQ(content.str(), "abc");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(OutputFiles, DroppedWithoutCommitLeavesNothing) {
  const fs::path dir = freshDir("discard");
  {
    OutputFiles files;
    files.write((dir / "a.onnx").string(), "abc");
    files.write((dir / "a_meta.json").string(), "{}");
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0);
}

TEST(OutputFiles, SiblingPath) {
  EXPECT_EQ(siblingPath("out/bert.onnx", "_htp_metadata.json"), "out/bert_htp_metadata.json");
}

}  // namespace
}  // namespace mexport
