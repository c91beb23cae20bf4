#include "workflow/workflow_config.h"

#include <fmt/format.h>

#include "common/yaml_reader.h"
#include "workflow/resources.h"

namespace augur::workflow {
namespace {

// Less than an hour of history would starve the learners; ten years is "for good" enough.
constexpr std::chrono::milliseconds kMinRetention{3600'000};
constexpr std::chrono::milliseconds kMaxRetention{3650LL * 86'400'000};
using std::chrono::milliseconds;

constexpr size_t kMaxProbeArgs = 256;

// workflows.start_threads: starts are mostly waits on a backend (a cgroup, a VM's boot), so
// more threads than cores can help; past 64 a misconfiguration, not a need.
constexpr int64_t kMaxStartThreads = 64;

// workflows.prewarm.probe: a list of words (argv); [] or nothing for none.
void ParseProbe(yaml::Errors& errors, const std::string& path, const YAML::Node& k,
                const YAML::Node& v, std::vector<std::string>* out) {
  if (v.IsNull()) {
    out->clear();
    return;
  }
  if (!v.IsSequence()) {
    errors.Add(k, fmt::format("{}: expected a command as a list of words, e.g. [sh, -c, "
                              "\"test -x /bin/sh\"], or [] for none; got {}",
                              path, yaml::Describe(v)));
    return;
  }
  if (v.size() > kMaxProbeArgs) {
    errors.Add(k, fmt::format("{}: {} words is more than {}", path, v.size(), kMaxProbeArgs));
    return;
  }
  std::vector<std::string> argv;
  bool ok = true;
  for (size_t i = 0; i < v.size(); ++i) {
    const YAML::Node item = v[i];
    const YAML::Node& at = yaml::PosOf(item).line > 0 ? item : k;
    if (!item.IsScalar()) {
      errors.Add(at, fmt::format("{}[{}]: expected text, got {}", path, i, yaml::Describe(item)));
      ok = false;
    } else if (i == 0 && item.Scalar().empty()) {
      errors.Add(at, fmt::format("{}[0]: the program must not be empty", path));
      ok = false;
    } else {
      argv.push_back(item.Scalar());
    }
  }
  if (ok) *out = std::move(argv);
}

void ParsePrewarm(yaml::Errors& errors, const YAML::Node& key_node, const YAML::Node& node,
                  PrewarmConfig* out) {
  if (!yaml::IsMapOrNull(errors, "workflows.prewarm", key_node, node)) return;
  yaml::ForEachKey(errors, node, "workflows.prewarm", kPrewarmKeys,
                   [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                     const std::string path = yaml::JoinPath("workflows.prewarm", key);
                     if (key == "enabled") {
                       yaml::ParseBool(errors, path, k, v, &out->enabled);
                     } else if (key == "lead") {
                       yaml::ParseDuration(errors, path, k, v, milliseconds(0),
                                           milliseconds(3'600'000), &out->lead);
                     } else if (key == "idle_timeout") {
                       yaml::ParseDuration(errors, path, k, v, milliseconds(1'000),
                                           milliseconds(86'400'000), &out->idle_timeout);
                     } else if (key == "max_instances") {
                       yaml::ParseInteger(errors, path, k, v, 1, 1000, &out->max_instances);
                     } else if (key == "probe") {
                       ParseProbe(errors, path, k, v, &out->probe);
                     } else if (key == "probe_timeout") {
                       yaml::ParseDuration(errors, path, k, v, milliseconds(100),
                                           milliseconds(3'600'000), &out->probe_timeout);
                     } else if (key == "follow_window") {
                       yaml::ParseDuration(errors, path, k, v, milliseconds(0),
                                           milliseconds(86'400'000), &out->follow_window);
                     } else if (key == "demand_per_hour") {
                       yaml::ParseNumber(errors, path, k, v, 0, 1e6,
                                         "a number of submissions an hour in 0..1000000 (0: off)",
                                         &out->demand_per_hour);
                     }
                   });
}

}  // namespace

void ParseWorkflowsSection(yaml::Errors& errors, const YAML::Node& key_node,
                           const YAML::Node& node, WorkflowsConfig* out) {
  if (!yaml::IsMapOrNull(errors, "workflows", key_node, node)) return;
  yaml::ForEachKey(errors, node, "workflows", kWorkflowsKeys,
                   [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                     const std::string path = yaml::JoinPath("workflows", key);
                     if (key == "enabled") {
                       yaml::ParseBool(errors, path, k, v, &out->enabled);
                     } else if (key == "preemption") {
                       yaml::ParseBool(errors, path, k, v, &out->preemption);
                     } else if (key == "state_dir") {
                       yaml::ParseAbsolutePath(errors, path, k, v, &out->state_dir);
                     } else if (key == "max_output") {
                       auto text = yaml::ScalarText(errors, path, k, v, "a size such as 1Gi");
                       if (!text) return;
                       auto bytes = ParseMemory(*text);
                       if (!bytes || *bytes < 1024 || *bytes > (1ULL << 40)) {
                         errors.Add(k, fmt::format("{}: expected a size in 1Ki..1Ti, got {}{}",
                                                   path, yaml::Describe(v),
                                                   bytes ? "" : " (" + bytes.error().message() + ")"));
                         return;
                       }
                       out->max_output = *bytes;
                     } else if (key == "max_cpu") {
                       yaml::ParseNumber(errors, path, k, v, 0, 100000,
                                         "a number of cores in 0..100000 (0: the backend's)",
                                         &out->max_cpu);
                     } else if (key == "max_memory") {
                       auto text = yaml::ScalarText(errors, path, k, v, "a size such as 12Gi");
                       if (!text) return;
                       if (*text == "0") {
                         out->max_memory = 0;
                         return;
                       }
                       auto bytes = ParseMemory(*text);
                       if (!bytes) {
                         errors.Add(k, fmt::format("{}: {}", path, bytes.error().message()));
                         return;
                       }
                       out->max_memory = *bytes;
                     } else if (key == "anomaly_action") {
                       static constexpr std::string_view kActions[] = {"alert", "grow",
                                                                       "reshard"};
                       if (auto w = yaml::ParseWord(errors, path, k, v, kActions)) {
                         out->anomaly_action = *w;
                       }
                     } else if (key == "anomaly_caution") {
                       yaml::ParseDuration(errors, path, k, v, std::chrono::milliseconds(0),
                                           std::chrono::milliseconds(86'400'000),
                                           &out->anomaly_caution);
                     } else if (key == "history_retention") {
                       std::chrono::milliseconds d{0};
                       if (!yaml::ParseDuration(errors, path, k, v, std::chrono::milliseconds(0),
                                                kMaxRetention, &d)) {
                         return;
                       }
                       if (d.count() != 0 && d < kMinRetention) {
                         errors.Add(k, fmt::format("{}: {} is out of range {}..{} (or 0 to keep "
                                                   "everything)",
                                                   path, yaml::FormatDuration(d),
                                                   yaml::FormatDuration(kMinRetention),
                                                   yaml::FormatDuration(kMaxRetention)));
                         return;
                       }
                       out->history_retention = d;
                     } else if (key == "start_threads") {
                       yaml::ParseInteger(errors, path, k, v, 1, kMaxStartThreads,
                                          &out->start_threads);
                     } else if (key == "prewarm") {
                       ParsePrewarm(errors, k, v, &out->prewarm);
                     } else if (key == "aging_after") {
                       yaml::ParseDuration(errors, path, k, v, std::chrono::milliseconds(0),
                                           std::chrono::milliseconds(86'400'000),
                                           &out->aging_after);
                     }
                   });
}

}  // namespace augur::workflow
