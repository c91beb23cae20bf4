// WorkflowsConfig: the `workflows:` section of the agent config, owned by the workflow
// component (agent/config.cc only routes the section here), so that the agent config does
// not grow with every engine knob.
//
//   workflows:
//     enabled: true                       # run the workflow engine (needs a backend)
//     state_dir: /var/lib/augur/workflows # workflows.db (SQLite) and work/<workflow>/
//     max_output: 1Gi                     # per shard or stage output file
//     preemption: false                   # may a higher score pre-empt lower minimums
//     aging_after: 5m                     # waiting this long starts raising a shard's score
//     max_cpu: 0                          # cores all shards may hold at once; 0: the backend's
//     max_memory: 0                       # bytes likewise (e.g. 12Gi); 0: the backend's
//     history_retention: 180d             # history and finished workflows older are pruned
//     start_threads: 2                    # threads that start tasks off the engine (1..64)
//     prewarm:                            # instances prepared ahead of predicted starts
//       enabled: true
//       lead: 5s                          # this long before the predicted start (0s..1h)
//       idle_timeout: 60s                 # a warm instance unused this long goes (1s..1d)
//       max_instances: 8                  # warm at once, per backend and in all (1..1000)
//       probe: []                         # warm-up check run in it; []: provisioned is ready
//       probe_timeout: 10s                # (100ms..1h)
//       follow_window: 10m                # "B follows A" within this; 0s: off (0s..1d)
#ifndef AUGUR_WORKFLOW_WORKFLOW_CONFIG_H_
#define AUGUR_WORKFLOW_WORKFLOW_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "augur_paths.h"

// Declared, not included: this header reaches every includer of agent/config.h, which need
// not see yaml-cpp.
namespace YAML {
class Node;
}
namespace augur::yaml {
class Errors;
}

namespace augur::workflow {

// workflows.prewarm (docs/WORKFLOWS.md "Pre-warming"; the decisions are prewarm.h's).
struct PrewarmConfig {
  bool enabled = true;
  std::chrono::milliseconds lead{5'000};
  std::chrono::milliseconds idle_timeout{60'000};
  uint32_t max_instances = 8;
  std::vector<std::string> probe;  // argv; empty: the backend's own readiness
  std::chrono::milliseconds probe_timeout{10'000};
  std::chrono::milliseconds follow_window{600'000};  // 0: no cross-workflow predictions
  double demand_per_hour = 6;  // forecast submissions an hour that keep roots warm; 0: off

  friend bool operator==(const PrewarmConfig&, const PrewarmConfig&) = default;
};

inline constexpr std::string_view kPrewarmKeys[] = {
    "enabled",       "lead",          "idle_timeout",   "max_instances",
    "probe",         "probe_timeout", "follow_window",  "demand_per_hour"};

struct WorkflowsConfig {
  bool enabled = true;
  std::string state_dir = AUGUR_DEFAULT_STATE_DIR "/workflows";  // absolute
  uint64_t max_output = 1ULL << 30;                              // bytes; 1Ki..1Ti
  bool preemption = false;
  std::chrono::milliseconds aging_after{300'000};                // 0..1d
  double max_cpu = 0;        // 0: what the backend reports
  uint64_t max_memory = 0;   // 0: what the backend reports
  // What an anomaly on a running shard's own series does: "alert", "grow" or "reshard"
  // (engine.h AnomalyAction); and how long an anomaly on the host makes admission cautious.
  std::string anomaly_action = "grow";
  std::chrono::milliseconds anomaly_caution{300'000};            // 0..1d; 0: off
  // History rows, finished workflows and events older than this are pruned; 0: kept for good.
  std::chrono::milliseconds history_retention{180LL * 86'400'000};  // 0, or 1h..3650d
  // Threads that start tasks (a backend's provision and run) so that the engine thread does
  // not wait for them (start_pool.h); 1..64.
  uint32_t start_threads = 2;
  PrewarmConfig prewarm;

  friend bool operator==(const WorkflowsConfig&, const WorkflowsConfig&) = default;
};

// The keys, for the agent config's did-you-mean across sections.
inline constexpr std::string_view kWorkflowsKeys[] = {
    "enabled",         "state_dir",      "max_output",     "preemption",
    "aging_after",     "max_cpu",        "max_memory",     "anomaly_action",
    "anomaly_caution", "history_retention", "start_threads", "prewarm"};

// Reads the section (`node` is its value, `key_node` its key) into `*out`, reporting every
// problem into `errors` as the agent config does.
void ParseWorkflowsSection(yaml::Errors& errors, const YAML::Node& key_node,
                           const YAML::Node& node, WorkflowsConfig* out);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_WORKFLOW_CONFIG_H_
