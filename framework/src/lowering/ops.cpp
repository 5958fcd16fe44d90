// Registers every built-in op family.
#include "ops.h"

namespace mexport {

void populateBuiltinOps(ConverterRegistry& registry) {
  populateActivationOps(registry);
  populateAttentionOps(registry);
  populateControlFlowOps(registry);
  populateConvOps(registry);
  populateElementwiseOps(registry);
  populateEmbeddingOps(registry);
  populateInplaceOps(registry);
  populateLinearOps(registry);
  populateNormalizationOps(registry);
  populateQuantizationOps(registry);
  populateRecurrentOps(registry);
  populateReductionOps(registry);
  populateShapeOps(registry);
}

}  // namespace mexport
