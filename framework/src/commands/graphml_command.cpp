// mexport graphml-to-onnx FILE.graphml OUT.onnx: rebuilds the ONNX model that
// a GraphML file of the graphml emitter describes (with its parameter sidecar).
// Its weights go to OUT.onnx.data as an export's do: with --external-data, or
// when the file would pass protobuf's limit.
#include <fmt/format.h>
#include <boost/program_options.hpp>

#include <iostream>

#include "commands/command_line.h"
#include "commands/commands.h"
#include "graphml/reader.h"
#include "mexport/emitter.h"
#include "mexport/errors.h"
#include "onnx_writer.h"

namespace mexport {

int runGraphmlToOnnxCommand(const CommandArgs& args) {
  namespace po = boost::program_options;
  const char* usage = "usage: mexport graphml-to-onnx FILE.graphml OUT.onnx [--external-data]";
  po::options_description options("graphml-to-onnx options");
  options.add_options()("external-data", po::bool_switch(),
                        "write the weights to OUT.onnx.data beside OUT.onnx");
  const ParsedCommandLine parsed = parseCommandLine(args, options);
  if (parsed.help) {
    std::cout << usage << "\n" << options;
    return 0;
  }
  if (parsed.files.size() != 2)
    throw UsageError(std::string("graphml-to-onnx takes two files; ") + usage);
  const std::string& graphml_path = parsed.files[0];
  const std::string& onnx_path = parsed.files[1];
  const ExternalData external_data =
      parsed.options["external-data"].as<bool>() ? ExternalData::kAlways : ExternalData::kAuto;

  const onnx::ModelProto model = graphml::readGraphml(graphml_path);
  OutputFiles out;  // written whole or not at all
  writeOnnxFile(model, onnx_path, external_data, kDefaultExternalDataThreshold, out);
  const std::vector<std::string> written = out.commit();
  fmt::print("mexport: rebuilt {} ONNX nodes and {} initializers from {}\n",
             model.graph().node_size(), model.graph().initializer_size(), graphml_path);
  for (const auto& file : written) fmt::print("  wrote {}\n", file);
  return 0;
}

}  // namespace mexport
