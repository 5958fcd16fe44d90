#include "inputs.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <fstream>
#include <regex>

#include "mexport/errors.h"

namespace mexport {

namespace {
// The config's dtype names.
const std::map<std::string, c10::ScalarType> kTorchDtypes = {
    {"float32", at::kFloat},     {"float16", at::kHalf}, {"float64", at::kDouble},
    {"bfloat16", at::kBFloat16}, {"int64", at::kLong},   {"int32", at::kInt},
    {"int16", at::kShort},       {"int8", at::kChar},    {"uint8", at::kByte},
    {"bool", at::kBool}};
}  // namespace

c10::ScalarType parseDtype(const std::string& dtype) {
  auto it = kTorchDtypes.find(dtype);
  if (it == kTorchDtypes.end()) throw UsageError("unknown dtype '" + dtype + "'");
  return it->second;
}

std::string dtypeName(c10::ScalarType type) {
  for (const auto& [name, t] : kTorchDtypes)
    if (t == type) return name;
  return c10::toString(type);
}

// NumPy type codes (kind + bytes) of the dtypes mexport reads and writes.
const std::map<std::string, c10::ScalarType> kNumpyTypes = {
    {"f4", at::kFloat}, {"f2", at::kHalf}, {"f8", at::kDouble}, {"i8", at::kLong}, {"i4", at::kInt},
    {"i2", at::kShort}, {"i1", at::kChar}, {"u1", at::kByte},   {"b1", at::kBool}};

at::Tensor readNpy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw UsageError(fmt::format("input file '{}' not found", path));
  char magic[8];
  file.read(magic, 8);
  if (!file || std::string(magic, 6) != "\x93NUMPY")
    throw UsageError(fmt::format("{}: not a NumPy .npy file; save it with numpy.save", path));
  const int major = magic[6];
  uint32_t header_size = 0;
  unsigned char size_bytes[4] = {0, 0, 0, 0};
  file.read(reinterpret_cast<char*>(size_bytes), major == 1 ? 2 : 4);
  for (int i = (major == 1 ? 1 : 3); i >= 0; --i) header_size = header_size * 256 + size_bytes[i];
  std::string header(header_size, '\0');
  file.read(header.data(), header_size);

  std::smatch descr, order, shape;
  if (!std::regex_search(header, descr, std::regex("'descr':\\s*'([<>|=])([a-z])(\\d+)'")) ||
      !std::regex_search(header, order, std::regex("'fortran_order':\\s*(True|False)")) ||
      !std::regex_search(header, shape, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw UsageError(fmt::format("{}: unreadable .npy header", path));
  if (descr[1] == ">")
    throw UsageError(
        fmt::format("{}: big-endian arrays are not supported; save as little-endian", path));
  if (order[1] == "True")
    throw UsageError(fmt::format(
        "{}: Fortran-ordered arrays are not supported; use numpy.ascontiguousarray", path));

  const std::string code = descr[2].str() + descr[3].str();
  auto type = kNumpyTypes.find(code);
  if (type == kNumpyTypes.end())
    throw UsageError(fmt::format("{}: NumPy dtype '{}' is not supported", path, code));

  std::vector<int64_t> dims;
  std::string dims_text = shape[1];
  std::regex number("\\d+");
  for (auto it = std::sregex_iterator(dims_text.begin(), dims_text.end(), number);
       it != std::sregex_iterator(); ++it)
    dims.push_back(std::stoll(it->str()));
  at::Tensor tensor = at::empty(dims, at::TensorOptions().dtype(type->second));
  const auto bytes = static_cast<std::streamsize>(tensor.nbytes());
  file.read(static_cast<char*>(tensor.data_ptr()), bytes);
  if (file.gcount() != bytes)
    throw UsageError(fmt::format("{}: file is shorter than its header says", path));
  return tensor;
}

std::string npyBytes(const at::Tensor& value) {
  const at::Tensor t = value.contiguous();
  std::string code;
  for (const auto& [c, type] : kNumpyTypes)
    if (type == t.scalar_type()) code = c;
  if (code.empty())
    throw ExportError(
        fmt::format("dtype {} cannot be saved as .npy", c10::toString(t.scalar_type())));
  const char order = code == "b1" || code[1] == '1' ? '|' : '<';
  std::string shape;
  for (int64_t d : t.sizes()) shape += std::to_string(d) + ", ";
  std::string header = fmt::format("{{'descr': '{}{}', 'fortran_order': False, 'shape': ({}), }}",
                                   order, code, shape);
  // Format 1.0: magic, version, 2-byte header length; data aligned to 64 bytes.
  header += std::string(63 - (10 + header.size()) % 64, ' ') + "\n";
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return bytes;
}

std::vector<at::Tensor> makeInputs(const std::vector<InputSpec>& specs, uint64_t seed,
                                   InputValues values) {
  std::vector<at::Tensor> inputs;
  for (size_t i = 0; i < specs.size(); ++i) {
    const InputSpec& spec = specs[i];
    if (!spec.file.empty()) {
      at::Tensor t = readNpy(spec.file);
      if (!spec.dtype.empty() && t.scalar_type() != parseDtype(spec.dtype))
        throw UsageError(fmt::format(
            "input '{}': {} holds {} values but the config says dtype {}; save the array as {} "
            "or fix the dtype",
            spec.name, spec.file, dtypeName(t.scalar_type()), spec.dtype, spec.dtype));
      for (const auto& [axis, name] : spec.dynamic)
        if (axis < 0 || axis >= t.dim())
          throw UsageError(fmt::format("input '{}': dynamic axis {} but {} has {} dims", spec.name,
                                       axis, spec.file, t.dim()));
      inputs.push_back(t);
      continue;
    }
    const c10::ScalarType type = parseDtype(spec.dtype);
    // Each input draws from its own generator so adding an input keeps the others.
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed + i);
    const auto options = at::TensorOptions().dtype(type);
    at::Tensor t;
    if (values == InputValues::kMetaOnly) {
      t = at::empty(spec.shape, options.device(c10::kMeta));
    } else if (spec.fill) {
      t = at::full(spec.shape, *spec.fill, options);
    } else if (at::isFloatingType(type)) {
      t = spec.range ? at::empty(spec.shape, at::kDouble)
                           .uniform_(spec.range->first, spec.range->second, generator)
                           .to(type)
                     : at::randn(spec.shape, generator, at::kDouble).to(type);
    } else {
      const auto [low, high] =
          spec.range.value_or(std::make_pair(0.0, type == at::kBool ? 2.0 : 10.0));
      t = at::randint(static_cast<int64_t>(low), static_cast<int64_t>(high), spec.shape, generator,
                      at::kLong)
              .to(type);
    }
    inputs.push_back(t);
  }
  return inputs;
}

}  // namespace mexport
