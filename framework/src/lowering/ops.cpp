// Registers every built-in op family.
#include "ops.h"

namespace mexport {

void populateBuiltinOps(ConverterRegistry& registry) {
  populateActivationOps(registry);
  populateConvOps(registry);
  populateElementwiseOps(registry);
  populateEmbeddingOps(registry);
  populateLinearOps(registry);
  populateNormalizationOps(registry);
  populateReductionOps(registry);
  populateShapeOps(registry);
}

}  // namespace mexport
