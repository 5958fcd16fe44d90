#include "mexport/tagging.h"

namespace mexport {

const char* provenanceName(Provenance provenance) {
  switch (provenance) {
    case Provenance::kDirect:
      return "direct";
    case Provenance::kInferred:
      return "inferred";
    case Provenance::kRoot:
      return "root";
    case Provenance::kUntagged:
      return "untagged";
  }
  return "untagged";
}

}  // namespace mexport
