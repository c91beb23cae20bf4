// Executor: the one part of the workflow engine that does I/O. It owns the Engine (pure),
// the WorkflowStore (SQLite) and the engine thread, and drives the provisioning backends.
//
// Every 100 ms (and at once when a request arrives) the engine thread:
//   1. answers queued requests (submit, status, result, cancel, boost, history);
//   2. polls running invocations (Backend::Poll without waiting) and reports their ends;
//   3. runs Engine::Tick;
//   4. writes everything that changed to the store in one transaction (state before
//      action), and only then
//   5. acts: provisions an instance per attempt (a cgroup for the process backend), or takes
//      a pre-warmed one (warm_pool.h), and runs the task in it with its invocation
//      metadata, resizes grants live, cancels, merges;
//   6. pre-warms: the warm pool acts on Engine::Upcoming() and the cross-workflow
//      predictions (warm_pool.h).
// A crash between 4 and 5 loses nothing: on the next start the running workflows are
// restored from the store, attempts that were running are re-attached through the backend
// (whose plugin host recovered its handles) or, when gone, re-run; merging is idempotent.
//
// Threads: the engine thread alone touches the Engine, the store and the backends' task
// calls; requests from the control socket are posted to it and wait for its answer. The
// sampling loop of augurd never waits on it.
//
// Outputs live under <state_dir>/work/<workflow>/. A shard whose output grows past
// max_output_bytes is cancelled and fails its workflow; a full disk fails the workflow
// concerned, never the agent.
#ifndef AUGUR_WORKFLOW_EXECUTOR_H_
#define AUGUR_WORKFLOW_EXECUTOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/engine.h"
#include "workflow/resources.h"
#include "workflow/warm_pool.h"

namespace augur::plugin {
class Backend;
}

namespace augur::workflow {

// What one merge command is granted on the process backend, outside the ledger. augurd
// keeps this much of the backend's capacity out of the ledger (per concurrent merge it
// expects) so that shards it admits find room.
inline constexpr Resources kMergeReserve{0.1, 64ULL << 20};

struct ExecutorOptions {
  std::string state_dir;  // workflows.db and work/ live here
  EngineOptions engine;   // work_root is set from state_dir when empty
  uint64_t max_output_bytes = 1ULL << 30;  // per shard or stage output file
  std::chrono::milliseconds tick{100};
  // Backends whose cost classes (describe()) the engine charges shards at; read at start
  // and every cost_refresh after (a backend's prices may change).
  std::vector<std::string> backends;
  std::chrono::milliseconds cost_refresh{30'000};
  // Pre-warming (off unless enabled). scratch_dir is set from state_dir when empty;
  // capacity from engine.capacity, keep_free to the room of two merges.
  WarmPoolOptions prewarm;
};

// The backend of a given name, or nullptr when it is not enabled or not up.
using BackendLookup = std::function<plugin::Backend*(const std::string& name)>;
// What the host's other load is predicted to leave free (forecast lower edge), if known.
using ForecastFree = std::function<std::optional<Resources>()>;

class Executor {
 public:
  // Opens the store (errors name the file), restores running workflows, and starts the
  // engine thread.
  static Result<std::unique_ptr<Executor>> Start(ExecutorOptions options, BackendLookup backends,
                                                 ForecastFree forecast = nullptr);
  // Stops the engine thread. Running tasks are left running: the next start re-attaches.
  ~Executor();

  // Thread-safe; each waits for the engine thread's answer.
  Result<std::string> Submit(const std::string& yaml, const std::string& origin);
  Result<std::string> StatusJson(const std::string& workflow, bool explain);
  // A stage's merged output (default: the last stage in the file).
  Result<std::string> Output(const std::string& workflow, const std::string& stage);
  Status Cancel(const std::string& workflow);
  Status Boost(const std::string& workflow, double points, std::chrono::milliseconds duration);
  Result<std::string> HistoryJson(const std::string& workflow, size_t limit);
  // Pre-warming's counters; any thread, never waits on the engine thread.
  PrewarmStats prewarm_stats() const;

  struct Impl;

 private:
  explicit Executor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_EXECUTOR_H_
