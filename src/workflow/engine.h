// Engine: the workflow engine's state machine on one host. Pure: it takes submissions,
// events (an attempt ended, a merge finished) and a clock, and returns the records to
// persist and the actions to take; the Executor (executor.h) persists the records first
// (WorkflowStore, in one transaction) and then acts, so a crash between the two leaves the
// state the actions can be re-derived from.
//
// The life of a workflow:
//   Submit       the spec is checked, the DAG and its critical path (predicted durations:
//                the median of the stage's past shards, else `expected:`, else a default)
//                computed, and a plan made (plan.h: the order of its stages that a replay
//                with those predictions finishes first); stages without needs become ready.
//                The path is recomputed as stages finish.
//   ready stage  its shards are planned (shard_plan.h) against the backend's capacity.
//   Tick         pending shards are scored and admitted (scheduler.h, ledger.h); each start
//                is an attempt record ("<workflow>/<stage>/<shard>#<n>") and a kStart action
//                with the task's argv (placeholders filled), environment and output file;
//                grant changes are kResize actions; shards past their timeout kCancel.
//   AttemptEnded the merge book (merge.h) accepts the first success of a shard; an attempt
//                lost before it ran (the backend could not provision it) or pre-empted is
//                re-queued without spending a retry; a failure is retried after its backoff, with more memory or CPU when the stage says so,
//                until its retries are spent (then the workflow fails and its other attempts
//                are cancelled).
//   all shards   a kMerge action: concat the winners' outputs in shard order, or run the
//                stage's merge command on them; MergeDone completes the stage, readies the
//                stages that need it, and the last stage completes the workflow.
//
// Thread safety: one thread (the executor's engine thread).
#ifndef AUGUR_WORKFLOW_ENGINE_H_
#define AUGUR_WORKFLOW_ENGINE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/dag.h"
#include "workflow/ledger.h"
#include "workflow/merge.h"
#include "workflow/resources.h"
#include "workflow/scheduler.h"
#include "workflow/store.h"
#include "workflow/workflow_spec.h"

namespace augur::workflow {

struct EngineOptions {
  std::string work_root;   // per-workflow directories (outputs) live under it
  Resources capacity;      // what the backends can grant at once (the ledger's capacity)
  SchedulerOptions scheduler;
  LedgerOptions ledger;
  double default_expected_s = 60;  // a shard's predicted time without `expected:`
  // Plan each workflow at submission (plan.h): its stages' shards are replayed on the
  // capacity with predicted durations and the best order found is followed. Workflows
  // of more than plan_max_shards shards (as declared) get no plan.
  bool plan = true;
  size_t plan_max_shards = 500;
};

// What the executor must do, after persisting Changes.
struct Action {
  enum class Kind {
    kStart,   // provision an instance of `attempt.grant` and run `argv` in it
    kResize,  // move attempt's instance to `resize_to`
    kCancel,  // stop the attempt (timeout, workflow cancelled or failed)
    kMerge,   // merge `inputs` into `output` (concat, or run `argv`)
  };
  Kind kind = Kind::kStart;
  AttemptRecord attempt;             // kStart, kResize, kCancel
  std::vector<std::string> argv;     // kStart: the task; kMerge: the merge command (or empty)
  std::vector<std::string> env;      // kStart: KEY=VALUE
  std::string workdir;               // kStart, kMerge
  int priority = 5;                  // kStart: for the invocation's metadata
  uint64_t range_begin = 0, range_end = 0;
  Resources resize_to;               // kResize
  std::string reason;                // kResize, kCancel: for the log
  std::string workflow_id, stage;    // kMerge
  std::vector<std::string> inputs;   // kMerge: shard outputs in shard order
  std::string output;                // kMerge: the stage's output file
};

// Records that changed since the last DrainChanges().
struct Changes {
  std::vector<WorkflowRecord> workflows;
  std::vector<ShardRecord> shards;
  std::vector<AttemptRecord> attempts;
  std::vector<std::pair<std::string, std::string>> stage_outputs;  // (workflow/stage, path)
  std::vector<HistoryRecord> history;
  bool empty() const {
    return workflows.empty() && shards.empty() && attempts.empty() && stage_outputs.empty() &&
           history.empty();
  }
};

// How an attempt ended, as the executor saw it through the backend.
struct AttemptOutcome {
  AttemptState state = AttemptState::kSucceeded;
  int32_t exit_code = 0;
  int32_t term_signal = 0;
  double cpu_seconds = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  std::string error;
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();

  // Accepts a parsed workflow; returns its id. `yaml` is kept to re-parse on recovery.
  Result<std::string> Submit(const WorkflowSpec& spec, std::string yaml, std::string origin,
                             int64_t now_ns);

  // Restores a workflow from the store after a restart. Shards that had a winner stay
  // done; attempts that were running are given back in `reattach` (the executor asks the
  // backend whether they still run, then calls AttemptEnded or keeps polling them).
  Status Restore(const WorkflowRecord& w, const std::vector<ShardRecord>& shards,
                 const std::vector<AttemptRecord>& attempts,
                 const std::map<std::string, std::string>& stage_outputs,
                 std::vector<AttemptRecord>* reattach);

  // Decides what starts, resizes or is cancelled now.
  std::vector<Action> Tick(int64_t now_ns, const HostView& host);
  // The end of an attempt. Duplicate and late results are discarded (and logged by the
  // caller from the returned outcome).
  MergeOutcome AttemptEnded(const std::string& attempt_id, const AttemptOutcome& outcome,
                            int64_t now_ns);
  // The end of a stage's merge.
  void MergeDone(const std::string& workflow_id, const std::string& stage, bool ok,
                 const std::string& error, int64_t now_ns);

  // Teaches the engine how long a successful shard of `stage` in workflows named
  // `workflow_name` took (the executor feeds it the history at start; the engine learns from
  // each success itself). Predictions use the median of the last 32 of a stage, else the
  // stage's `expected:`, else default_expected_s.
  void LearnDuration(const std::string& workflow_name, const std::string& stage, double wall_s);

  Status Cancel(const std::string& workflow, int64_t now_ns);
  Status Boost(const std::string& workflow, double points, int64_t until_ns);

  // `augurctl status` as JSON text: every workflow (or one, by id or name), its stages with
  // shard counts by state, an ETA from predictions, and with `explain` each pending shard's
  // score parts and why it waits.
  Result<std::string> StatusJson(const std::string& workflow, bool explain) const;
  // The id of a workflow given by id or name (the newest of that name).
  Result<std::string> Resolve(const std::string& workflow) const;
  // A stage of workflow `id` by name, or its last stage when `stage` is ""; NotFound for a
  // stage it does not have. REQUIRES: `id` from Resolve().
  Result<std::string> StageOf(const std::string& id, const std::string& stage) const;
  // "running", "succeeded", ... REQUIRES: `id` from Resolve().
  std::string_view StateOf(const std::string& id) const;

  Changes DrainChanges();
  // The ledger (for tests and metrics).
  const Ledger& ledger() const;
  size_t running_attempts() const;
  bool idle() const;  // nothing running or pending

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_ENGINE_H_
