// Fuzzes the ONNX reader as `mexport analyze` and `mexport compare` use it:
// each input is written to model.onnx in a private directory in /dev/shm,
// then analyzed and compared with itself, as the CLI would, in an output
// format chosen by the input's size (so that mutations reach every format
// while each run reads the file only twice). Their output goes to /dev/null.
// A mexport::Error is the clean refusal of a bad file; anything else
// escaping, a crash or a sanitizer report is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "commands/commands.h"
#include "mexport/errors.h"

namespace {

const char* const kAnalyzeFormats[] = {"summary", "tree", "json", "csv"};
const char* const kCompareFormats[] = {"text", "json"};

std::string model_dir, model_path;  // DIR/model.onnx, DIR private to this process

void removeModelDir() {
  std::remove(model_path.c_str());
  ::rmdir(model_dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/dev/shm/mexport_onnx_fuzzer_XXXXXX";
  if (!::mkdtemp(dir)) {
    std::perror("onnx_fuzzer: mkdtemp");
    std::exit(1);
  }
  model_dir = dir;
  model_path = model_dir + "/model.onnx";
  std::atexit(removeModelDir);
  if (!std::freopen("/dev/null", "w", stdout)) {
    std::perror("onnx_fuzzer: /dev/null");
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::ofstream(model_path, std::ios::binary).write(reinterpret_cast<const char*>(data), size);
  try {
    mexport::runAnalyzeCommand({model_path, "--format", kAnalyzeFormats[size % 4]});
    mexport::runCompareCommand({model_path, model_path, "--format", kCompareFormats[size / 4 % 2]});
  } catch (const mexport::Error&) {
  }
  return 0;
}
