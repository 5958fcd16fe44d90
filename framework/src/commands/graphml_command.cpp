// mexport graphml-to-onnx FILE.graphml OUT.onnx: rebuilds the ONNX model that
// a GraphML file of the graphml emitter describes (with its parameter sidecar).
#include <fmt/format.h>

#include "commands/commands.h"
#include "graphml/reader.h"
#include "mexport/emitter.h"
#include "mexport/errors.h"

namespace mexport {

int runGraphmlToOnnxCommand(const CommandArgs& args) {
  for (const auto& arg : args)
    if (!arg.empty() && arg[0] == '-')
      throw UsageError("graphml-to-onnx: unknown option '" + arg +
                       "'; usage: mexport graphml-to-onnx FILE.graphml OUT.onnx");
  if (args.size() != 2)
    throw UsageError("graphml-to-onnx takes two arguments: FILE.graphml OUT.onnx");
  const std::string& graphml_path = args[0];
  const std::string& onnx_path = args[1];

  const onnx::ModelProto model = graphml::readGraphml(graphml_path);
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw ExportError("cannot serialise the rebuilt ONNX model (protobuf limits a file to 2 GiB)");
  OutputFiles files;  // written whole or not at all
  files.write(onnx_path, bytes);
  files.commit();
  fmt::print("mexport: rebuilt {} ONNX nodes and {} initializers from {}\n  wrote {}\n",
             model.graph().node_size(), model.graph().initializer_size(), graphml_path, onnx_path);
  return 0;
}

}  // namespace mexport
