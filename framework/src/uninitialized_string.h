// A string of a given size whose bytes are left as they are, for a buffer
// that is about to be overwritten whole (a file's bytes read into it): filling
// it first would fault in every page of a large weight twice over.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace mexport {

std::unique_ptr<std::string> uninitializedString(size_t size);

}  // namespace mexport
