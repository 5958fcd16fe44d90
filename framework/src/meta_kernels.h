// Meta kernels (the result's dtype and sizes, no data) for aten ops that
// libtorch 1.13 leaves without one in C++ (its Python package adds them from
// Python, torch/_meta_registrations.py). With them, the shapes run of
// model_loader covers common models; an op that still has none makes that run
// fail and the real forward run instead.
#pragma once

namespace mexport {

// Registers each kernel whose op has no Meta kernel yet; once per process.
void registerMissingMetaKernels();

}  // namespace mexport
