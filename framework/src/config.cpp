#include "config.h"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mexport/errors.h"

namespace mexport {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kDtypes = {"float32", "float16", "float64", "bfloat16", "int64",
                                          "int32",   "int16",   "int8",    "uint8",    "bool"};

// Reads one YAML document with its file name for "<file>:<line>:" messages.
class ConfigReader {
 public:
  explicit ConfigReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& message) const {
    if (node.Mark().is_null()) throw UsageError(fmt::format("{}: {}", file_, message));
    throw UsageError(fmt::format("{}:{}: {}", file_, node.Mark().line + 1, message));
  }

  // A mapping key as text. YAML also allows lists, mappings and null as keys,
  // which name nothing here.
  std::string keyName(const YAML::Node& key, const std::string& where) const {
    if (!key.IsScalar())
      fail(key, fmt::format("a key {}is a list, mapping or null; keys must be names",
                            where.empty() ? "" : "in '" + where + "' "));
    return key.Scalar();
  }

  // Rejects keys of `map` that are not in `allowed`, naming the closest one.
  void checkKeys(const YAML::Node& map, const std::string& where,
                 const std::vector<std::string>& allowed) const {
    if (!map.IsMap()) fail(map, fmt::format("'{}' must be a mapping", where));
    for (const auto& item : map) {
      const std::string key = keyName(item.first, where);
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      fail(item.first,
           fmt::format("unknown key '{}{}'; did you mean '{}'?", where.empty() ? "" : where + ".",
                       key, closestMatch(key, allowed)));
    }
  }

  template <typename T>
  T scalar(const YAML::Node& node, const std::string& key, const char* what) const {
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      fail(node, fmt::format("'{}' must be {} (got '{}')", key, what,
                             node.IsScalar() ? node.Scalar() : "a collection"));
    }
  }

  std::string oneOf(const YAML::Node& node, const std::string& key,
                    const std::vector<std::string>& allowed) const {
    std::string value = scalar<std::string>(node, key, "a string");
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end())
      fail(node, fmt::format("'{}' must be one of {} (got '{}'; did you mean '{}'?)", key,
                             fmt::join(allowed, ", "), value, closestMatch(value, allowed)));
    return value;
  }

  std::vector<std::string> strings(const YAML::Node& node, const std::string& key) const {
    if (!node.IsSequence()) fail(node, fmt::format("'{}' must be a list", key));
    std::vector<std::string> out;
    for (const auto& item : node) out.push_back(scalar<std::string>(item, key, "a string"));
    return out;
  }

  std::string path(const YAML::Node& node, const std::string& key) const {
    fs::path p(scalar<std::string>(node, key, "a path"));
    if (p.is_relative()) p = fs::path(file_).parent_path() / p;
    return p.lexically_normal().string();
  }

  InputSpec input(const YAML::Node& node) const {
    checkKeys(node, "inputs[]", {"name", "shape", "dtype", "range", "fill", "file", "dynamic"});
    InputSpec spec;
    if (!node["name"]) fail(node, "every input needs a 'name'");
    spec.name = scalar<std::string>(node["name"], "name", "a string");
    if (node["file"]) {
      spec.file = path(node["file"], "file");
      spec.dtype.clear();  // the file's own, unless a dtype below says what it must be
    } else {
      if (!node["shape"])
        fail(node, fmt::format("input '{}' needs a 'shape' (or a 'file')", spec.name));
      spec.shape = scalar<std::vector<int64_t>>(node["shape"], "shape", "a list of integers");
      for (size_t axis = 0; axis < spec.shape.size(); ++axis)
        if (spec.shape[axis] < 1)
          fail(node["shape"], fmt::format("input '{}' has dimension {} on axis {}; every "
                                          "dimension must be at least 1",
                                          spec.name, spec.shape[axis], axis));
    }
    if (node["dtype"]) spec.dtype = oneOf(node["dtype"], "dtype", kDtypes);
    if (node["range"]) {
      auto r = scalar<std::vector<double>>(node["range"], "range", "a list [low, high]");
      if (r.size() != 2 || !(r[0] < r[1]))
        fail(node["range"], "'range' must be [low, high] with low < high");
      spec.range = std::make_pair(r[0], r[1]);
    }
    if (node["fill"]) spec.fill = scalar<double>(node["fill"], "fill", "a number");
    if (node["dynamic"]) {
      if (!node["dynamic"].IsMap())
        fail(node["dynamic"], "'dynamic' must map an axis to a name, e.g. {0: batch}");
      for (const auto& axis : node["dynamic"]) {
        const int64_t index = scalar<int64_t>(axis.first, "dynamic", "an axis number");
        // A file's shape is known only once it is read; inputs.cpp checks those axes.
        if (spec.file.empty() && (index < 0 || index >= static_cast<int64_t>(spec.shape.size())))
          fail(axis.first, fmt::format("input '{}' has no axis {}", spec.name, index));
        spec.dynamic[index] = scalar<std::string>(axis.second, "dynamic", "a name");
      }
    }
    return spec;
  }

  std::vector<EmitterSpec> emitters(const YAML::Node& node) const {
    std::vector<EmitterSpec> out;
    if (node.IsSequence()) {
      for (const auto& name : strings(node, "emitters")) out.push_back({name, {}});
      return out;
    }
    if (!node.IsMap()) fail(node, "'emitters' must be a list of names or a map of name to options");
    for (const auto& item : node) {
      EmitterSpec spec{keyName(item.first, "emitters"), {}};
      if (item.second.IsMap())
        for (const auto& option : item.second)
          spec.options[keyName(option.first, "emitters." + spec.name)] =
              scalar<std::string>(option.second, "emitters", "a string");
      else if (!item.second.IsNull())
        fail(item.second, fmt::format("options of emitter '{}' must be a map", spec.name));
      out.push_back(spec);
    }
    return out;
  }

 private:
  std::string file_;
};

}  // namespace

std::string closestMatch(const std::string& word, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        size_t above = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
        diagonal = above;
      }
    }
    return row[b.size()];
  };
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& c : candidates) {
    size_t d = distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

Config loadConfig(const std::string& file) {
  if (!fs::is_regular_file(file)) throw UsageError(fmt::format("config file '{}' not found", file));
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw UsageError(fmt::format("cannot read config file '{}'; check its permissions", file));
  std::ostringstream text;
  text << in.rdbuf();
  return parseConfig(text.str(), file);
}

Config parseConfig(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(fmt::format("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  ConfigReader r(file);
  Config c;
  c.source = file;
  if (!root.IsMap())
    r.fail(root, "the config must be a YAML mapping (model:, inputs:, export: ...)");
  r.checkKeys(root, "",
              {"model", "inputs", "outputs", "export", "emitters", "plugins", "validate", "seed"});

  const YAML::Node model = root["model"];
  if (!model) r.fail(root, "missing 'model' section with 'path'");
  r.checkKeys(model, "model", {"path", "name"});
  if (!model["path"]) r.fail(model, "missing 'model.path'");
  c.model_path = r.path(model["path"], "model.path");
  c.model_name = model["name"] ? r.scalar<std::string>(model["name"], "model.name", "a string")
                               : fs::path(c.model_path).stem().string();

  if (root["inputs"]) {
    if (!root["inputs"].IsSequence())
      r.fail(root["inputs"], "'inputs' must be a list in forward() order");
    for (const auto& input : root["inputs"]) c.inputs.push_back(r.input(input));
  }
  if (root["outputs"]) c.outputs = r.strings(root["outputs"], "outputs");

  if (const YAML::Node e = root["export"]) {
    r.checkKeys(e, "export",
                {"output", "opset", "strategy", "fallback", "priority", "min_coverage",
                 "root_fallback", "isolation", "strategy_timeout", "reference_timeout", "hierarchy",
                 "tag_style", "external_data", "external_data_threshold"});
    if (e["output"]) c.output = r.path(e["output"], "export.output");
    if (e["opset"]) c.opset = r.scalar<int>(e["opset"], "export.opset", "an integer");
    if (e["strategy"])
      c.strategy = r.scalar<std::string>(e["strategy"], "export.strategy", "a strategy name");
    if (e["fallback"]) c.fallback = r.strings(e["fallback"], "export.fallback");
    if (e["priority"])
      c.priority = r.oneOf(e["priority"], "export.priority", {"coverage", "speed"});
    if (e["min_coverage"]) {
      c.min_coverage =
          r.scalar<double>(e["min_coverage"], "export.min_coverage", "a number in [0, 1]");
      if (c.min_coverage < 0 || c.min_coverage > 1)
        r.fail(e["min_coverage"], "'export.min_coverage' must be in [0, 1]");
    }
    if (e["root_fallback"])
      c.root_fallback = r.scalar<bool>(e["root_fallback"], "export.root_fallback", "true or false");
    if (e["isolation"])
      c.isolate = r.oneOf(e["isolation"], "export.isolation", {"none", "process"}) == "process";
    if (e["strategy_timeout"]) {
      c.strategy_timeout =
          r.scalar<double>(e["strategy_timeout"], "export.strategy_timeout", "a number of seconds");
      if (!(c.strategy_timeout > 0))
        r.fail(e["strategy_timeout"],
               "'export.strategy_timeout' must be a positive number of seconds");
    }
    if (e["reference_timeout"]) {
      c.reference_timeout = r.scalar<double>(e["reference_timeout"], "export.reference_timeout",
                                             "a number of seconds");
      if (!(c.reference_timeout >= 0))
        r.fail(e["reference_timeout"],
               "'export.reference_timeout' must be a number of seconds (0: no limit)");
    }
    if (e["hierarchy"]) {
      const std::string h =
          r.oneOf(e["hierarchy"], "export.hierarchy", {"tags", "attributes", "none"});
      c.hierarchy = h == "tags"         ? HierarchyMode::kTags
                    : h == "attributes" ? HierarchyMode::kAttributes
                                        : HierarchyMode::kNone;
    }
    if (e["tag_style"])
      c.tag_style = r.oneOf(e["tag_style"], "export.tag_style", {"class", "path"}) == "path"
                        ? TagStyle::kPath
                        : TagStyle::kClass;
    if (e["external_data"]) {
      const std::string mode =
          r.oneOf(e["external_data"], "export.external_data", {"auto", "always", "never"});
      c.external_data = mode == "auto"     ? ExternalData::kAuto
                        : mode == "always" ? ExternalData::kAlways
                                           : ExternalData::kNever;
    }
    if (e["external_data_threshold"]) {
      c.external_data_threshold = r.scalar<int64_t>(
          e["external_data_threshold"], "export.external_data_threshold", "a number of bytes");
      // Above protobuf's limit the file could not be written at all.
      if (c.external_data_threshold <= 0 || c.external_data_threshold > INT32_MAX)
        r.fail(e["external_data_threshold"],
               fmt::format("'export.external_data_threshold' must be a number of bytes from 1 to "
                           "{} (protobuf's limit); the default is {}",
                           INT32_MAX, kDefaultExternalDataThreshold));
    }
  }
  if (root["emitters"]) c.emitters = r.emitters(root["emitters"]);
  if (const YAML::Node p = root["plugins"]) {
    r.checkKeys(p, "plugins", {"paths"});
    if (const YAML::Node paths = p["paths"]) {
      if (!paths.IsSequence()) r.fail(paths, "'plugins.paths' must be a list of directories");
      for (const auto& dir : paths) c.plugin_paths.push_back(r.path(dir, "plugins.paths"));
    }
  }
  if (const YAML::Node v = root["validate"]) {
    r.checkKeys(v, "validate", {"numeric", "atol", "rtol"});
    if (v["numeric"])
      c.validate_numeric = r.scalar<bool>(v["numeric"], "validate.numeric", "true or false");
    if (v["atol"]) c.atol = r.scalar<double>(v["atol"], "validate.atol", "a number");
    if (v["rtol"]) c.rtol = r.scalar<double>(v["rtol"], "validate.rtol", "a number");
  }
  if (root["seed"]) c.seed = r.scalar<uint64_t>(root["seed"], "seed", "a non-negative integer");
  return c;
}

InputSpec parseInputFlag(const std::string& flag) {
  const std::string usage =
      "expected NAME:DIMS:DTYPE such as input_ids:1x16:int64 (a dim 'batch=1' is dynamic)";
  InputSpec spec;
  const size_t first = flag.find(':');
  const size_t last = flag.rfind(':');
  if (first == std::string::npos || first == last)
    throw UsageError(fmt::format("--input '{}': {}", flag, usage));
  spec.name = flag.substr(0, first);
  spec.dtype = flag.substr(last + 1);
  if (std::find(kDtypes.begin(), kDtypes.end(), spec.dtype) == kDtypes.end())
    throw UsageError(fmt::format("--input '{}': unknown dtype '{}'; did you mean '{}'?", flag,
                                 spec.dtype, closestMatch(spec.dtype, kDtypes)));
  const std::string dims = flag.substr(first + 1, last - first - 1);
  size_t start = 0;
  while (start <= dims.size()) {
    size_t end = dims.find('x', start);
    std::string dim =
        dims.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const size_t eq = dim.find('=');
    try {
      size_t used = 0;
      const std::string digits = eq == std::string::npos ? dim : dim.substr(eq + 1);
      const int64_t size = std::stoll(digits, &used);
      if (used != digits.size() || size < 1) throw std::invalid_argument(dim);
      if (eq != std::string::npos)
        spec.dynamic[static_cast<int64_t>(spec.shape.size())] = dim.substr(0, eq);
      spec.shape.push_back(size);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--input '{}': bad dimension '{}'; {}", flag, dim, usage));
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return spec;
}

void checkConfig(const Config& c) {
  const std::string where = c.source.empty() ? "command line" : c.source;
  if (c.model_path.empty())
    throw UsageError(where + ": no model given; set model.path or pass MODEL.pt");
  if (c.output.empty())
    throw UsageError(where + ": no output given; set export.output or pass --output");
  if (c.opset < 14 || c.opset > 17)
    throw UsageError(fmt::format("{}: opset {} is not supported; use 14 to 17", where, c.opset));
  if (!(c.strategy_timeout > 0))
    throw UsageError(where + ": the strategy timeout must be a positive number of seconds");
  if (!(c.reference_timeout >= 0))
    throw UsageError(where + ": the reference timeout must be a number of seconds (0: no limit)");
  if (c.inputs.empty())
    throw UsageError(
        where + ": no inputs given; list them under 'inputs:' or pass --input NAME:1x16:int64");
}

}  // namespace mexport
