#include "agent/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>

#include "common/yaml_reader.h"
#include "telemetry/series_key.h"
#include "telemetry/shm_store.h"
#include "workflow/resources.h"

namespace augur::agent {
namespace {

using std::chrono::milliseconds;
using yaml::ClosestWord;
using yaml::Describe;
using yaml::EqualsIgnoreCase;
using yaml::Errors;
using yaml::JoinPath;
using yaml::IsMapOrNull;
using yaml::JoinWords;
using yaml::ParseAbsolutePath;
using yaml::ParseBool;
using yaml::ParseInteger;
using yaml::ParseWord;
using yaml::ScalarText;

// Ranges. The header states them too; keep the two in step.
constexpr milliseconds kMinInterval{10};        // below this the sampling cost dominates
constexpr milliseconds kMaxInterval{3600'000};  // an hour; beyond it nothing is "live"
constexpr int64_t kMinCapacity = 16;
constexpr int64_t kMaxCapacity = 10'000'000;
constexpr int64_t kMinSeries = 16;
constexpr int64_t kMaxSeries = 1'000'000;
// Real hierarchies are 3-6 deep (user.slice/user-1000.slice/user@1000.service/app.slice/..);
// 16 leaves room without letting a typo ask for a walk of the whole tree at every sample.
constexpr int64_t kMaxCgroupDepth = 16;
constexpr int64_t kMaxCgroups = 100'000;
// /dev/shm/<name>.lock must fit NAME_MAX (255); 200 leaves the store room for suffixes.
constexpr size_t kMaxShmNameLength = 200;
// A config file is a few hundred bytes. The cap stops `--config /dev/zero` from eating memory.
constexpr size_t kMaxConfigFileBytes = 1 << 20;

// plugins.call_timeout: below 100ms an ordinary call under load would count as a hang;
// above 10m a hung plugin would hold its caller for longer than any task is worth waiting.
constexpr milliseconds kMinCallTimeout{100};
constexpr milliseconds kMaxCallTimeout{600'000};
// plugins.health_interval: a probe is one describe(); 100ms keeps its cost noise, and an
// hour is as stale as a health verdict can usefully be.
constexpr milliseconds kMinHealthInterval{100};
constexpr milliseconds kMaxHealthInterval{3600'000};
// metrics.*: a scraper needs one connection; the caps bound what misbehaving clients can
// hold. The header timeout must outlast a slow network's round trips, and past 10m a
// slowloris connection would stay for as long as it likes.
constexpr int64_t kMaxMetricsConnections = 100'000;
constexpr milliseconds kMinHeaderTimeout{100};
constexpr milliseconds kMaxHeaderTimeout{600'000};
constexpr size_t kMaxPluginNameLength = 64;
constexpr size_t kMaxPluginConfigKeyLength = 128;
constexpr size_t kMaxPluginConfigValueLength = 4096;  // what a plugin is promised it may read
constexpr size_t kMaxSocketPathLength = 107;          // sizeof(sockaddr_un::sun_path) less the NUL
constexpr size_t kMaxGroupNameLength = 32;

constexpr std::string_view kTopKeys[] = {"telemetry", "metrics",   "log",  "forecast",
                                         "plugins",   "control",   "workflows", "mesh"};
constexpr std::string_view kMeshKeys[] = {"enabled", "name", "listen", "advertise", "seeds",
                                          "key_file", "authorized_keys", "zone", "region",
                                          "max_message", "replicas",
                                          "max_transfer_bytes", "max_kept_bytes"};
constexpr size_t kMaxMeshName = 64;
constexpr size_t kMaxMeshSeeds = 256;
constexpr uint64_t kMinMeshMessage = 1024;
constexpr uint64_t kMaxMeshMessage = 16ULL << 20;
constexpr uint64_t kMinMeshTransfer = 1024;
constexpr uint64_t kMaxMeshTransfer = 1ULL << 40;
// mesh.max_kept_bytes: 0 (no cap), or at least one small output and at most what a disk holds.
constexpr uint64_t kMinMeshKept = 1024;
constexpr uint64_t kMaxMeshKept = 1ULL << 50;
constexpr std::string_view kTelemetryKeys[] = {
    "interval", "ebpf", "shm_name", "capacity", "max_series", "cgroup_depth", "max_cgroups"};
constexpr std::string_view kMetricsKeys[] = {"enabled", "listen", "max_connections",
                                             "max_connections_per_client", "header_timeout"};
constexpr std::string_view kLogKeys[] = {"level"};
constexpr std::string_view kControlKeys[] = {"socket", "group"};
constexpr std::string_view kPluginsKeys[] = {"dir",          "enabled",         "state_dir",
                                             "call_timeout", "health_interval", "config"};
constexpr std::string_view kForecastKeys[] = {"enabled",    "step",      "horizons",
                                              "series",     "state_dir", "anomaly_threshold",
                                              "max_series", "history"};
constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
constexpr std::string_view kEbpfWords[] = {"auto", "on", "off"};

struct Section {
  std::string_view name;
  std::span<const std::string_view> keys;
};
constexpr Section kSections[] = {
    {"telemetry", kTelemetryKeys},
    {"metrics", kMetricsKeys},
    {"log", kLogKeys},
    {"forecast", kForecastKeys},
    {"plugins", kPluginsKeys},
    {"control", kControlKeys},
    {"workflows", workflow::kWorkflowsKeys},
    {"mesh", kMeshKeys}};

// The hint after an unknown key that no key of its own section is close to: the same key in
// another section ("listen" under telemetry -> metrics.listen).
std::string OtherSectionHint(std::string_view path, std::string_view key) {
  for (const Section& s : kSections) {
    if (s.name == path) continue;
    for (std::string_view k : s.keys) {
      if (EqualsIgnoreCase(k, key)) return fmt::format("did you mean '{}.{}'? ", s.name, k);
    }
  }
  return {};
}

// ForEachKey with the config's cross-section hint.
void ForEachSectionKey(Errors& errors, const YAML::Node& map, std::string_view path,
                std::span<const std::string_view> known, const yaml::KeyHandler& handle) {
  yaml::ForEachKey(errors, map, path, known, handle, OtherSectionHint);
}


void ParseEbpf(Errors& errors, const std::string& path, const YAML::Node& key_node,
               const YAML::Node& value, EbpfMode* out) {
  // true/false are YAML's booleans; read them as on/off (see the header). Checked before
  // ParseWord so that they are not reported as unknown words.
  if (value.IsScalar() && value.Scalar() == "true") {
    *out = EbpfMode::kOn;
    return;
  }
  if (value.IsScalar() && value.Scalar() == "false") {
    *out = EbpfMode::kOff;
    return;
  }
  std::optional<std::string> word =
      ParseWord(errors, path, key_node, value, kEbpfWords, " (or true/false)");
  if (!word) return;
  if (*word == "auto") *out = EbpfMode::kAuto;
  if (*word == "on") *out = EbpfMode::kOn;
  if (*word == "off") *out = EbpfMode::kOff;
}

bool IsShmNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

void ParseShmName(Errors& errors, const std::string& path, const YAML::Node& key_node,
                  const YAML::Node& value, std::string* out) {
  constexpr std::string_view kRule = "a name of 1 to 200 characters from A-Z a-z 0-9 _ . -";
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, kRule);
  if (!text) return;
  // "." and ".." pass the character rule but name /dev/shm itself and its parent.
  bool ok = !text->empty() && text->size() <= kMaxShmNameLength && *text != "." && *text != ".." &&
            std::all_of(text->begin(), text->end(), IsShmNameChar);
  if (!ok) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, kRule, Describe(value)));
    return;
  }
  // The store keeps <name>.lock and <name>.new beside each segment (telemetry/shm_store.h).
  if (text->ends_with(".lock") || text->ends_with(".new")) {
    errors.Add(key_node, fmt::format("{}: {} ends in '{}', which names the lock or temporary "
                                     "file of another segment; choose another name",
                                     path, Describe(value),
                                     text->ends_with(".lock") ? ".lock" : ".new"));
    return;
  }
  *out = *text;
}

void ParseListen(Errors& errors, const std::string& path, const YAML::Node& key_node,
                 const YAML::Node& value, std::string* out) {
  std::optional<std::string> text =
      ScalarText(errors, path, key_node, value, "host:port, e.g. 127.0.0.1:9464");
  if (!text) return;
  Result<HostPort> hp = ParseHostPort(*text);
  if (!hp) {
    errors.Add(key_node, fmt::format("{}: {}", path, hp.error().message()));
    return;
  }
  *out = *text;
}

void ParseTelemetry(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                    TelemetryConfig* t) {
  if (!IsMapOrNull(errors, "telemetry", key_node, node)) return;
  ForEachSectionKey(errors, node, "telemetry", kTelemetryKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("telemetry", key);
               if (key == "interval") {
                 yaml::ParseDuration(errors, path, k, v, kMinInterval, kMaxInterval, &t->interval);
               } else if (key == "ebpf") {
                 ParseEbpf(errors, path, k, v, &t->ebpf);
               } else if (key == "shm_name") {
                 ParseShmName(errors, path, k, v, &t->shm_name);
               } else if (key == "capacity") {
                 ParseInteger(errors, path, k, v, kMinCapacity, kMaxCapacity, &t->capacity);
               } else if (key == "max_series") {
                 ParseInteger(errors, path, k, v, kMinSeries, kMaxSeries, &t->max_series);
               } else if (key == "cgroup_depth") {
                 ParseInteger(errors, path, k, v, 0, kMaxCgroupDepth, &t->cgroup_depth);
               } else if (key == "max_cgroups") {
                 ParseInteger(errors, path, k, v, 0, kMaxCgroups, &t->max_cgroups);
               }
             });
}

void ParseMetrics(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                  MetricsConfig* m) {
  if (!IsMapOrNull(errors, "metrics", key_node, node)) return;
  ForEachSectionKey(errors, node, "metrics", kMetricsKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("metrics", key);
               if (key == "enabled") ParseBool(errors, path, k, v, &m->enabled);
               if (key == "listen") ParseListen(errors, path, k, v, &m->listen);
               if (key == "max_connections") {
                 ParseInteger(errors, path, k, v, 1, kMaxMetricsConnections, &m->max_connections);
               }
               if (key == "max_connections_per_client") {
                 ParseInteger(errors, path, k, v, 1, kMaxMetricsConnections,
                              &m->max_connections_per_client);
               }
               if (key == "header_timeout") {
                 yaml::ParseDuration(errors, path, k, v, kMinHeaderTimeout, kMaxHeaderTimeout,
                                    &m->header_timeout);
               }
             });
}

void ParseLog(Errors& errors, const YAML::Node& key_node, const YAML::Node& node, LogConfig* l) {
  if (!IsMapOrNull(errors, "log", key_node, node)) return;
  ForEachSectionKey(errors, node, "log", kLogKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               if (key != "level") return;
               if (auto w = ParseWord(errors, JoinPath("log", key), k, v, kLogLevels)) {
                 l->level = *w;
               }
             });
}

// A Unix group name as useradd/groupadd accept it (the portable subset): a letter or '_',
// then letters, digits, '_', '.', '-'; at most 32 characters.
bool IsGroupName(std::string_view name) {
  if (name.empty() || name.size() > kMaxGroupNameLength) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

void ParseControl(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                  ControlConfig* c) {
  if (!IsMapOrNull(errors, "control", key_node, node)) return;
  ForEachSectionKey(errors, node, "control", kControlKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("control", key);
               if (key == "socket") {
                 ParseAbsolutePath(errors, path, k, v, &c->socket);
                 // sun_path holds 107 bytes and the NUL.
                 if (c->socket.size() > kMaxSocketPathLength) {
                   errors.Add(k, fmt::format("{}: '{}' is {} bytes; a Unix socket path may be at "
                                             "most {}",
                                             path, c->socket, c->socket.size(),
                                             kMaxSocketPathLength));
                 }
               } else if (key == "group") {
                 constexpr std::string_view kRule =
                     "a group name: a letter or _, then up to 31 of A-Z a-z 0-9 _ . -";
                 std::optional<std::string> text = ScalarText(errors, path, k, v, kRule);
                 if (!text) return;
                 if (!IsGroupName(*text)) {
                   errors.Add(k, fmt::format("{}: expected {}, got {}", path, kRule, Describe(v)));
                   return;
                 }
                 c->group = *text;
               }
             });
}

// A YAML sequence whose items each pass `item` (which reports its own errors); an empty
// or mistyped value is reported here.
template <typename T, typename F>
void ParseList(Errors& errors, const std::string& path, const YAML::Node& key_node,
               const YAML::Node& value, std::string_view expected, F item, std::vector<T>* out) {
  if (!value.IsSequence() || value.size() == 0) {
    errors.Add(key_node, fmt::format("{}: expected a non-empty list of {}, got {}", path, expected,
                                     Describe(value)));
    return;
  }
  std::vector<T> items;
  bool ok = true;
  for (size_t i = 0; i < value.size(); ++i) {
    T v{};
    const size_t before = errors.size();
    item(fmt::format("{}[{}]", path, i), value[i], &v);
    ok = ok && errors.size() == before;
    items.push_back(std::move(v));
  }
  if (ok) *out = std::move(items);
}

// `history_pos` gets the position of forecast.history, for the check against
// telemetry.capacity once every section is read.
void ParseForecast(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                   ForecastConfig* f, yaml::Pos* history_pos) {
  if (!IsMapOrNull(errors, "forecast", key_node, node)) return;
  ForEachSectionKey(
      errors, node, "forecast", kForecastKeys,
      [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
        std::string path = JoinPath("forecast", key);
        if (key == "enabled") {
          ParseBool(errors, path, k, v, &f->enabled);
        } else if (key == "step") {
          yaml::ParseDuration(errors, path, k, v, milliseconds(1000), milliseconds(86'400'000),
                             &f->step);
        } else if (key == "horizons") {
          ParseList<int>(errors, path, k, v, "integers in 1..1024",
                         [&](const std::string& p, const YAML::Node& item, int* out) {
                           ParseInteger(errors, p, item, item, 1, 1024, out);
                         },
                         &f->horizons);
        } else if (key == "series") {
          ParseList<std::string>(
              errors, path, k, v, "series selectors",
              [&](const std::string& p, const YAML::Node& item, std::string* out) {
                std::optional<std::string> text =
                    ScalarText(errors, p, item, item, "a selector such as memory_bytes{kind=\"total\"}");
                if (!text) return;
                if (auto sel = telemetry::SeriesKey::Parse(*text); !sel) {
                  errors.Add(item, fmt::format("{}: {}", p, sel.error().message()));
                  return;
                }
                *out = *text;
              },
              &f->series);
        } else if (key == "state_dir") {
          if (auto text = ScalarText(errors, path, k, v, "a directory path, or \"\"")) {
            if (!text->empty() && (*text)[0] != '/') {
              errors.Add(k, fmt::format("{}: expected an absolute path, got {}", path,
                                        Describe(v)));
            } else {
              f->state_dir = *text;
            }
          }
        } else if (key == "anomaly_threshold") {
          // denorm_min: the smallest double above 0, so that the range is "greater than 0".
          yaml::ParseNumber(errors, path, k, v, std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::max(), "a number greater than 0",
                            &f->anomaly_threshold);
        } else if (key == "max_series") {
          ParseInteger(errors, path, k, v, 1, 100'000, &f->max_series);
        } else if (key == "history") {
          ParseInteger(errors, path, k, v, 0, kMaxCapacity, &f->history);
          if (f->history == 1) {
            errors.Add(k, fmt::format("{}: a ring of 1 point cannot be read while it is "
                                      "written; use 0 (the default) or at least 2",
                                      path));
          }
          *history_pos = yaml::PosOf(k);
        }
      });
}

bool IsPluginNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// A plugin name becomes part of a file name (augur-<name>.so) and a metrics label, so it is
// kept to characters that are safe in both.
bool IsPluginName(std::string_view s) {
  return !s.empty() && s.size() <= kMaxPluginNameLength &&
         std::all_of(s.begin(), s.end(), IsPluginNameChar);
}

constexpr std::string_view kPluginNameRule = "a plugin name: 1-64 of A-Z a-z 0-9 _ -";


void ParsePluginsEnabled(Errors& errors, const YAML::Node& key_node, const YAML::Node& value,
                         std::vector<std::string>* out, std::map<std::string, int>* lines) {
  if (value.IsNull()) return;  // `enabled:` with nothing: none
  if (!value.IsSequence()) {
    errors.Add(key_node, fmt::format("plugins.enabled: expected a list of plugin names, e.g. "
                                     "[process, libvirt], got {}",
                                     Describe(value)));
    return;
  }
  for (const YAML::Node& item : value) {
    const YAML::Node& at = yaml::PosOf(item).line > 0 ? item : key_node;
    if (!item.IsScalar() || !IsPluginName(item.Scalar())) {
      errors.Add(at, fmt::format("plugins.enabled: expected {}, got {}", kPluginNameRule,
                                 Describe(item)));
      continue;
    }
    auto [it, inserted] = lines->emplace(item.Scalar(), yaml::PosOf(at).line);
    if (!inserted) {
      errors.Add(at, fmt::format("plugins.enabled: '{}' is listed twice (first on line {})",
                                 item.Scalar(), it->second));
      continue;
    }
    out->push_back(item.Scalar());
  }
}

// plugins.config: name -> map of scalars. Returns the line of each plugin name so that the
// check against `enabled` (which may come later in the file) can point at it.
void ParsePluginsConfig(Errors& errors, const YAML::Node& key_node, const YAML::Node& value,
                        std::map<std::string, std::map<std::string, std::string>>* out,
                        std::map<std::string, yaml::Pos>* positions) {
  if (!IsMapOrNull(errors, "plugins.config", key_node, value)) return;
  ForEachSectionKey(errors, value, "plugins.config", {},
             [&](std::string_view name, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("plugins.config", name);
               if (!IsPluginName(name)) {
                 errors.Add(k, fmt::format("{}: expected {} as the key", path, kPluginNameRule));
                 return;
               }
               (*positions)[std::string(name)] = yaml::PosOf(k);
               std::map<std::string, std::string>& kv = (*out)[std::string(name)];
               if (!IsMapOrNull(errors, path, k, v)) return;
               ForEachSectionKey(errors, v, path, {},
                          [&](std::string_view key, const YAML::Node& kk, const YAML::Node& vv) {
                            std::string kpath = JoinPath(path, key);
                            bool key_ok = key.size() <= kMaxPluginConfigKeyLength &&
                                          std::all_of(key.begin(), key.end(), [](char c) {
                                            return IsPluginNameChar(c) || c == '.';
                                          });
                            if (!key_ok) {
                              errors.Add(kk, fmt::format("{}: a key must be 1-128 of A-Z a-z 0-9 _ . -",
                                                         kpath));
                              return;
                            }
                            std::optional<std::string> text = ScalarText(
                                errors, kpath, kk, vv, "a scalar (text, number or boolean)");
                            if (!text) return;
                            if (text->size() > kMaxPluginConfigValueLength) {
                              errors.Add(kk, fmt::format("{}: longer than {} bytes", kpath,
                                                         kMaxPluginConfigValueLength));
                              return;
                            }
                            kv[std::string(key)] = *text;
                          });
             });
}

void ParsePlugins(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                  PluginsConfig* p) {
  if (!IsMapOrNull(errors, "plugins", key_node, node)) return;
  std::map<std::string, int> enabled_lines;
  std::map<std::string, yaml::Pos> config_positions;
  ForEachSectionKey(errors, node, "plugins", kPluginsKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("plugins", key);
               if (key == "dir") {
                 ParseAbsolutePath(errors, path, k, v, &p->dir);
               } else if (key == "state_dir") {
                 ParseAbsolutePath(errors, path, k, v, &p->state_dir);
               } else if (key == "enabled") {
                 ParsePluginsEnabled(errors, k, v, &p->enabled, &enabled_lines);
               } else if (key == "call_timeout") {
                 yaml::ParseDuration(errors, path, k, v, kMinCallTimeout, kMaxCallTimeout,
                                    &p->call_timeout);
               } else if (key == "health_interval") {
                 yaml::ParseDuration(errors, path, k, v, kMinHealthInterval, kMaxHealthInterval,
                                    &p->health_interval);
               } else if (key == "config") {
                 ParsePluginsConfig(errors, k, v, &p->config, &config_positions);
               }
             });
  const std::vector<std::string_view> names(p->enabled.begin(), p->enabled.end());
  for (const auto& [name, pos] : config_positions) {
    if (enabled_lines.contains(name)) continue;
    std::string_view near = ClosestWord(name, names);
    errors.AddAt(pos, fmt::format("plugins.config.{}: '{}' is not in plugins.enabled "
                                       "({}add it there or remove this section)",
                                       name, name,
                                       near.empty() ? "" : fmt::format("did you mean '{}'? ", near)));
  }
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

}  // namespace

// A mesh host name or label: [A-Za-z0-9_.-]{1,64} (it goes into key files and logs).
bool IsMeshWord(std::string_view s) {
  return !s.empty() && s.size() <= kMaxMeshName &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                  c == '-';
         });
}

void ParseMeshWord(Errors& errors, const std::string& path, const YAML::Node& k,
                   const YAML::Node& v, bool may_be_empty, std::string* out) {
  constexpr std::string_view kRule = "up to 64 of A-Z a-z 0-9 _ . -";
  std::optional<std::string> text = ScalarText(errors, path, k, v, kRule);
  if (!text) return;
  if (!(may_be_empty && text->empty()) && !IsMeshWord(*text)) {
    errors.Add(k, fmt::format("{}: expected {}, got {}", path, kRule, Describe(v)));
    return;
  }
  *out = *text;
}

// A size (64Ki, 1Gi, ...) in [min, max]; `range` says that range in the error.
void ParseSizeIn(Errors& errors, const std::string& path, const YAML::Node& k,
                 const YAML::Node& v, uint64_t min, uint64_t max, std::string_view range,
                 uint64_t* out) {
  std::optional<std::string> text = ScalarText(errors, path, k, v, "a size such as 64Ki");
  if (!text) return;
  auto bytes = workflow::ParseMemory(*text);
  if (!bytes || *bytes < min || *bytes > max) {
    errors.Add(k, fmt::format("{}: expected a size in {}, got {}", path, range, Describe(v)));
    return;
  }
  *out = *bytes;
}

void ParseMesh(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
               MeshConfig* m) {
  if (!IsMapOrNull(errors, "mesh", key_node, node)) return;
  ForEachSectionKey(errors, node, "mesh", kMeshKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("mesh", key);
               if (key == "enabled") {
                 ParseBool(errors, path, k, v, &m->enabled);
               } else if (key == "name") {
                 ParseMeshWord(errors, path, k, v, true, &m->name);
               } else if (key == "zone") {
                 ParseMeshWord(errors, path, k, v, true, &m->zone);
               } else if (key == "region") {
                 ParseMeshWord(errors, path, k, v, true, &m->region);
               } else if (key == "listen") {
                 ParseListen(errors, path, k, v, &m->listen);
               } else if (key == "advertise") {
                 if (v.IsScalar() && v.Scalar().empty()) {
                   m->advertise.clear();
                 } else {
                   ParseListen(errors, path, k, v, &m->advertise);
                 }
               } else if (key == "key_file") {
                 ParseAbsolutePath(errors, path, k, v, &m->key_file);
               } else if (key == "authorized_keys") {
                 ParseAbsolutePath(errors, path, k, v, &m->authorized_keys);
               } else if (key == "replicas") {
                 ParseInteger(errors, path, k, v, 0, 16, &m->replicas);
               } else if (key == "max_message") {
                 ParseSizeIn(errors, path, k, v, kMinMeshMessage, kMaxMeshMessage, "1Ki..16Mi",
                             &m->max_message);
               } else if (key == "max_transfer_bytes") {
                 ParseSizeIn(errors, path, k, v, kMinMeshTransfer, kMaxMeshTransfer, "1Ki..1Ti",
                             &m->max_transfer_bytes);
               } else if (key == "max_kept_bytes") {
                 if (v.IsScalar() && v.Scalar() == "0") {
                   m->max_kept_bytes = 0;
                   return;
                 }
                 ParseSizeIn(errors, path, k, v, kMinMeshKept, kMaxMeshKept,
                             "1Ki..1024Ti, or 0 for no cap", &m->max_kept_bytes);
               } else if (key == "seeds") {
                 if (v.IsNull()) {
                   m->seeds.clear();
                   return;
                 }
                 if (!v.IsSequence() || v.size() > kMaxMeshSeeds) {
                   errors.Add(k, fmt::format("{}: expected a list of up to {} seeds such as "
                                             "[web-1@10.0.0.1:7946], got {}",
                                             path, kMaxMeshSeeds, Describe(v)));
                   return;
                 }
                 std::vector<std::string> seeds;
                 for (size_t i = 0; i < v.size(); ++i) {
                   const YAML::Node item = v[i];
                   const YAML::Node& at = yaml::PosOf(item).line > 0 ? item : k;
                   const std::string where = fmt::format("{}[{}]", path, i);
                   if (!item.IsScalar()) {
                     errors.Add(at, fmt::format("{}: expected NAME@HOST:PORT, got {}", where,
                                                Describe(item)));
                     continue;
                   }
                   if (auto seed = ParseMeshSeed(item.Scalar()); !seed) {
                     errors.Add(at, fmt::format("{}: {}", where, seed.error().message()));
                     continue;
                   }
                   seeds.push_back(item.Scalar());
                 }
                 m->seeds = std::move(seeds);
               }
             });  if (m->enabled && m->advertise.empty()) {
    Result<HostPort> hp = ParseHostPort(m->listen);
    if (hp && (hp->host == "0.0.0.0" || hp->host == "::" || hp->host.empty())) {
      errors.Add(key_node, fmt::format("mesh: listen {} is a wildcard address; set mesh.advertise "
                                       "to the HOST:PORT peers reach this host at",
                                       m->listen));
    }
  }
}

Config DefaultConfig() { return Config{}; }

std::vector<std::string> ConfigKeys() {
  std::vector<std::string> out;
  for (const Section& s : kSections) {
    out.emplace_back(s.name);
    for (std::string_view k : s.keys) {
      out.push_back(fmt::format("{}.{}", s.name, k));
      if (s.name == "workflows" && k == "prewarm") {
        for (std::string_view p : workflow::kPrewarmKeys) {
          out.push_back(fmt::format("workflows.prewarm.{}", p));
        }
      }
    }
  }
  return out;
}

std::vector<std::string> ChangedKeys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto check = [&](bool differs, std::string_view key) {
    if (differs) out.emplace_back(key);
  };
  const TelemetryConfig &ta = a.telemetry, &tb = b.telemetry;
  check(ta.interval != tb.interval, "telemetry.interval");
  check(ta.ebpf != tb.ebpf, "telemetry.ebpf");
  check(ta.shm_name != tb.shm_name, "telemetry.shm_name");
  check(ta.capacity != tb.capacity, "telemetry.capacity");
  check(ta.max_series != tb.max_series, "telemetry.max_series");
  check(ta.cgroup_depth != tb.cgroup_depth, "telemetry.cgroup_depth");
  check(ta.max_cgroups != tb.max_cgroups, "telemetry.max_cgroups");
  // Sections whose keys are few or change together are reported whole.
  check(a.metrics != b.metrics, "metrics");
  check(a.log != b.log, "log.level");
  const ForecastConfig &fa = a.forecast, &fb = b.forecast;
  check(fa.enabled != fb.enabled, "forecast.enabled");
  check(fa.step != fb.step, "forecast.step");
  check(fa.horizons != fb.horizons, "forecast.horizons");
  check(fa.series != fb.series, "forecast.series");
  check(fa.state_dir != fb.state_dir, "forecast.state_dir");
  check(fa.anomaly_threshold != fb.anomaly_threshold, "forecast.anomaly_threshold");
  check(fa.max_series != fb.max_series, "forecast.max_series");
  check(fa.history != fb.history, "forecast.history");
  const PluginsConfig &pa = a.plugins, &pb = b.plugins;
  check(pa.dir != pb.dir, "plugins.dir");
  check(pa.enabled != pb.enabled, "plugins.enabled");
  check(pa.state_dir != pb.state_dir, "plugins.state_dir");
  check(pa.call_timeout != pb.call_timeout, "plugins.call_timeout");
  check(pa.health_interval != pb.health_interval, "plugins.health_interval");
  check(a.workflows != b.workflows, "workflows");
  std::set<std::string> names;
  for (const auto& [name, kv] : pa.config) names.insert(name);
  for (const auto& [name, kv] : pb.config) names.insert(name);
  for (const std::string& name : names) {
    auto ia = pa.config.find(name);
    auto ib = pb.config.find(name);
    const bool same = ia != pa.config.end() && ib != pb.config.end() && ia->second == ib->second;
    check(!same, "plugins.config." + name);
  }
  check(a.mesh != b.mesh, "mesh");
  check(a.control.socket != b.control.socket, "control.socket");
  check(a.control.group != b.control.group, "control.group");
  return out;
}

Status CheckConfigFitsHost(const Config& config) {
  telemetry::StoreOptions so;
  so.name = config.telemetry.shm_name;
  so.capacity = config.telemetry.capacity;
  so.max_series = config.telemetry.max_series;
  Status st = telemetry::CheckSegmentFits(so);
  if (st.ok()) return st;
  return st.Annotate("telemetry.capacity x telemetry.max_series");
}

std::string_view EbpfModeName(EbpfMode mode) {
  switch (mode) {
    case EbpfMode::kAuto:
      return "auto";
    case EbpfMode::kOn:
      return "on";
    case EbpfMode::kOff:
      return "off";
  }
  return "unknown";
}

Result<milliseconds> ParseDuration(std::string_view text) {
  return yaml::ParseDurationText(text);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  constexpr std::string_view kWant = "want host:port, e.g. 127.0.0.1:9464 or [::1]:9464";
  HostPort out;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return Err(Status::InvalidArgument(fmt::format("'{}' has no closing ']'", text)));
    }
    std::string_view host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) {
      return Err(Status::InvalidArgument(fmt::format("'{}' has no ':port' after ']'", text)));
    }
    port = rest.substr(1);
    // A zone ("fe80::1%eth0") is fine for getaddrinfo but not for inet_pton.
    std::string addr(host.substr(0, host.find('%')));
    in6_addr scratch;
    if (addr.empty() || inet_pton(AF_INET6, addr.c_str(), &scratch) != 1) {
      return Err(
          Status::InvalidArgument(fmt::format("'{}' in '{}' is not an IPv6 address", host, text)));
    }
    out.host = std::string(host);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return Err(Status::InvalidArgument(fmt::format("'{}' has no port ({})", text, kWant)));
    }
    std::string_view host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Err(Status::InvalidArgument(
          fmt::format("'{}': an IPv6 address goes in brackets, e.g. [::1]:{}", text, port)));
    }
    if (host.empty()) {
      return Err(Status::InvalidArgument(
          fmt::format("'{}' has no host (use 0.0.0.0:{} for every interface)", text, port)));
    }
    if (host.size() > 253 || host.front() == '-' || host.front() == '.' ||
        !std::all_of(host.begin(), host.end(), IsHostChar)) {
      return Err(Status::InvalidArgument(
          fmt::format("'{}' is not a host name or IPv4 address ({})", host, kWant)));
    }
    out.host = std::string(host);
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc() || ptr != port.data() + port.size() ||
      value > 65535) {
    return Err(Status::InvalidArgument(
        fmt::format("port '{}' in '{}' is not a number in 0..65535", port, text)));
  }
  out.port = static_cast<uint16_t>(value);
  return out;
}

Result<MeshSeed> ParseMeshSeed(std::string_view text) {
  const size_t at = text.find('@');
  if (at == std::string_view::npos) {
    return Err(Status::InvalidArgument(fmt::format(
        "'{}' has no host name: write NAME@HOST:PORT, with NAME as in authorized_keys (a "
        "CURVE client must know the key of the host it connects to)",
        text)));
  }
  MeshSeed seed;
  seed.name = std::string(text.substr(0, at));
  if (!IsMeshWord(seed.name)) {
    return Err(Status::InvalidArgument(fmt::format(
        "'{}': the name before @ must be up to 64 of A-Z a-z 0-9 _ . -", text)));
  }
  Result<HostPort> hp = ParseHostPort(text.substr(at + 1));
  if (!hp) return Err(hp.error());
  if (hp->port == 0) {
    return Err(Status::InvalidArgument(fmt::format("'{}': a seed needs a port, not 0", text)));
  }
  seed.at = *hp;
  return seed;
}

Result<Config> ParseConfig(std::string_view yaml, std::string_view origin) {
  Config config = DefaultConfig();
  Errors errors(origin);
  yaml::Pos history_pos;
  Status read = yaml::ReadDocument(yaml, "the config", errors, [&](const YAML::Node& root) {
    if (root.IsMap()) {
      ForEachSectionKey(errors, root, "", kTopKeys,
                 [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                   if (key == "telemetry") ParseTelemetry(errors, k, v, &config.telemetry);
                   if (key == "metrics") ParseMetrics(errors, k, v, &config.metrics);
                   if (key == "log") ParseLog(errors, k, v, &config.log);
                   if (key == "plugins") ParsePlugins(errors, k, v, &config.plugins);
                   if (key == "control") ParseControl(errors, k, v, &config.control);
                   if (key == "mesh") ParseMesh(errors, k, v, &config.mesh);
                   // The workflow component owns its section's schema.
                   if (key == "workflows") {
                     workflow::ParseWorkflowsSection(errors, k, v, &config.workflows);
                   }
                   if (key == "forecast") {
                     ParseForecast(errors, k, v, &config.forecast, &history_pos);
                   }
                 });
    } else if (!root.IsNull()) {
      errors.Add(root, fmt::format("expected a map with the sections {} at the top level, got {}",
                                   JoinWords(kTopKeys), Describe(root)));
    }
  });
  if (!read.ok()) return Err(read);
  if (config.forecast.history > config.telemetry.capacity) {
    errors.AddAt(history_pos,
                 fmt::format("forecast.history: {} is more than telemetry.capacity ({}), the "
                             "most points any series keeps",
                             config.forecast.history, config.telemetry.capacity));
  }
  if (!errors.empty()) return Err(errors.ToStatus());
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  Result<std::string> text = yaml::ReadFileCapped(path, kMaxConfigFileBytes, "config");
  if (!text) return Err(text.error());
  return ParseConfig(*text, path);
}

}  // namespace augur::agent
