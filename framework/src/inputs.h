// Example inputs for the reference run: generated from the config (seeded) or
// read from NumPy .npy files.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "config.h"

namespace mexport {

// kMetaOnly makes generated inputs meta tensors: their dtypes and sizes, no
// values and no memory, for a run on meta tensors.
enum class InputValues { kReal, kMetaOnly };
std::vector<at::Tensor> makeInputs(const std::vector<InputSpec>& specs, uint64_t seed,
                                   InputValues values = InputValues::kReal);

// Reads a little-endian, C-ordered .npy file (format 1.0-3.0).
at::Tensor readNpy(const std::string& path);

// The bytes of a .npy file (format 1.0) holding `value`.
std::string npyBytes(const at::Tensor& value);

c10::ScalarType parseDtype(const std::string& dtype);
// The config's name of a dtype ("int64"), the inverse of parseDtype.
std::string dtypeName(c10::ScalarType type);

}  // namespace mexport
