// Parsing shared by the commands that take files as positional arguments.
#pragma once

#include <boost/program_options.hpp>

#include <string>
#include <vector>

#include "commands/commands.h"

namespace mexport {

struct ParsedCommandLine {
  boost::program_options::variables_map options;
  std::vector<std::string> files;  // the positional arguments, in order
  bool help = false;               // -h / --help was given
};

// Parses `args` against `options` (plus -h/--help); everything positional is
// a file.
ParsedCommandLine parseCommandLine(const CommandArgs& args,
                                   boost::program_options::options_description options);

}  // namespace mexport
