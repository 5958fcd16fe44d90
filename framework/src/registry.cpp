#include "mexport/registry.h"

#include <stdexcept>

#include "mexport/lowering.h"

namespace mexport {
namespace {

template <typename T>
const T* findByName(const std::vector<std::shared_ptr<const T>>& items, const std::string& name) {
  for (const auto& item : items)
    if (item->name() == name) return item.get();
  return nullptr;
}

}  // namespace

Registry::Registry() : converters_(std::make_unique<ConverterRegistry>()) {}
Registry::~Registry() = default;
Registry::Registry(Registry&&) noexcept = default;
Registry& Registry::operator=(Registry&&) noexcept = default;

void Registry::addStrategy(std::shared_ptr<const Strategy> strategy) {
  if (!strategy) throw std::invalid_argument("null strategy");
  if (findByName(strategies_, strategy->name()))
    throw std::invalid_argument("strategy '" + strategy->name() + "' is already registered");
  strategies_.push_back(std::move(strategy));
}

void Registry::addEmitter(std::shared_ptr<const Emitter> emitter) {
  if (!emitter) throw std::invalid_argument("null emitter");
  if (findByName(emitters_, emitter->name()))
    throw std::invalid_argument("emitter '" + emitter->name() + "' is already registered");
  emitters_.push_back(std::move(emitter));
}

const Strategy* Registry::strategy(const std::string& name) const {
  return findByName(strategies_, name);
}
const Emitter* Registry::emitter(const std::string& name) const {
  return findByName(emitters_, name);
}

void Registry::merge(Registry&& other) {
  for (const auto& s : other.strategies_)
    if (strategy(s->name()))
      throw std::invalid_argument("strategy '" + s->name() + "' is already registered");
  for (const auto& e : other.emitters_)
    if (emitter(e->name()))
      throw std::invalid_argument("emitter '" + e->name() + "' is already registered");
  ConverterRegistry merged_converters = *converters_;
  merged_converters.merge(std::move(*other.converters_));
  *converters_ = std::move(merged_converters);
  for (auto& s : other.strategies_) strategies_.push_back(std::move(s));
  for (auto& e : other.emitters_) emitters_.push_back(std::move(e));
  other.strategies_.clear();
  other.emitters_.clear();
}

}  // namespace mexport
