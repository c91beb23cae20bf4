#include "workflow/workflow_config.h"

#include <fmt/format.h>

#include "common/yaml_reader.h"
#include "workflow/resources.h"

namespace augur::workflow {
namespace {

// Less than an hour of history would starve the learners; ten years is "for good" enough.
constexpr std::chrono::milliseconds kMinRetention{3600'000};
constexpr std::chrono::milliseconds kMaxRetention{3650LL * 86'400'000};

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
                     } else if (key == "aging_after") {
                       yaml::ParseDuration(errors, path, k, v, std::chrono::milliseconds(0),
                                           std::chrono::milliseconds(86'400'000),
                                           &out->aging_after);
                     }
                   });
}

}  // namespace augur::workflow
