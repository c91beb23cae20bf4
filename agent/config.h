// Config: augurd's configuration, from YAML (/etc/augur/augur.yaml by default) or the
// built-in defaults.
//
// Loading is strict: an unknown key, a value of the wrong type, a bad duration or an
// out-of-range number is an InvalidArgument whose message names the file, line and key
// ("augur.yaml:7: telemetry.interval: bad duration 'fast' (use e.g. 500ms, 1s, 2m)").
// Every error found is reported, one per line, not just the first.
#ifndef AUGUR_AGENT_CONFIG_H_
#define AUGUR_AGENT_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"

namespace augur::agent {

enum class EbpfMode { kAuto, kOn, kOff };

struct TelemetryConfig {
  std::chrono::milliseconds interval{1000};  // sampling period; 10ms..1h
  EbpfMode ebpf = EbpfMode::kAuto;
  std::string shm_name = "augur";            // /dev/shm/<shm_name>
  uint32_t capacity = 3600;                  // points per series; 16..1e7
  uint32_t max_series = 2048;                // directory slots; 16..1e6
  int cgroup_depth = 3;                      // how deep per-cgroup series go below the root
  uint32_t max_cgroups = 256;                // cap on cgroups with their own series
};

struct MetricsConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:9464";     // host:port; port 0 picks a free one
};

struct LogConfig {
  std::string level = "info";                // trace|debug|info|warn|error
};

struct Config {
  TelemetryConfig telemetry;
  MetricsConfig metrics;
  LogConfig log;
};

// Built-in defaults (what augurd uses when the config file is absent).
Config DefaultConfig();

// Parses YAML text. `origin` names the source in messages (a file path or "<string>").
Result<Config> ParseConfig(std::string_view yaml, std::string_view origin = "<string>");
// Reads and parses a file. NotFound when it does not exist (augurd then uses the defaults
// only for the default path; an explicit --config that is missing is an error).
Result<Config> LoadConfigFile(const std::string& path);

// "500ms", "1s", "1.5s", "2m", "1h" -> milliseconds. InvalidArgument otherwise.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

std::string_view EbpfModeName(EbpfMode mode);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONFIG_H_
