#include "agent/host_headroom.h"

#include <algorithm>
#include <cmath>

namespace augur::agent {

void HostHeadroom::Observe(const telemetry::SeriesKey& key, double value) {
  if (!std::isfinite(value)) return;
  const std::string& name = key.name();
  if (name == "memory_bytes:forecast_lo80" && key.label("kind") == "available") {
    std::lock_guard<std::mutex> lock(mu_);
    memory_lo_[std::string(key.label("horizon"))] = value;
  } else if (name == "cpu_busy_seconds_total:rate:forecast_hi80" && key.label("cpu") == "all") {
    std::lock_guard<std::mutex> lock(mu_);
    busy_hi_[std::string(key.label("horizon"))] = value;
  }
}

std::optional<workflow::Resources> HostHeadroom::PredictedFree() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (memory_lo_.empty() || busy_hi_.empty()) return std::nullopt;
  double mem = memory_lo_.begin()->second;
  for (const auto& [h, v] : memory_lo_) mem = std::min(mem, v);
  double busy = 0;
  for (const auto& [h, v] : busy_hi_) busy = std::max(busy, v);
  return workflow::Resources{std::max(0.0, cores_ - busy),
                             static_cast<uint64_t>(std::max(0.0, mem))};
}

}  // namespace augur::agent
