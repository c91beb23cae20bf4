// Conformance: the checks augur-plugin-check runs against a backend plugin, through a real
// plugin host, so that a plugin that crashes under a check fails that check instead of
// taking the checker down.
//
// Checks (each one line of output): abi, describe, lifecycle, idempotent_provision, tasks,
// cancel, io_counters, bad_arguments, resize, double_release, prewarm, threads, recover.
// Plugins of every minor of ABI major 1 are checked (a 1.0 plugin's I/O counters must read
// 0). A backend may decline an optional operation (prewarm, run) with AUGUR_ERR_UNSUPPORTED;
// that check is then skipped, not failed.
#ifndef AUGUR_PLUGIN_CONFORMANCE_H_
#define AUGUR_PLUGIN_CONFORMANCE_H_

#include <functional>
#include <string>
#include <vector>

#include "plugin/plugin_client.h"

namespace augur::plugin {

struct CheckResult {
  enum class Outcome { kPass, kFail, kSkip };
  std::string name;
  Outcome outcome = Outcome::kPass;
  std::string detail;  // why it failed or was skipped; what was seen when it passed
};

struct ConformanceOptions {
  PluginClientOptions client;  // which plugin, host, timeouts, config
  std::string template_ref;    // for provision; "" for the backend's default
  // Checks not to run (reported as SKIP), e.g. "recover" on a backend whose test driver
  // keeps no state across processes.
  std::vector<std::string> skip;
  // Called as each check finishes (the checker prints from here).
  std::function<void(const CheckResult&)> on_result;
};

// Runs every check. Never throws; a plugin that cannot be loaded fails "abi" and the rest
// are not run.
std::vector<CheckResult> RunConformance(const ConformanceOptions& options);

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_CONFORMANCE_H_
