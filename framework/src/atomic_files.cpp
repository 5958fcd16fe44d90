#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "mexport/emitter.h"
#include "mexport/errors.h"

namespace mexport {

namespace fs = std::filesystem;

OutputFiles::~OutputFiles() { discard(); }

void OutputFiles::write(const std::string& path, std::string_view bytes) {
  const fs::path final_path(path);
  if (final_path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(final_path.parent_path(), ec);
    if (ec)
      throw ExportError("cannot create directory " + final_path.parent_path().string() + ": " +
                        ec.message());
  }
  const std::string temporary = path + ".tmp" + std::to_string(::getpid());
  std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) {
    std::remove(temporary.c_str());
    throw ExportError("cannot write " + path + ": check the directory exists and is writable");
  }
  staged_.emplace_back(temporary, path);
}

std::vector<std::string> OutputFiles::commit() {
  std::vector<std::string> written;
  for (const auto& [temporary, final_path] : staged_) {
    std::error_code ec;
    fs::rename(temporary, final_path, ec);
    if (ec)
      throw ExportError("cannot move " + temporary + " to " + final_path + ": " + ec.message());
    written.push_back(final_path);
  }
  staged_.clear();
  return written;
}

void OutputFiles::discard() {
  for (const auto& staged : staged_) std::remove(staged.first.c_str());
  staged_.clear();
}

std::string siblingPath(const std::string& onnx_path, const std::string& suffix) {
  fs::path path(onnx_path);
  return (path.parent_path() / (path.stem().string() + suffix)).string();
}

}  // namespace mexport
