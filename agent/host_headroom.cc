#include "agent/host_headroom.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace augur::agent {
namespace {

// The horizon label in steps; nullopt for anything that is not a positive whole number.
std::optional<int> Horizon(std::string_view label) {
  int h = 0;
  auto [end, ec] = std::from_chars(label.data(), label.data() + label.size(), h);
  if (ec != std::errc() || end != label.data() + label.size() || h <= 0) return std::nullopt;
  return h;
}

}  // namespace

void HostHeadroom::Observe(const telemetry::SeriesKey& key, double value) {
  if (!std::isfinite(value)) return;
  const std::string& name = key.name();
  std::map<int, double>* into = nullptr;
  if (name == "memory_bytes:forecast_lo80" && key.label("kind") == "available") {
    into = &memory_lo_;
  } else if (name == "cpu_busy_seconds_total:rate:forecast_hi80" && key.label("cpu") == "all") {
    into = &busy_hi_;
  } else {
    return;
  }
  const std::optional<int> h = Horizon(key.label("horizon"));
  if (!h) return;
  std::lock_guard<std::mutex> lock(mu_);
  (*into)[*h] = value;
}

std::vector<workflow::HorizonFree> HostHeadroom::FreeByHorizon() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<workflow::HorizonFree> out;
  for (const auto& [h, mem] : memory_lo_) {
    auto busy = busy_hi_.find(h);
    if (busy == busy_hi_.end()) continue;
    out.push_back({h * step_s_, workflow::Resources{std::max(0.0, cores_ - busy->second),
                                                    static_cast<uint64_t>(std::max(0.0, mem))}});
  }
  return out;  // the maps are ordered by horizon
}

}  // namespace augur::agent
