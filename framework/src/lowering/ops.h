// The built-in op converters, one populate function per op family (one source
// file each, torch-mlir style). populateBuiltinOps registers them all.
#pragma once

#include "mexport/lowering.h"

namespace mexport {

void populateActivationOps(ConverterRegistry& registry);     // ops_activation.cpp
void populateAttentionOps(ConverterRegistry& registry);      // ops_attention.cpp
void populateControlFlowOps(ConverterRegistry& registry);    // ops_control_flow.cpp
void populateConvOps(ConverterRegistry& registry);           // ops_conv.cpp
void populateElementwiseOps(ConverterRegistry& registry);    // ops_elementwise.cpp
void populateEmbeddingOps(ConverterRegistry& registry);      // ops_embedding.cpp
void populateInplaceOps(ConverterRegistry& registry);        // ops_inplace.cpp
void populateLinearOps(ConverterRegistry& registry);         // ops_linear.cpp
void populateNormalizationOps(ConverterRegistry& registry);  // ops_normalization.cpp
void populateQuantizationOps(ConverterRegistry& registry);   // ops_quantization.cpp
void populateRecurrentOps(ConverterRegistry& registry);      // ops_recurrent.cpp
void populateReductionOps(ConverterRegistry& registry);      // ops_reduction.cpp
void populateShapeOps(ConverterRegistry& registry);          // ops_shape.cpp

// All of the above.
void populateBuiltinOps(ConverterRegistry& registry);  // ops.cpp

}  // namespace mexport
