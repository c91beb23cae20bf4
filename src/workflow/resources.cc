#include "workflow/resources.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace augur::workflow {
std::string FormatMemory(uint64_t bytes) {
  constexpr const char* kUnits[] = {"Ti", "Gi", "Mi", "Ki"};
  for (int i = 0; i < 4; ++i) {
    const uint64_t unit = 1ULL << (10 * (4 - i));
    if (bytes < unit) continue;
    if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, kUnits[i]);
    return fmt::format("{:.2f}{}", static_cast<double>(bytes) / static_cast<double>(unit),
                       kUnits[i]);
  }
  return fmt::format("{}", bytes);
}

Resources Resources::Scaled(double f) const {
  Resources out;
  out.cpu = cpu * f;
  // long double: a 64-bit mantissa keeps byte counts exact where double's 53 bits would not.
  const long double m = std::ceil(static_cast<long double>(memory) * f);
  constexpr auto kMax = static_cast<long double>(std::numeric_limits<uint64_t>::max());
  out.memory = m <= 0 ? 0 : m >= kMax ? std::numeric_limits<uint64_t>::max()
                                      : static_cast<uint64_t>(m);
  return out;
}

std::string Resources::ToString() const {
  return fmt::format("{:g} cpu, {}", cpu, FormatMemory(memory));
}

}  // namespace augur::workflow
