// Fuzzes augur::agent::ParseConfig (agent/config.cc) with arbitrary YAML text, and checks
// that what it accepts is inside the ranges config.h documents.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "agent/config.h"

namespace {

void Require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "config_fuzz: accepted a config with %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace augur::agent;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // The scalar parsers see the raw input too: they are reached from the YAML only after
  // the scalar has been through yaml-cpp.
  (void)ParseDuration(text);
  (void)ParseHostPort(text);

  augur::Result<Config> r = ParseConfig(text, "fuzz.yaml");
  if (!r) {
    Require(!r.error().message().empty(), "an error without a message");
    return 0;
  }
  const Config& c = *r;
  using std::chrono::milliseconds;
  Require(c.telemetry.interval >= milliseconds(10) && c.telemetry.interval <= std::chrono::hours(1),
          "telemetry.interval out of 10ms..1h");
  Require(c.telemetry.capacity >= 16 && c.telemetry.capacity <= 10'000'000,
          "telemetry.capacity out of 16..1e7");
  Require(c.telemetry.max_series >= 16 && c.telemetry.max_series <= 1'000'000,
          "telemetry.max_series out of 16..1e6");
  Require(c.telemetry.cgroup_depth >= 0 && c.telemetry.cgroup_depth <= 16,
          "telemetry.cgroup_depth out of 0..16");
  Require(!c.telemetry.shm_name.empty() && c.telemetry.shm_name.size() <= 200,
          "a bad telemetry.shm_name length");
  Require(c.forecast.step >= std::chrono::seconds(1) && c.forecast.step <= std::chrono::hours(24),
          "forecast.step out of 1s..1d");
  for (int h : c.forecast.horizons) Require(h >= 1 && h <= 1024, "a horizon out of 1..1024");
  Require(c.forecast.anomaly_threshold > 0, "anomaly_threshold <= 0");
  Require(c.forecast.history == 0 ||
              (c.forecast.history >= 2 && c.forecast.history <= c.telemetry.capacity),
          "forecast.history out of 0 or 2..capacity");
  Require(c.plugins.call_timeout >= milliseconds(100) && c.plugins.call_timeout <= std::chrono::minutes(10),
          "plugins.call_timeout out of 100ms..10m");
  for (const auto& [name, kv] : c.plugins.config) {
    bool enabled = false;
    for (const std::string& e : c.plugins.enabled) enabled |= e == name;
    Require(enabled, "plugins.config for a plugin not enabled");
  }
  if (c.metrics.enabled) Require(ParseHostPort(c.metrics.listen).has_value(), "a bad metrics.listen");
  return 0;
}
