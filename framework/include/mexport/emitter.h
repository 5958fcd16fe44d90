// The emitter plugin interface: writes one kind of output file from an export.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mexport/export_result.h"

namespace mexport {

// Files an export writes, committed all together only when everything
// succeeded: each is written to a temporary file and renamed into place at the
// end, so a failed export leaves no partial output behind.
class OutputFiles {
 public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  ~OutputFiles();  // removes temporaries that were never committed

  void write(const std::string& path, std::string_view bytes);
  // Renames every staged file into place; returns the final paths.
  std::vector<std::string> commit();
  void discard();

 private:
  std::vector<std::pair<std::string, std::string>> staged_;  // temporary, final
};

// Per-emitter options from the config (`emitters: {graphml: {parameters: sidecar}}`).
using EmitterOptions = std::map<std::string, std::string>;

class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual std::string name() const = 0;
  // Throws mexport::Error (or any std::exception) on failure.
  virtual void emit(const ExportResult& result, const EmitterOptions& options,
                    OutputFiles& out) const = 0;
};

// `<dir>/<stem><suffix>` for the ONNX output `<dir>/<stem>.onnx`.
std::string siblingPath(const std::string& onnx_path, const std::string& suffix);

}  // namespace mexport
