#include "weight_buffers.h"

#include <c10/core/CPUAllocator.h>

#include <mutex>
#include <unordered_map>

#include "uninitialized_string.h"

namespace mexport {
namespace {

// The string behind each buffer, by its data pointer. Every DataPtr's context
// is its data, as c10 requires of raw_allocate / raw_deallocate (kernels use
// them for scratch space; a null raw_deleter fails an internal assertion).
struct BufferTable {
  std::mutex mutex;
  std::unordered_map<const void*, std::string*> strings;
  c10::DeleterFnPtr fallback_deleter = nullptr;  // for raw pointers of small sizes
};

BufferTable& buffers() {
  static auto* table = new BufferTable;  // never destroyed: buffers outlive everything
  return *table;
}

void deleteBuffer(void* data) {
  BufferTable& table = buffers();
  std::string* bytes = nullptr;
  {
    const std::lock_guard<std::mutex> lock(table.mutex);
    auto it = table.strings.find(data);
    if (it != table.strings.end()) {
      bytes = it->second;
      table.strings.erase(it);
    }
  }
  if (bytes != nullptr)
    delete bytes;
  else if (table.fallback_deleter != nullptr)
    table.fallback_deleter(data);  // a small raw_allocate went to the fallback
}

class StringBackedAllocator final : public c10::Allocator {
 public:
  explicit StringBackedAllocator(c10::Allocator* fallback) : fallback_(fallback) {
    buffers().fallback_deleter = fallback->raw_deleter();
  }

  c10::DataPtr allocate(size_t size) const override {
    if (size < kWeightBufferMinBytes) return fallback_->allocate(size);
    std::string* bytes = uninitializedString(size).release();
    BufferTable& table = buffers();
    {
      const std::lock_guard<std::mutex> lock(table.mutex);
      table.strings.emplace(bytes->data(), bytes);
    }
    return {bytes->data(), bytes->data(), &deleteBuffer, c10::Device(c10::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &deleteBuffer; }

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
  if (data.get_deleter() != &deleteBuffer) return std::nullopt;
  BufferTable& table = buffers();
  std::string* bytes = nullptr;
  {
    const std::lock_guard<std::mutex> lock(table.mutex);
    auto it = table.strings.find(data.get());
    if (it == table.strings.end()) return std::nullopt;
    bytes = it->second;
  }
  // Empty once taken: a second tensor on the same buffer (tied weights) copies.
  if (bytes->size() != tensor.nbytes() || bytes->data() != tensor.data_ptr()) return std::nullopt;
  return std::move(*bytes);
}

}  // namespace mexport
