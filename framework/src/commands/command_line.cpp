#include "commands/command_line.h"

namespace mexport {

namespace po = boost::program_options;

ParsedCommandLine parseCommandLine(const CommandArgs& args, po::options_description options) {
  options.add_options()("help,h", "this help");
  po::options_description hidden;  // the positional files, kept out of --help
  hidden.add_options()("file", po::value<std::vector<std::string>>());
  po::options_description all;
  all.add(options).add(hidden);
  po::positional_options_description positional;
  positional.add("file", -1);
  ParsedCommandLine parsed;
  po::store(po::command_line_parser(args).options(all).positional(positional).run(),
            parsed.options);
  po::notify(parsed.options);
  parsed.help = parsed.options.count("help") > 0;
  if (parsed.options.count("file"))
    parsed.files = parsed.options["file"].as<std::vector<std::string>>();
  return parsed;
}

}  // namespace mexport
