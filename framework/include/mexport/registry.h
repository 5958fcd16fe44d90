// The host-owned registry plugins register into.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mexport/emitter.h"
#include "mexport/strategy.h"

namespace mexport {

class ConverterRegistry;  // mexport/lowering.h; kept out so emitters need no torch headers

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(Registry&&) noexcept;
  Registry& operator=(Registry&&) noexcept;

  // Throw std::invalid_argument when the name is taken.
  void addStrategy(std::shared_ptr<const Strategy> strategy);
  void addEmitter(std::shared_ptr<const Emitter> emitter);
  ConverterRegistry& converters() { return *converters_; }
  const ConverterRegistry& converters() const { return *converters_; }

  const Strategy* strategy(const std::string& name) const;
  const Emitter* emitter(const std::string& name) const;
  const std::vector<std::shared_ptr<const Strategy>>& strategies() const { return strategies_; }
  const std::vector<std::shared_ptr<const Emitter>>& emitters() const { return emitters_; }

  // Moves everything of `other` in, all or nothing; throws std::invalid_argument
  // naming the first clash.
  void merge(Registry&& other);

 private:
  std::vector<std::shared_ptr<const Strategy>> strategies_;
  std::vector<std::shared_ptr<const Emitter>> emitters_;
  std::unique_ptr<ConverterRegistry> converters_;
};

}  // namespace mexport
