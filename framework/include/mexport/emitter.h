// The emitter plugin interface: writes one kind of output file from an export.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "mexport/export_result.h"

namespace mexport {

// Files an export writes, committed all together only when everything
// succeeded: each is written to a temporary file beside its final path and
// renamed into place at the end, so a failed or interrupted export leaves no
// partial output behind (the host's SIGINT, SIGTERM and SIGHUP handlers
// remove the temporaries). Missing parent directories are created.
// A final path that exists and is a device or FIFO (/dev/null, /dev/stdout)
// is written directly, at commit.
class OutputFiles {
 public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles&) = delete;
  OutputFiles& operator=(const OutputFiles&) = delete;
  ~OutputFiles();  // removes temporaries that were never committed

  // Receives a file's bytes in order, in as many pieces as the writer likes.
  using ByteSink = std::function<void(std::string_view bytes)>;
  using Producer = std::function<void(const ByteSink& sink)>;

  // Both throw mexport::Error naming the path and the system's reason.
  void write(const std::string& path, std::string_view bytes);
  // Writes the bytes `produce` hands to its sink, without holding them all in
  // memory (except for a device or FIFO).
  void writeStreaming(const std::string& path, const Producer& produce);
  // Takes over the files `other` staged, to commit them with these.
  void adopt(OutputFiles& other);
  // Called with the size of every piece written, for a progress display.
  void setProgressCallback(std::function<void(int64_t bytes)> callback);
  // Moves every staged file into place; returns the final paths. Commits into
  // the same directory by several processes run one after the other (an
  // flock on the directory), so concurrent exports to the same paths leave
  // one export's complete set of files, never a mix.
  std::vector<std::string> commit();
  void discard();

 private:
  struct Staged {
    std::string final_path;
    std::string temporary;  // empty for a device or FIFO, written at commit
    std::string bytes;      // a device's or FIFO's content
    int slot = -1;          // the temporary's entry in the signal handler's table
  };
  std::vector<Staged> staged_;
  std::function<void(int64_t)> progress_;
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
