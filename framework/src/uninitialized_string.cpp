// Compiled as C++23 (framework/CMakeLists.txt) for
// std::string::resize_and_overwrite; its header is plain C++17.
#include "uninitialized_string.h"

namespace mexport {

std::unique_ptr<std::string> uninitializedString(size_t size) {
  auto bytes = std::make_unique<std::string>();
  bytes->resize_and_overwrite(size, [](char*, size_t n) { return n; });
  return bytes;
}

}  // namespace mexport
