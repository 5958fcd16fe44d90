// The mexport command line: dispatches to one command per file in commands/.
#include <malloc.h>
#include <unistd.h>

#include <fmt/format.h>
#include <torch/csrc/api/include/torch/version.h>
#include <boost/program_options/errors.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>

#include "atomic_files.h"
#include "commands/commands.h"
#include "deadline.h"
#include "export.h"
#include "mexport/errors.h"

using namespace mexport;

namespace {

struct Command {
  const char* name;
  int (*run)(const CommandArgs& args);
  const char* usage;
};

const Command kCommands[] = {
    {"export", runExportCommand,
     "export --config FILE [--strategy S] [--model PATH] [--output PATH]\n"
     "                 [--opset N] [--with-graphml] [--clean-onnx] [--hierarchy-attrs]\n"
     "                 [--plugin-dir DIR]... [--no-validate] [--external-data]\n"
     "                 [--quiet|--verbose]\n"
     "  mexport export MODEL.pt OUT.onnx --input NAME:1x16:int64 ...   (no config)\n"
     "  mexport export --list-ops"},
    {"plugins", runPluginsCommand, "plugins [--plugin-dir DIR]..."},
    {"benchmark", runBenchmarkCommand,
     "benchmark --config FILE [--strategies a,b,c] [--repeat N] [--json PATH] [--plot PATH]"},
    {"graphml-to-onnx", runGraphmlToOnnxCommand,
     "graphml-to-onnx FILE.graphml OUT.onnx [--external-data]"},
    {"analyze", runAnalyzeCommand,
     "analyze FILE.onnx [--format summary|tree|json|csv] [--metadata FILE]"},
    {"validate", runValidateCommand,
     "validate FILE.onnx [--check-consistency] [--metadata FILE]\n"
     "                 [--against MODEL.pt --config FILE [--save-outputs DIR]]"},
    {"compare", runCompareCommand,
     "compare A.onnx B.onnx [--format text|json]   (exit 1 when different)"},
};

void printUsage() {
  std::cout << "usage:\n";
  for (const Command& c : kCommands) std::cout << "  mexport " << c.usage << "\n";
  std::cout << "  mexport --version\n";
}

std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

int runCommand(std::vector<std::string> args) {
  try {
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
      printUsage();
      return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
      fmt::print("mexport {} (torch {}, ONNX IR 8, opsets 14-17)\n", kToolVersion, TORCH_VERSION);
      return 0;
    }
    const std::string name = args[0];
    args.erase(args.begin());
    for (const Command& c : kCommands)
      if (name == c.name) return c.run(args);
    throw UsageError(fmt::format("unknown command '{}'; see mexport --help", name));
  } catch (const Error& e) {
    printErrorLine(e.what());
    return e.exitCode();
  } catch (const boost::program_options::error& e) {
    std::cerr << "mexport: error: " << e.what() << " (mexport --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mexport: internal error: " << firstLine(e.what()) << "; please report it\n";
    return 1;
  }
}

// Ends the process without running static destructors: libtorch's deregister
// its operator kernels one by one, 0.14 s of every run, and there is nothing
// left to do once a command has committed its files. Sanitizer builds exit
// normally, so that leaks and destructor bugs still show.
[[noreturn]] void exitWithoutCleanup(int code) {
  std::cout.flush();
  std::fflush(nullptr);
#if defined(__SANITIZE_ADDRESS__)
  std::exit(code);
#else
  std::_Exit(code);
#endif
}

// An exception that escapes where none may (a destructor, a noexcept
// function, a libtorch callback) would abort with a core dump; it ends the
// command with one line and exit code 1 instead.
[[noreturn]] void reportUncaughtException() {
  std::string what = "an unknown exception";
  try {
    if (const std::exception_ptr error = std::current_exception()) std::rethrow_exception(error);
    what = "std::terminate was called";
  } catch (const std::exception& e) {
    what = firstLine(e.what());
  } catch (...) {
  }
  std::cerr << "mexport: internal error: " << what << "; please report it\n";
  std::fflush(nullptr);
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  // Blocks of 1 MiB and more (tensors, weights) are mapped on their own and
  // unmapped when freed. glibc otherwise raises its mmap threshold to the size
  // of the first such block freed and keeps later ones in its per-thread
  // arenas, where the reference run's and validation's tensors stayed: resnet18
  // at 1024x1024 peaked at 734 MB instead of 376 MB, and ran slower.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::set_terminate(reportUncaughtException);
  installOutputSignalHandlers();  // an interrupted command leaves no unfinished file
  exitWithoutCleanup(runCommand(std::vector<std::string>(argv + 1, argv + argc)));
}
