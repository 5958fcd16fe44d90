#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mexport/emitter.h"
#include "mexport/errors.h"

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

TEST(OutputFiles, CreatesMissingParentDirectories) {
  const fs::path dir = freshDir("parents");
  OutputFiles files;
  files.write((dir / "a" / "b" / "m.onnx").string(), "abc");
  files.commit();
  EXPECT_TRUE(fs::is_regular_file(dir / "a" / "b" / "m.onnx"));
}

TEST(OutputFiles, ADirectoryIsNotAnOutputFile) {
  const fs::path dir = freshDir("directory");
  fs::create_directories(dir / "m.onnx");
  OutputFiles files;
  try {
    files.write((dir / "m.onnx").string(), "abc");
    FAIL() << "writing over a directory must fail";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  EXPECT_THROW(files.write(dir.string() + "/", "abc"), UsageError);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// /dev/full fails every write with ENOSPC, as a full disk does: the error
// names the path and the reason, and the files staged with it are removed.
TEST(OutputFiles, AWriteFailureCommitsNothing) {
  const fs::path dir = freshDir("full");
  OutputFiles files;
  files.write((dir / "m_meta.json").string(), "{}");
  files.write("/dev/full", std::string(1 << 16, 'x'));
  try {
    files.commit();
    FAIL() << "writing to /dev/full must fail";
  } catch (const ExportError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '/dev/full': No space left on device"),
              std::string::npos)
        << e.what();
  }
  files.discard();
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0);
}

TEST(OutputFiles, AdoptedFilesAreCommittedTogether) {
  const fs::path dir = freshDir("adopt");
  OutputFiles files, plugin_files;
  files.write((dir / "m.onnx").string(), "onnx");
  plugin_files.write((dir / "m.graphml").string(), "graphml");
  files.adopt(plugin_files);
  EXPECT_TRUE(plugin_files.commit().empty());
  EXPECT_EQ(files.commit().size(), 2u);
  EXPECT_TRUE(fs::is_regular_file(dir / "m.graphml"));
}

TEST(OutputFiles, StreamsPiecesAndUsesFreshTemporaries) {
  const fs::path dir = freshDir("stream");
  const std::string path = (dir / "m.onnx").string();
  OutputFiles first, second;
  first.writeStreaming(path, [](const OutputFiles::ByteSink& sink) {
    sink("ab");
    sink("cd");
  });
  second.write(path, "second");  // the same file, staged twice: two temporaries
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
  first.commit();
  second.commit();  // last one wins
  std::stringstream content;
  content << std::ifstream(path).rdbuf();
  EXPECT_EQ(content.str(), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(OutputFiles, SiblingPath) {
  EXPECT_EQ(siblingPath("out/bert.onnx", "_htp_metadata.json"), "out/bert_htp_metadata.json");
}

}  // namespace
}  // namespace mexport
