#include "workflow/resources.h"

#include <cmath>

#include <fmt/format.h>

namespace augur::workflow {

Resources Resources::Scaled(double f) const {
  return {cpu * f, static_cast<uint64_t>(std::ceil(double(memory) * f))};
}

std::string Resources::ToString() const {
  // Memory in the largest binary unit that keeps it readable; exact bytes below a KiB.
  static constexpr const char* kUnits[] = {"", "Ki", "Mi", "Gi", "Ti"};
  double m = double(memory);
  int u = 0;
  while (m >= 1024 && u < 4) {
    m /= 1024;
    ++u;
  }
  const std::string mem = u == 0 ? fmt::format("{}", memory)
                                 : (m == std::floor(m) ? fmt::format("{:.0f}{}", m, kUnits[u])
                                                       : fmt::format("{:.1f}{}", m, kUnits[u]));
  return fmt::format("{:g} cpu, {}", cpu, mem);
}

}  // namespace augur::workflow
