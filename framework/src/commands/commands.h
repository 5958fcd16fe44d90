// The CLI commands, one per file: `mexport <name> ARGS...`. Each returns the
// exit code and reports failures by throwing mexport::Error (main prints them
// as one line).
#pragma once

#include <string>
#include <vector>

namespace mexport {

using CommandArgs = std::vector<std::string>;

int runExportCommand(const CommandArgs& args);         // export_command.cpp
int runPluginsCommand(const CommandArgs& args);        // plugins_command.cpp
int runBenchmarkCommand(const CommandArgs& args);      // benchmark_command.cpp
int runGraphmlToOnnxCommand(const CommandArgs& args);  // graphml_command.cpp
int runAnalyzeCommand(const CommandArgs& args);        // analyze_command.cpp
int runCompareCommand(const CommandArgs& args);        // compare_command.cpp
int runValidateCommand(const CommandArgs& args);       // validate_command.cpp

}  // namespace mexport
