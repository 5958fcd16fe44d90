// The export configuration: the YAML file of DESIGN.md, with CLI overrides
// applied by the caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mexport/emitter.h"
#include "mexport/export_result.h"

namespace mexport {

struct InputSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype = "float32";  // with a file: empty, or the dtype the file must hold
  std::optional<std::pair<double, double>> range;  // [low, high)
  std::optional<double> fill;
  std::string file;                        // a NumPy .npy file instead of generated values
  std::map<int64_t, std::string> dynamic;  // axis -> symbolic name
};

struct EmitterSpec {
  std::string name;
  EmitterOptions options;
};

struct Config {
  std::string source;  // the config file, "" when built from the command line
  std::string model_path;
  std::string model_name;
  std::vector<InputSpec> inputs;
  std::vector<std::string> outputs;
  std::string output;
  int opset = 17;
  std::string strategy = "auto";
  std::vector<std::string> fallback = {"htp"};
  std::string priority = "coverage";
  double min_coverage = 0.0;
  bool root_fallback = false;     // untagged nodes go to the root module, provenance root
  bool isolate = false;           // `isolation: process`: each strategy runs in a child process
  double strategy_timeout = 120;  // seconds, for isolated strategies
  double reference_timeout =
      600;  // seconds a run of the model may take (reference, validation); 0: none
  HierarchyMode hierarchy = HierarchyMode::kTags;
  TagStyle tag_style = TagStyle::kClass;
  ExternalData external_data = ExternalData::kAuto;                 // weights in <output>.data
  int64_t external_data_threshold = kDefaultExternalDataThreshold;  // bytes, for kAuto
  std::vector<EmitterSpec> emitters = {{"onnx", {}}, {"metadata", {}}, {"report", {}}};
  std::vector<std::string> plugin_paths;
  bool validate_numeric = true;
  double atol = 1e-4;
  double rtol = 1e-3;
  uint64_t seed = 0;
};

// Reads and checks a config file; relative paths become relative to its
// directory. Throws UsageError "<file>:<line>: ..." naming the key and the
// closest valid one.
Config loadConfig(const std::string& path);

// The same for YAML text already in memory; `file` names it in messages and
// relative paths are taken from its directory.
Config parseConfig(const std::string& text, const std::string& file);

// Parses "NAME:1x16:int64"; a dim written "batch=1" is dynamic with that name.
InputSpec parseInputFlag(const std::string& flag);

// Checks values that CLI flags may have changed (opset range, names).
void checkConfig(const Config& config);

// Levenshtein-closest candidate, for "did you mean" hints.
std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace mexport
