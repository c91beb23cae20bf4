// Resources: an amount of CPU and memory, as the workflow engine's decisions count them.
//
// The decision core (ledger, scheduler, shard planning) works in this one small value type
// so that it needs nothing of the plugin layer; the executor converts to plugin::Resources
// at the backend boundary. CPU is in cores (fractional), memory in bytes.
#ifndef AUGUR_WORKFLOW_RESOURCES_H_
#define AUGUR_WORKFLOW_RESOURCES_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::workflow {

struct Resources {
  double cpu = 0;        // cores
  uint64_t memory = 0;   // bytes

  friend bool operator==(const Resources&, const Resources&) = default;

  // Every dimension of *this is at most the same dimension of `other`.
  bool FitsIn(const Resources& other) const {
    return cpu <= other.cpu + kCpuEpsilon && memory <= other.memory;
  }
  Resources operator+(const Resources& o) const { return {cpu + o.cpu, memory + o.memory}; }
  // Saturates at zero per dimension.
  Resources operator-(const Resources& o) const {
    return {std::max(0.0, cpu - o.cpu), memory > o.memory ? memory - o.memory : 0};
  }
  Resources& operator+=(const Resources& o) { return *this = *this + o; }
  Resources& operator-=(const Resources& o) { return *this = *this - o; }
  // Per-dimension minimum and maximum.
  static Resources Min(const Resources& a, const Resources& b) {
    return {std::min(a.cpu, b.cpu), std::min(a.memory, b.memory)};
  }
  static Resources Max(const Resources& a, const Resources& b) {
    return {std::max(a.cpu, b.cpu), std::max(a.memory, b.memory)};
  }
  // Scales both dimensions (memory rounded up to a whole byte).
  Resources Scaled(double f) const;

  // "2 cpu, 512Mi" for logs and --explain.
  std::string ToString() const;

  // CPU amounts are sums of fractions; a grant that fits exactly must not fail on rounding.
  static constexpr double kCpuEpsilon = 1e-9;
};

// "512Mi", "1.50Gi", "100" (bytes): the largest binary unit the amount reaches, with two
// decimals when it is not a whole number of that unit. For messages and logs.
std::string FormatMemory(uint64_t bytes);

// Quantities as workflow files write them. Both are exact or InvalidArgument saying why.
//   memory: 512Mi, 2Gi, 1.5Gi, 100M, 1G, 4096 (bytes); Ki Mi Gi Ti are powers of 1024,
//           k M G T powers of 1000.
//   cpu:    2, 0.5, 1.25, 500m (millicores); > 0.
Result<uint64_t> ParseMemory(std::string_view text);
Result<double> ParseCpu(std::string_view text);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_RESOURCES_H_
