// Config: augurd's configuration, from YAML (/etc/augur/augur.yaml by default) or the
// built-in defaults.
//
// Loading is strict: an unknown key, a value of the wrong type, a bad duration or an
// out-of-range number is an InvalidArgument whose message names the file, line, column and
// key ("augur.yaml:7:3: telemetry.interval: bad duration 'fast' (use e.g. 500ms, 1s, 2m)"),
// as every YAML file augur reads does (common/yaml_reader.h). Every error found is
// reported, one per line, not just the first. Duplicate keys are errors.
// An empty file, one holding only comments, and a section left empty (`log:`) mean the
// defaults.
#ifndef AUGUR_AGENT_CONFIG_H_
#define AUGUR_AGENT_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "augur_paths.h"
#include "workflow/workflow_config.h"

namespace augur::agent {

// In YAML: auto|on|off. The YAML booleans true/false are accepted as on/off, because YAML 1.1
// users write them and a mode that silently meant "auto" would surprise.
enum class EbpfMode { kAuto, kOn, kOff };

struct TelemetryConfig {
  std::chrono::milliseconds interval{1000};  // sampling period; 10ms..1h
  EbpfMode ebpf = EbpfMode::kAuto;
  std::string shm_name = "augur";            // /dev/shm/<shm_name>; [A-Za-z0-9_.-]{1,200}
  uint32_t capacity = 3600;                  // points per series; 16..1e7
  uint32_t max_series = 2048;                // directory slots; 16..1e6
  int cgroup_depth = 3;                      // how deep per-cgroup series go below the root; 0..16
  uint32_t max_cgroups = 256;                // cap on cgroups with their own series; 0..100000

  friend bool operator==(const TelemetryConfig&, const TelemetryConfig&) = default;
};

struct MetricsConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:9464";     // host:port or [v6addr]:port; port 0 picks a free one
  // Connections open at once, and from one peer IP address; 1..100000 each. At the cap the
  // connection waiting longest for a request head is closed to serve a new one.
  uint32_t max_connections = 64;
  uint32_t max_connections_per_client = 8;
  // The time a connection gets to send a whole request head, from connect or from the
  // previous response (so also the idle limit of a kept-alive one); 100ms..10m.
  std::chrono::milliseconds header_timeout{2000};

  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

struct LogConfig {
  std::string level = "info";                // trace|debug|info|warn|error

  friend bool operator==(const LogConfig&, const LogConfig&) = default;
};

// Forecasting and anomaly detection over collected series (docs/FORECAST.md).
struct ForecastConfig {
  bool enabled = true;
  std::chrono::milliseconds step{60000};     // forecaster grid step; 1s..1d
  std::vector<int> horizons = {1, 5, 15};    // steps ahead; each 1..1024
  // Selectors: a metric name with optional labels that must match. Counters (`*_total`)
  // are forecast as per-second rates.
  // The default is the host-level essentials: each forecast series adds 11 derived series
  // to the store (3 per horizon, a score and an event count).
  std::vector<std::string> series = {
      "cpu_busy_seconds_total",
      "memory_bytes{kind=\"available\"}",
      "pressure_ratio{kind=\"some\",window=\"10s\"}",
      "runqueue_latency_seconds{stat=\"p99\"}",
      "cgroup_cpu_seconds_total",
      "cgroup_memory_bytes"};
  std::string state_dir = AUGUR_DEFAULT_STATE_DIR "/forecast";  // "" = don't persist
  double anomaly_threshold = 8.0;            // lower is more sensitive; > 0
  uint32_t max_series = 256;                 // series forecast at most; 1..100000
  // Points the store keeps of each derived series (forecasts, anomaly score and events),
  // which get one point per step: 1440 x 60 s is a day. 0 = min(1440, telemetry.capacity);
  // else 2..telemetry.capacity.
  uint32_t history = 0;

  friend bool operator==(const ForecastConfig&, const ForecastConfig&) = default;
};

// Provisioning-backend plugins (docs/PLUGINS.md). Each name in `enabled` loads
// <dir>/augur-<name>.so inside its own augur-plugin-host process.
struct PluginsConfig {
  std::string dir = AUGUR_DEFAULT_PLUGIN_DIR;                   // absolute path
  std::vector<std::string> enabled;                   // names, [A-Za-z0-9_-]{1,64}, no repeats
  std::string state_dir = AUGUR_DEFAULT_STATE_DIR "/plugins";  // absolute path; handles survive restarts
  std::chrono::milliseconds call_timeout{10'000};     // a call slower than this is a hang; 100ms..10m
  std::chrono::milliseconds health_interval{10'000};  // describe() probe period; 100ms..1h
  // plugins.config.<name>: key/value strings handed to that plugin's init(). Every <name>
  // must be in `enabled` (a typo would otherwise configure nothing, silently). Keys are
  // [A-Za-z0-9_.-]{1,128}; values any scalar, passed as written.
  std::map<std::string, std::map<std::string, std::string>> config;

  friend bool operator==(const PluginsConfig&, const PluginsConfig&) = default;
};

// The local control socket augurctl talks to augurd on (agent/control_server.h).
struct ControlConfig {
  std::string socket = "/run/augur/augur.sock";  // absolute path
  // Members of this group (and root) may use the socket; the socket file is made 0660 with
  // this group when it exists, else 0600 (root only). A group name: [A-Za-z_][A-Za-z0-9_.-]*
  // of up to 32 characters.
  std::string group = "augur";

  friend bool operator==(const ControlConfig&, const ControlConfig&) = default;
};

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// The peer mesh (docs/MESH.md). Off by default: a host joins a mesh only when told to.
struct MeshConfig {
  bool enabled = false;
  std::string name;                  // this host's name in the mesh; "": its host name
  std::string listen = "0.0.0.0:7946";
  // The host:port peers reach this host at; "": the listen address (which then must not be
  // a wildcard).
  std::string advertise;
  // Hosts to join through, NAME@HOST:PORT: a CURVE client must know the key of the server
  // it connects to, looked up by NAME in authorized_keys.
  std::vector<std::string> seeds;
  std::string key_file = AUGUR_DEFAULT_CONFIG_DIR "/mesh/host.key";           // augurctl keygen
  std::string authorized_keys = AUGUR_DEFAULT_CONFIG_DIR "/mesh/authorized_keys";
  std::string zone;                  // labels gossiped with this host's headroom
  std::string region;
  uint64_t max_message = 64 * 1024;  // bytes; 1Ki..16Mi
  // Hosts besides the owner that hold a copy of each workflow's state (docs/MESH.md,
  // "Replication and failover"); 0..16.
  uint32_t replicas = 2;
  // The largest shard input or output moved between hosts (docs/MESH.md, "Moving shard
  // data"); bytes, 1Ki..1Ti. Over it the attempt fails, naming the file, its size and this.
  uint64_t max_transfer_bytes = 1ULL << 30;
  // The bytes this host's kept shard outputs (kept for a new owner after a takeover) may take
  // together; over it the oldest are deleted first (docs/MESH.md, "Outputs after a
  // takeover"). 0: no cap; else 1Ki..1024Ti.
  uint64_t max_kept_bytes = 10ULL << 30;

  friend bool operator==(const MeshConfig&, const MeshConfig&) = default;
};

// A mesh seed: NAME@HOST:PORT.
struct MeshSeed {
  std::string name;
  HostPort at;
};
Result<MeshSeed> ParseMeshSeed(std::string_view text);

struct Config {
  TelemetryConfig telemetry;
  MetricsConfig metrics;
  LogConfig log;
  PluginsConfig plugins;
  ForecastConfig forecast;
  ControlConfig control;
  workflow::WorkflowsConfig workflows;  // src/workflow/workflow_config.h
  MeshConfig mesh;

  friend bool operator==(const Config&, const Config&) = default;
};

// Built-in defaults (what augurd uses when the config file is absent).
Config DefaultConfig();

// Every key the parser accepts, dotted ("telemetry.interval", "workflows.prewarm.lead"),
// sections first and then their keys, taken from the same tables that reject unknown keys.
// The keys under plugins.config.<name> are each plugin's own and are not listed. For the
// man page's completeness test (augur.yaml(5)).
std::vector<std::string> ConfigKeys();

// The dotted keys whose values differ between `a` and `b` ("telemetry.interval",
// "plugins.config.process"), in file order; for SIGHUP's report of what needs a restart.
std::vector<std::string> ChangedKeys(const Config& a, const Config& b);

// What --check-config checks beyond the file itself: that the segment the config asks for
// fits in /dev/shm's free space now. The message names the keys to change.
Status CheckConfigFitsHost(const Config& config);

// Parses YAML text. `origin` names the source in messages (a file path or "<string>").
Result<Config> ParseConfig(std::string_view yaml, std::string_view origin = "<string>");
// Reads and parses a file. NotFound when it does not exist (augurd then uses the defaults
// only for the default path; an explicit --config that is missing is an error).
Result<Config> LoadConfigFile(const std::string& path);

// "500ms", "1s", "1.5s", "2m", "1h" -> milliseconds: one non-negative number and one unit
// (ms, s, m, h), no space. A fraction is fine when the result is a whole number of
// milliseconds. A bare number is rejected with a hint to add a unit, because `interval: 5`
// could mean seconds or milliseconds. InvalidArgument otherwise. No range check: callers
// know their range. The same as yaml::ParseDurationText (common/yaml_reader.h), which workflow
// files use too.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

std::string_view EbpfModeName(EbpfMode mode);

// A listen address split into its parts. `host` has no brackets ("::1" for "[::1]:80").
// Parses "host:port" (host a name or IPv4 address) or "[v6addr]:port"; port 0..65535.
// InvalidArgument, saying what is wrong, otherwise. The config check and the /metrics
// server share it so that what loads is what binds.
Result<HostPort> ParseHostPort(std::string_view text);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONFIG_H_
