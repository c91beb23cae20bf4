#include "agent/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <utility>

#include "telemetry/series_key.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

using std::chrono::milliseconds;

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
constexpr size_t kMaxPathLength = 4095;               // PATH_MAX less the NUL

constexpr std::string_view kTopKeys[] = {"telemetry", "metrics", "log", "forecast", "plugins"};
constexpr std::string_view kTelemetryKeys[] = {
    "interval", "ebpf", "shm_name", "capacity", "max_series", "cgroup_depth", "max_cgroups"};
constexpr std::string_view kMetricsKeys[] = {"enabled", "listen", "max_connections",
                                             "max_connections_per_client", "header_timeout"};
constexpr std::string_view kLogKeys[] = {"level"};
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
    {"plugins", kPluginsKeys}};

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// Edit distance counting a swap of neighbours as one edit ("atuo" -> "auto"), as typos go;
// case-insensitive. Inputs are short keys, so the O(n*m) table costs nothing.
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  auto at = [&](size_t i, size_t j) -> size_t& { return d[i * w + j]; };
  for (size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

// The candidate `word` most likely meant, or "" when none is close. Close means a small edit
// distance (typos: "intervall", "levle") or one being a prefix of the other ("warning" for
// "warn", "max_series_count" for "max_series").
std::string_view ClosestWord(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = word.size() <= 4 ? 1 : 2;
  for (std::string_view c : candidates) {
    size_t d = EditDistance(word, c);
    if (d <= best_distance && d < word.size()) {
      best = c;
      best_distance = d;
    }
  }
  if (!best.empty()) return best;
  for (std::string_view c : candidates) {
    size_t n = std::min(word.size(), c.size());
    if (n >= 3 && EqualsIgnoreCase(word.substr(0, n), c.substr(0, n))) return c;
  }
  return {};
}

std::string JoinWords(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

// How a node reads in an error message: 'text' for a scalar, "a map", "a list", "nothing".
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      constexpr size_t kMaxShown = 40;
      if (s.size() > kMaxShown) return "'" + s.substr(0, kMaxShown) + "...'";
      return "'" + s + "'";
    }
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "an unknown node";
}

std::string FormatDuration(milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 3600'000 == 0) return fmt::format("{}h", ms / 3600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

// Every problem found in one file, as "ORIGIN:LINE: message" lines.
class Errors {
 public:
  explicit Errors(std::string_view origin) : origin_(origin) {}

  // Reports at the line of `at`. Callers pass the key node for problems with a key's value:
  // a value's own mark points past the key for an empty value or a nested map, while the key
  // is where the reader should look.
  void Add(const YAML::Node& at, std::string_view message) { AddAtLine(LineOf(at), message); }
  void AddAtLine(int line, std::string_view message) {
    if (line > 0) {
      lines_.push_back(fmt::format("{}:{}: {}", origin_, line, message));
    } else {
      lines_.push_back(fmt::format("{}: {}", origin_, message));
    }
  }

  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  Status ToStatus() const {
    std::string joined;
    for (const std::string& l : lines_) {
      if (!joined.empty()) joined += '\n';
      joined += l;
    }
    return Status::InvalidArgument(joined);
  }

  // 1-based line of a node, 0 when yaml-cpp has no position for it.
  static int LineOf(const YAML::Node& node) {
    if (!node.IsDefined()) return 0;
    YAML::Mark m = node.Mark();
    return m.is_null() ? 0 : m.line + 1;
  }

 private:
  std::string origin_;
  std::vector<std::string> lines_;
};

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

// The hint after an unknown key: a near spelling in the same map, else the same key in
// another section ("listen" under telemetry -> metrics.listen).
std::string UnknownKeyHint(std::string_view path, std::string_view key,
                           std::span<const std::string_view> known) {
  std::string_view near = ClosestWord(key, known);
  if (!near.empty()) return fmt::format("did you mean '{}'? ", near);
  for (const Section& s : kSections) {
    if (s.name == path) continue;
    for (std::string_view k : s.keys) {
      if (EqualsIgnoreCase(k, key)) return fmt::format("did you mean '{}.{}'? ", s.name, k);
    }
  }
  return {};
}

using KeyHandler =
    std::function<void(std::string_view key, const YAML::Node& key_node, const YAML::Node& value)>;

// Walks a map's entries in file order. Reports keys that are not plain scalars, unknown keys
// (any key is known when `known` is empty: maps whose keys are names, like plugins.config)
// and repeated keys (yaml-cpp keeps both entries of a repeated key and lookups silently take
// the first, so only a walk can see them); calls `handle` for the others.
void ForEachKey(Errors& errors, const YAML::Node& map, std::string_view path,
                std::span<const std::string_view> known, const KeyHandler& handle) {
  std::map<std::string, int, std::less<>> seen;  // key -> line first seen
  for (const auto& entry : map) {
    // Copies: Nodes are handles, and the iterator's pair is a temporary.
    const YAML::Node key_node = entry.first;
    const YAML::Node value = entry.second;
    std::string where = path.empty() ? "top level" : std::string(path);
    if (!key_node.IsScalar()) {
      errors.Add(key_node,
                 fmt::format("{}: a key must be a plain name, got {}", where, Describe(key_node)));
      continue;
    }
    const std::string& key = key_node.Scalar();
    std::string full = JoinPath(path, key);
    if (!known.empty() && std::find(known.begin(), known.end(), key) == known.end()) {
      errors.Add(key_node, fmt::format("unknown key '{}' ({}known: {})", full,
                                       UnknownKeyHint(path, key, known), JoinWords(known)));
      continue;
    }
    auto [first, inserted] = seen.emplace(key, Errors::LineOf(key_node));
    if (!inserted) {
      errors.Add(key_node,
                 fmt::format("duplicate key '{}' (first set on line {})", full, first->second));
      continue;
    }
    handle(key, key_node, value);
  }
}

// The text of a scalar value; otherwise reports "PATH: expected EXPECTED, got ..." and
// returns nullopt.
std::optional<std::string> ScalarText(Errors& errors, const std::string& path,
                                      const YAML::Node& key_node, const YAML::Node& value,
                                      std::string_view expected) {
  if (value.IsScalar()) return value.Scalar();
  errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, expected, Describe(value)));
  return std::nullopt;
}

// Decimal integers only: YAML's 0x/0o forms and "1e6" are more likely typos than intent in a
// config of sizes, and the message shows the accepted range.
template <typename T>
void ParseInteger(Errors& errors, const std::string& path, const YAML::Node& key_node,
                  const YAML::Node& value, int64_t lo, int64_t hi, T* out) {
  std::string expected = fmt::format("an integer in {}..{}", lo, hi);
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, expected);
  if (!text) return;
  int64_t v = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (text->empty() || ec != std::errc() || ptr != end || v < lo || v > hi) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, expected, Describe(value)));
    return;
  }
  *out = static_cast<T>(v);
}

void ParseIntervalValue(Errors& errors, const std::string& path, const YAML::Node& key_node,
                        const YAML::Node& value, milliseconds lo, milliseconds hi,
                        milliseconds* out) {
  std::optional<std::string> text =
      ScalarText(errors, path, key_node, value, "a duration such as 500ms, 1s or 2m");
  if (!text) return;
  Result<milliseconds> d = ParseDuration(*text);
  if (!d) {
    errors.Add(key_node, fmt::format("{}: {}", path, d.error().message()));
    return;
  }
  if (*d < lo || *d > hi) {
    errors.Add(key_node, fmt::format("{}: {} is out of range {}..{}", path, *text,
                                     FormatDuration(lo), FormatDuration(hi)));
    return;
  }
  *out = *d;
}

// One of `words`, exactly; a near miss gets a suggestion.
std::optional<std::string> ParseWord(Errors& errors, const std::string& path,
                                     const YAML::Node& key_node, const YAML::Node& value,
                                     std::span<const std::string_view> words,
                                     std::string_view also_expected = {}) {
  std::string expected = fmt::format("one of {}{}", JoinWords(words), also_expected);
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, expected);
  if (!text) return std::nullopt;
  if (std::find(words.begin(), words.end(), *text) != words.end()) return text;
  std::string_view near = ClosestWord(*text, words);
  std::string hint = near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near);
  errors.Add(key_node,
             fmt::format("{}: expected {}, got {}{}", path, expected, Describe(value), hint));
  return std::nullopt;
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

void ParseBool(Errors& errors, const std::string& path, const YAML::Node& key_node,
               const YAML::Node& value, bool* out) {
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, "true or false");
  if (!text) return;
  bool b = false;
  // yaml-cpp's own reading of YAML 1.1 booleans (true/false, yes/no, on/off in any case).
  if (!YAML::convert<bool>::decode(value, b)) {
    errors.Add(key_node, fmt::format("{}: expected true or false, got {}", path, Describe(value)));
    return;
  }
  *out = b;
}

// A section's value must be a map; an empty one (`log:` with everything below commented out)
// keeps the defaults. Returns whether there is a map to walk.
bool IsSectionMap(Errors& errors, std::string_view name, const YAML::Node& key_node,
                  const YAML::Node& value) {
  if (value.IsMap()) return true;
  if (!value.IsNull()) {
    errors.Add(key_node,
               fmt::format("{}: expected a map of settings, got {}", name, Describe(value)));
  }
  return false;
}

void ParseTelemetry(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                    TelemetryConfig* t) {
  if (!IsSectionMap(errors, "telemetry", key_node, node)) return;
  ForEachKey(errors, node, "telemetry", kTelemetryKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("telemetry", key);
               if (key == "interval") {
                 ParseIntervalValue(errors, path, k, v, kMinInterval, kMaxInterval, &t->interval);
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
  if (!IsSectionMap(errors, "metrics", key_node, node)) return;
  ForEachKey(errors, node, "metrics", kMetricsKeys,
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
                 ParseIntervalValue(errors, path, k, v, kMinHeaderTimeout, kMaxHeaderTimeout,
                                    &m->header_timeout);
               }
             });
}

void ParseLog(Errors& errors, const YAML::Node& key_node, const YAML::Node& node, LogConfig* l) {
  if (!IsSectionMap(errors, "log", key_node, node)) return;
  ForEachKey(errors, node, "log", kLogKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               if (key != "level") return;
               if (auto w = ParseWord(errors, JoinPath("log", key), k, v, kLogLevels)) {
                 l->level = *w;
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

// `history_line` gets the line of forecast.history, for the check against
// telemetry.capacity once every section is read.
void ParseForecast(Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                   ForecastConfig* f, int* history_line) {
  if (!IsSectionMap(errors, "forecast", key_node, node)) return;
  ForEachKey(
      errors, node, "forecast", kForecastKeys,
      [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
        std::string path = JoinPath("forecast", key);
        if (key == "enabled") {
          ParseBool(errors, path, k, v, &f->enabled);
        } else if (key == "step") {
          ParseIntervalValue(errors, path, k, v, milliseconds(1000), milliseconds(86'400'000),
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
          std::optional<std::string> text =
              ScalarText(errors, path, k, v, "a number greater than 0");
          if (!text) return;
          double d = 0;
          auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), d);
          if (text->empty() || ec != std::errc() || ptr != text->data() + text->size() ||
              !(d > 0) || !std::isfinite(d)) {
            errors.Add(k, fmt::format("{}: expected a number greater than 0, got {}", path,
                                      Describe(v)));
            return;
          }
          f->anomaly_threshold = d;
        } else if (key == "max_series") {
          ParseInteger(errors, path, k, v, 1, 100'000, &f->max_series);
        } else if (key == "history") {
          ParseInteger(errors, path, k, v, 0, kMaxCapacity, &f->history);
          if (f->history == 1) {
            errors.Add(k, fmt::format("{}: a ring of 1 point cannot be read while it is "
                                      "written; use 0 (the default) or at least 2",
                                      path));
          }
          *history_line = Errors::LineOf(k);
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

void ParseAbsolutePath(Errors& errors, const std::string& path, const YAML::Node& key_node,
                       const YAML::Node& value, std::string* out) {
  std::optional<std::string> text =
      ScalarText(errors, path, key_node, value, "an absolute path, e.g. /usr/lib/augur/plugins");
  if (!text) return;
  if (!text->starts_with('/') || text->size() > kMaxPathLength ||
      text->find('\n') != std::string::npos) {
    errors.Add(key_node, fmt::format("{}: expected an absolute path (starting with /), got {}",
                                     path, Describe(value)));
    return;
  }
  *out = *text;
}

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
    const YAML::Node& at = Errors::LineOf(item) > 0 ? item : key_node;
    if (!item.IsScalar() || !IsPluginName(item.Scalar())) {
      errors.Add(at, fmt::format("plugins.enabled: expected {}, got {}", kPluginNameRule,
                                 Describe(item)));
      continue;
    }
    auto [it, inserted] = lines->emplace(item.Scalar(), Errors::LineOf(at));
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
                        std::map<std::string, int>* lines) {
  if (!IsSectionMap(errors, "plugins.config", key_node, value)) return;
  ForEachKey(errors, value, "plugins.config", {},
             [&](std::string_view name, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("plugins.config", name);
               if (!IsPluginName(name)) {
                 errors.Add(k, fmt::format("{}: expected {} as the key", path, kPluginNameRule));
                 return;
               }
               (*lines)[std::string(name)] = Errors::LineOf(k);
               std::map<std::string, std::string>& kv = (*out)[std::string(name)];
               if (!IsSectionMap(errors, path, k, v)) return;
               ForEachKey(errors, v, path, {},
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
  if (!IsSectionMap(errors, "plugins", key_node, node)) return;
  std::map<std::string, int> enabled_lines, config_lines;
  ForEachKey(errors, node, "plugins", kPluginsKeys,
             [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
               std::string path = JoinPath("plugins", key);
               if (key == "dir") {
                 ParseAbsolutePath(errors, path, k, v, &p->dir);
               } else if (key == "state_dir") {
                 ParseAbsolutePath(errors, path, k, v, &p->state_dir);
               } else if (key == "enabled") {
                 ParsePluginsEnabled(errors, k, v, &p->enabled, &enabled_lines);
               } else if (key == "call_timeout") {
                 ParseIntervalValue(errors, path, k, v, kMinCallTimeout, kMaxCallTimeout,
                                    &p->call_timeout);
               } else if (key == "health_interval") {
                 ParseIntervalValue(errors, path, k, v, kMinHealthInterval, kMaxHealthInterval,
                                    &p->health_interval);
               } else if (key == "config") {
                 ParsePluginsConfig(errors, k, v, &p->config, &config_lines);
               }
             });
  for (const auto& [name, line] : config_lines) {
    if (enabled_lines.contains(name)) continue;
    std::vector<std::string_view> names(p->enabled.begin(), p->enabled.end());
    std::string_view near = ClosestWord(name, names);
    errors.AddAtLine(line, fmt::format("plugins.config.{}: '{}' is not in plugins.enabled "
                                       "({}add it there or remove this section)",
                                       name, name,
                                       near.empty() ? "" : fmt::format("did you mean '{}'? ", near)));
  }
}

// Where the text stops being UTF-8 (or holds a NUL), as 1-based line and column; nullopt when
// it is clean. yaml-cpp would silently turn bad bytes into U+FFFD and carry on, so a file
// saved as Latin-1 would load with mangled names instead of failing.
struct BadByte {
  int line;
  int column;
  unsigned char byte;
};
std::optional<BadByte> FindBadUtf8(std::string_view s) {
  int line = 1;
  size_t line_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c == 0) {
      len = 0;  // NUL: not text
    } else if (c < 0x80) {
      if (c == '\n') {
        ++line;
        line_start = i + 1;
      }
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = ok ? (c & (0x7F >> len)) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) return BadByte{line, static_cast<int>(i - line_start) + 1, c};
    i += len;
  }
  return std::nullopt;
}

bool IsHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

}  // namespace

Config DefaultConfig() { return Config{}; }

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
  std::set<std::string> names;
  for (const auto& [name, kv] : pa.config) names.insert(name);
  for (const auto& [name, kv] : pb.config) names.insert(name);
  for (const std::string& name : names) {
    auto ia = pa.config.find(name);
    auto ib = pb.config.find(name);
    const bool same = ia != pa.config.end() && ib != pb.config.end() && ia->second == ib->second;
    check(!same, "plugins.config." + name);
  }
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
  auto bad = [&] {
    return Err(
        Status::InvalidArgument(fmt::format("bad duration '{}' (use e.g. 500ms, 1s, 2m)", text)));
  };
  // Split "<digits>[.<digits>]<unit>".
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::string_view whole = text.substr(0, i);
  std::string_view frac;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac = text.substr(start, i - start);
  }
  std::string_view unit = text.substr(i);
  bool has_dot = whole.size() + frac.size() < i;
  if (whole.empty() || (has_dot && frac.empty())) return bad();
  if (unit.empty()) {
    return Err(Status::InvalidArgument(
        fmt::format("bad duration '{}': add a unit ({}s for seconds, {}ms for milliseconds)", text,
                    text, text)));
  }
  int64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3600'000;
  } else {
    return bad();
  }
  // Exact decimal arithmetic: value = digits / 10^frac_len units. 18 significant digits fit
  // int64 and are more than any duration needs.
  std::string digits = std::string(whole) + std::string(frac);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.size() > 18) {
    return Err(Status::InvalidArgument(fmt::format("duration '{}' is too long", text)));
  }
  int64_t mantissa = 0;
  if (!digits.empty()) std::from_chars(digits.data(), digits.data() + digits.size(), mantissa);
  __int128 scaled = static_cast<__int128>(mantissa) * unit_ms;
  __int128 divisor = 1;
  for (size_t k = 0; k < frac.size(); ++k) divisor *= 10;
  if (scaled % divisor != 0) {
    return Err(Status::InvalidArgument(
        fmt::format("bad duration '{}': not a whole number of milliseconds", text)));
  }
  __int128 ms = scaled / divisor;
  if (ms > std::numeric_limits<int64_t>::max()) {
    return Err(Status::InvalidArgument(fmt::format("duration '{}' is too long", text)));
  }
  return milliseconds(static_cast<int64_t>(ms));
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

namespace {

// Walks the documents of a YAML stream with yaml-cpp's event parser, for what YAML::LoadAll
// would say about them, without its hang: yaml-cpp 0.7's LoadAll never returns on a stream
// with a token that cannot start a node at the top level, such as "{a}, b}" or ", a". Its
// parser then makes an empty document without consuming the token, again and again, and
// LoadAll keeps each one, so the loop also eats memory (found by tests/fuzz/config_fuzz.cc;
// regression input tests/fuzz/corpus/config/regress_loadall_hang.yaml). A document that
// starts where the previous one did has consumed nothing: that is where the walk stops.
class DocumentWalk : public YAML::EventHandler {
 public:
  // Throws YAML::Exception for a syntax error, as LoadAll does.
  explicit DocumentWalk(const std::string& yaml) {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    for (;;) {
      doc_start_.reset();
      if (!parser.HandleNextDocument(*this)) break;
      if (stalled_) break;
    }
  }

  // The position of a token no document could consume, if any.
  std::optional<YAML::Mark> stall() const {
    return stalled_ ? std::optional<YAML::Mark>(stall_mark_) : std::nullopt;
  }
  // Where each document after the first that is not empty starts.
  const std::vector<YAML::Mark>& later_documents() const { return later_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (have_prev_ && mark.pos == prev_start_.pos) {
      stalled_ = true;
      stall_mark_ = mark;
    }
    have_prev_ = true;
    prev_start_ = mark;
    ++docs_;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, /*null=*/true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnMapEnd() override {}

 private:
  // The first node event of a document is its root.
  void Node(const YAML::Mark& mark, bool null) {
    if (doc_start_) return;
    doc_start_ = mark;
    if (docs_ > 1 && !null && !stalled_) later_.push_back(mark);
  }

  bool have_prev_ = false;
  YAML::Mark prev_start_;
  bool stalled_ = false;
  YAML::Mark stall_mark_;
  size_t docs_ = 0;
  std::optional<YAML::Mark> doc_start_;
  std::vector<YAML::Mark> later_;
};

}  // namespace

Result<Config> ParseConfig(std::string_view yaml, std::string_view origin) {
  if (std::optional<BadByte> bad = FindBadUtf8(yaml)) {
    return Err(Status::InvalidArgument(
        fmt::format("{}:{}:{}: {} (byte 0x{:02x}); save the file as UTF-8 text", origin, bad->line,
                    bad->column, bad->byte == 0 ? "NUL byte" : "not valid UTF-8", bad->byte)));
  }
  Config config = DefaultConfig();
  Errors errors(origin);
  int history_line = 0;
  // yaml-cpp reports syntax errors (and the odd bad conversion) by throwing; this is the one
  // place that catches them (STYLE.md: one wrapper per library).
  try {
    const std::string text(yaml);
    const DocumentWalk walk(text);  // not YAML::LoadAll, which can hang: see DocumentWalk
    if (std::optional<YAML::Mark> at = walk.stall()) {
      const char c = static_cast<size_t>(at->pos) < text.size() ? text[at->pos] : ' ';
      return Err(Status::InvalidArgument(
          fmt::format("{}:{}:{}: YAML syntax error: '{}' cannot start or continue a document",
                      origin, at->line + 1, at->column + 1, c)));
    }
    // Stray trailing "---"s make empty documents, which are fine.
    for (const YAML::Mark& m : walk.later_documents()) {
      errors.AddAtLine(m.line + 1, "a second YAML document starts here; the config is one document");
    }
    YAML::Node root = YAML::Load(text);  // the first document only
    if (root.IsMap()) {
      ForEachKey(errors, root, "", kTopKeys,
                 [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                   if (key == "telemetry") ParseTelemetry(errors, k, v, &config.telemetry);
                   if (key == "metrics") ParseMetrics(errors, k, v, &config.metrics);
                   if (key == "log") ParseLog(errors, k, v, &config.log);
                   if (key == "plugins") ParsePlugins(errors, k, v, &config.plugins);
                   if (key == "forecast") {
                     ParseForecast(errors, k, v, &config.forecast, &history_line);
                   }
                 });
    } else if (!root.IsNull()) {
      errors.Add(root, fmt::format("expected a map with the sections {} at the top level, got {}",
                                   JoinWords(kTopKeys), Describe(root)));
    }
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return Err(Status::InvalidArgument(fmt::format("{}: YAML error: {}", origin, e.msg)));
    }
    return Err(Status::InvalidArgument(fmt::format("{}:{}:{}: YAML syntax error: {}", origin,
                                                   e.mark.line + 1, e.mark.column + 1, e.msg)));
  }
  if (config.forecast.history > config.telemetry.capacity) {
    errors.AddAtLine(history_line,
                     fmt::format("forecast.history: {} is more than telemetry.capacity ({}), the "
                                 "most points any series keeps",
                                 config.forecast.history, config.telemetry.capacity));
  }
  if (!errors.empty()) return Err(errors.ToStatus());
  return config;
}

Result<Config> LoadConfigFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Err(Status::NotFound(path + ": no such file"));
    return Err(Status::FromErrno("cannot open config " + path, err));
  }
  // Closes on every return below.
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  struct stat st;
  if (::fstat(fd, &st) != 0) return Err(Status::FromErrno("cannot stat config " + path, errno));
  if (S_ISDIR(st.st_mode)) {
    return Err(Status::InvalidArgument(path + ": is a directory, not a config file"));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(Status::FromErrno("cannot read config " + path, errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigFileBytes) {
      return Err(Status::InvalidArgument(fmt::format(
          "{}: larger than {} bytes; is this the config file?", path, kMaxConfigFileBytes)));
    }
  }
  return ParseConfig(text, path);
}

}  // namespace augur::agent
