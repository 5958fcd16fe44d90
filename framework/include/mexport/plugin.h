// The plugin ABI. A plugin is a shared object exporting one C function,
// `mexport_plugin_descriptor`, that returns a static descriptor. The host checks
// the ABI version, struct size and torch version, then calls `register_fn` with a
// registry of its own; nothing is kept if it fails. No exception may cross the
// boundary: register_fn is noexcept and reports failure through its result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>

#include <torch/csrc/api/include/torch/version.h>
#include <boost/config.hpp>

#include "mexport/registry.h"

// Raised whenever an SDK type changes layout (2: ExportSettings' external data
// fields, OutputFiles' new members).
#define MEXPORT_PLUGIN_ABI_VERSION 3u
#define MEXPORT_PLUGIN_ENTRY_POINT "mexport_plugin_descriptor"
#define MEXPORT_TORCH_VERSION TORCH_VERSION

extern "C" {

// Registers the plugin's strategies, emitters and converters. Returns 0 on
// success; otherwise writes a one-line reason into `error` (NUL-terminated,
// at most error_size bytes) and returns non-zero.
typedef int (*mexport_register_fn)(mexport::Registry* registry, char* error,
                                   std::size_t error_size) noexcept;

struct MexportPluginDescriptor {
  std::uint32_t abi_version;  // MEXPORT_PLUGIN_ABI_VERSION
  std::uint32_t struct_size;  // sizeof(MexportPluginDescriptor)
  const char* name;
  const char* version;
  const char* torch_version;  // MEXPORT_TORCH_VERSION the plugin was built against
  mexport_register_fn register_fn;
};

typedef const MexportPluginDescriptor* (*mexport_descriptor_fn)();
}

namespace mexport {

// Runs `body(registry)` and turns any exception into the C result, for
// register functions.
template <typename Body>
int guardedRegister(Registry* registry, char* error, std::size_t error_size, Body&& body) noexcept {
  try {
    body(*registry);
    return 0;
  } catch (const std::exception& e) {
    if (error != nullptr && error_size > 0) {
      std::strncpy(error, e.what(), error_size - 1);
      error[error_size - 1] = '\0';
    }
  } catch (...) {
    if (error != nullptr && error_size > 0)
      std::strncpy(error, "unknown exception", error_size - 1);
  }
  return 1;
}

}  // namespace mexport

// Defines the entry point. REGISTER is a `void(mexport::Registry&)` function.
#define MEXPORT_PLUGIN(NAME, VERSION, REGISTER)                                               \
  static int mexport_plugin_register(mexport::Registry* registry, char* error,                \
                                     std::size_t error_size) noexcept {                       \
    return mexport::guardedRegister(registry, error, error_size, REGISTER);                   \
  }                                                                                           \
  extern "C" BOOST_SYMBOL_EXPORT const MexportPluginDescriptor* mexport_plugin_descriptor() { \
    static const MexportPluginDescriptor descriptor{                                          \
        MEXPORT_PLUGIN_ABI_VERSION, sizeof(MexportPluginDescriptor), NAME, VERSION,           \
        MEXPORT_TORCH_VERSION,      &mexport_plugin_register};                                \
    return &descriptor;                                                                       \
  }
