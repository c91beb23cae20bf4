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
  if (key.label("kind") == "available") {
    if (name == "memory_bytes:forecast_lo80") into = &memory_lo_;
    if (name == "memory_bytes:forecast_hi80") into = &memory_hi_;
  } else if (key.label("cpu") == "all") {
    if (name == "cpu_busy_seconds_total:rate:forecast_hi80") into = &busy_hi_;
    if (name == "cpu_busy_seconds_total:rate:forecast_lo80") into = &busy_lo_;
  }
  if (into == nullptr) return;
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

std::vector<HostHeadroom::Interval> HostHeadroom::IntervalsByHorizon() const {
  std::vector<workflow::HorizonFree> lo = FreeByHorizon();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Interval> out;
  for (const workflow::HorizonFree& h : lo) {
    Interval i{h.ahead_s, h.free, h.free};
    const int steps = static_cast<int>(std::lround(h.ahead_s / step_s_));
    if (auto m = memory_hi_.find(steps); m != memory_hi_.end()) {
      i.hi.memory = std::max(i.lo.memory, static_cast<uint64_t>(std::max(0.0, m->second)));
    }
    if (auto b = busy_lo_.find(steps); b != busy_lo_.end()) {
      i.hi.cpu = std::max(i.lo.cpu, cores_ - std::max(0.0, b->second));
    }
    out.push_back(i);
  }
  return out;
}

}  // namespace augur::agent
