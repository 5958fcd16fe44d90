#include "weight_buffers.h"

#include <c10/core/CPUAllocator.h>

#include "uninitialized_string.h"

namespace mexport {
namespace {

void deleteString(void* context) { delete static_cast<std::string*>(context); }

class StringBackedAllocator final : public c10::Allocator {
 public:
  explicit StringBackedAllocator(c10::Allocator* fallback) : fallback_(fallback) {}

  c10::DataPtr allocate(size_t size) const override {
    if (size < kWeightBufferMinBytes) return fallback_->allocate(size);
    std::string* bytes = uninitializedString(size).release();
    return {bytes->data(), bytes, &deleteString, c10::Device(c10::kCPU)};
  }
  // Buffers cannot be given back by their data pointer alone.
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

 private:
  c10::Allocator* fallback_;
};

// The CPU allocator's priority as c10 registers it (REGISTER_ALLOCATOR); a
// setter of a lower priority is ignored.
constexpr uint8_t kDefaultPriority = 0;

}  // namespace

WeightBufferScope::WeightBufferScope() : previous_(c10::GetCPUAllocator()) {
  // Never destroyed: a storage made inside the scope keeps its allocator to
  // grow with. The fallback is the allocator of the first scope's time.
  static auto* allocator = new StringBackedAllocator(previous_);
  c10::SetCPUAllocator(allocator, kDefaultPriority);
}

WeightBufferScope::~WeightBufferScope() { c10::SetCPUAllocator(previous_, kDefaultPriority); }

std::optional<std::string> takeWeightBytes(const at::Tensor& tensor) {
  if (!tensor.defined() || !tensor.device().is_cpu() || !tensor.is_contiguous() ||
      tensor.storage_offset() != 0)
    return std::nullopt;
  const c10::DataPtr& data = tensor.storage().data_ptr();
  if (data.get_deleter() != &deleteString) return std::nullopt;
  auto* bytes = static_cast<std::string*>(data.get_context());
  // Empty once taken: a second tensor on the same buffer (tied weights) copies.
  if (bytes->size() != tensor.nbytes() || bytes->data() != tensor.data_ptr()) return std::nullopt;
  return std::move(*bytes);
}

}  // namespace mexport
