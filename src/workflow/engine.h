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
#include "workflow/cost.h"
#include "workflow/dag.h"
#include "workflow/feedback.h"
#include "workflow/ledger.h"
#include "workflow/merge.h"
#include "workflow/profile.h"
#include "workflow/prewarm.h"
#include "workflow/resources.h"
#include "workflow/scheduler.h"
#include "workflow/store.h"
#include "workflow/workflow_spec.h"

namespace augur::workflow {

// Straggler speculation (Engine: a shard far past its prediction has its range re-run in
// pieces when that pays; see engine.cc Speculate).
struct SpeculationOptions {
  double straggler_factor = 2.0;  // a straggler has run this many times its prediction
  uint32_t max_pieces = 4;        // pieces a straggler's range is cut into (< 2: off)
  double min_saving_s = 1.0;      // the least predicted saving that pays
  double startup_s = 0.2;         // a piece's start-up time, until profiles know better
};

// What an anomaly on a running shard's own series does (seed 003).
enum class AnomalyAction {
  kAlert,    // log the event with the shard's handle, nothing more
  kGrow,     // and raise what the shard wants by grow_factor; it grows into free room
  kReshard,  // and re-run its range in pieces now, as for a straggler (else alert)
};
std::string_view AnomalyActionName(AnomalyAction a);  // "alert", "grow", "reshard"
std::optional<AnomalyAction> AnomalyActionFromName(std::string_view name);

struct AnomalyOptions {
  AnomalyAction action = AnomalyAction::kGrow;
  double grow_factor = 1.5;
  // An anomaly on one of the host's own series makes admission cautious for this long: new
  // shards may take at most caution_share of the room free at each decision. 0: off.
  double caution_s = 300;
  double caution_share = 0.5;
};

struct EngineOptions {
  std::string work_root;   // per-workflow directories (outputs) live under it
  Resources capacity;      // what the backends can grant at once (the ledger's capacity)
  SchedulerOptions scheduler;
  LedgerOptions ledger;
  double default_expected_s = 60;  // a shard's predicted time without `expected:`
  SpeculationOptions speculation;
  AnomalyOptions anomaly;
  FeedbackOptions feedback;
  ProfileOptions profile;  // what is learned per stage (profile.h)
  // Right-sizing: a shard's want comes from its stage's learned upper edges times these
  // margins, within the file's min and want (the file's values are bounds).
  double size_memory_margin = 1.1;
  double size_cpu_margin = 1.25;
  // Plan each workflow at submission (plan.h): its stages' shards are replayed on the
  // capacity with predicted durations and the best order found is followed. Workflows
  // of more than plan_max_shards shards (as declared) get no plan.
  bool plan = true;
  size_t plan_max_shards = 500;
  // This host's name, recorded as the host of every local attempt (AttemptRecord::host).
  std::string host_name;
};

// What the executor must do, after persisting Changes.
struct Action {
  enum class Kind {
    kStart,   // provision an instance of `attempt.grant` and run `argv` in it
    kResize,  // move attempt's instance to `resize_to`
    kCancel,  // stop the attempt (timeout, workflow cancelled or failed)
    kMerge,   // merge `inputs` into `output` (concat, or run `argv`)
    // Place the attempt on another host through the mesh (SetRemoteRoom): negotiate a lease
    // for between `min` and attempt.grant (the shard's want), then run argv there. Its
    // grant is not charged to this host's ledger; RemoteAwarded records the host and grant.
    kPlace,
  };
  Kind kind = Kind::kStart;
  AttemptRecord attempt;             // kStart, kResize, kCancel
  std::vector<std::string> argv;     // kStart: the task; kMerge: the merge command (or empty)
  std::vector<std::string> env;      // kStart: KEY=VALUE
  std::string workdir;               // kStart, kMerge
  int priority = 5;                  // kStart: for the invocation's metadata
  uint64_t range_begin = 0, range_end = 0;
  std::string resource_class;        // kStart: the backend's cost class ("": its default)
  Resources resize_to;               // kResize
  std::string reason;                // kResize, kCancel: for the log
  std::string workflow_id, stage;    // kMerge
  std::vector<std::string> inputs;   // kMerge: shard outputs in shard order
  std::string output;                // kMerge: the stage's output file
  // kPlace: what the negotiation needs besides attempt.grant (the want).
  Resources min;
  double score = 0;
  double predicted_s = 0;
  double budget_left = 0;  // infinite without a budget
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
  // kLost because the host it ran on was declared dead (not a failure of a live host or
  // backend): its shard is re-queued at once, without the back-off a lost attempt waits.
  bool host_down = false;
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
  // backend whether they still run, then calls AttemptEnded or keeps polling them). One
  // placed on another host (a lease id, or a host other than this one) is live again as a
  // placed attempt (IsRemote), with no grant in this ledger: the executor resumes its lease
  // through the placer or ends it kLost.
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
  // A local attempt's task runs: its backend instance and invocation handles, recorded with
  // it (every later record of the attempt, a resize's included, carries them, so that a
  // restart re-attaches the task). NotFound for an attempt that is not live.
  Status AttemptRunning(const std::string& attempt_id, const std::string& instance,
                        const std::string& invocation);
  // What a running attempt has used so far, as its backend reports it while polling: CPU
  // seconds and peak memory. The engine resizes the attempt's grant live when the usage
  // departs from its grant or prediction (feedback.h); unknown attempts are ignored.
  void ReportUsage(const std::string& attempt_id, double cpu_seconds, uint64_t peak_memory,
                   int64_t now_ns);
  // The end of a stage's merge.
  void MergeDone(const std::string& workflow_id, const std::string& stage, bool ok,
                 const std::string& error, int64_t now_ns);

  // Teaches the engine a finished attempt of the past (the executor feeds it the stored
  // history at start, oldest first; the engine learns from each attempt that ends itself):
  // its stage's profile (profile.h) and, for a success, the median of the stage's last 32
  // run times. A shard's predicted run time is its profile's estimate for its size (3
  // samples or more), else that median, else the stage's `expected:`, else
  // default_expected_s.
  void Learn(const HistoryRecord& h);
  // What was learned per stage and per backend (augurctl profile); the executor teaches it
  // start-up times (ProfileBook::LearnStartup).
  ProfileBook& profiles();
  const ProfileBook& profiles() const;

  // The cost classes a backend reports (describe()). Each shard on it runs on the class
  // ChooseClass (cost.h) picks for its prediction, deadline and budget, and is charged at
  // it. A backend never set, or set to none, is free.
  void SetBackendCosts(const std::string& backend, const std::vector<CostClass>& classes);

  // An anomaly on the series of the instance that runs `attempt_id` (the anomaly detector's
  // event on its cgroup's series): recorded as an event of its workflow (status shows the
  // last ones) and the configured action applied. Returns the event's sentence; NotFound
  // for an attempt that is not running.
  Result<std::string> ShardAnomaly(const std::string& attempt_id, std::string_view series,
                                   int64_t now_ns);
  // An anomaly on one of the host's own series: admission is cautious until
  // now + anomaly.caution_s. Returns the sentence to log.
  std::string HostAnomaly(std::string_view series, int64_t now_ns);

  Status Cancel(const std::string& workflow, int64_t now_ns);
  // Another host owns the workflow now (mesh failover, docs/MESH.md "Replication and
  // failover"): the engine forgets it without recording an end. Its live attempts come back
  // as kCancel actions (their ends are then unknown here and ignored) and their grants are
  // released. NotFound for a workflow id it does not run.
  Result<std::vector<Action>> Drop(const std::string& workflow_id, const std::string& reason);
  // True when the engine runs (or ran) the workflow with this id.
  bool Has(const std::string& workflow_id) const;
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

  // The stages predicted to become ready (pre-warming, prewarm.h): each not yet planned
  // stage of a running workflow whose needs are all planned (running, merging or done), at
  // the time the last of them is predicted to finish (a need with shards waiting: now plus
  // its predicted shard time; else its running attempts' starts plus that time, which is
  // in the past for one that overran), with its backend, its resources as the shape and its
  // shard count when the file gives it (else 1).
  std::vector<UpcomingStart> Upcoming(int64_t now_ns) const;

  // Placement on other hosts (docs/MESH.md, "Running shards on other hosts").
  // The room the live peers show (one entry per peer, from their gossiped headroom), for
  // the next Ticks: a pending shard whose min does not fit this host's free room now but
  // whose want fits a peer's room there becomes a kPlace action (its attempt is live, with
  // no local grant). Empty (the default): nothing is placed elsewhere.
  void SetRemoteRoom(std::vector<Resources> room);
  // The mesh leased host `host` a grant for a kPlace attempt: recorded as running there,
  // under `lease_id` (kept with the attempt, so that a restart resumes the lease).
  // NotFound for an attempt that is not a live placed one.
  Status RemoteAwarded(const std::string& attempt_id, const std::string& host,
                       const Resources& grant, int64_t now_ns, const std::string& lease_id = "");
  // A placed attempt not yet awarded is taken back (room freed here first): it ends
  // cancelled and its shard is pending again at once, without spending a retry. NotFound
  // for an attempt that is not placed, FailedPrecondition for one already awarded.
  Status Unplace(const std::string& attempt_id, int64_t now_ns);
  // True for a live attempt that was placed on another host (kPlace).
  bool IsRemote(const std::string& attempt_id) const;
  // The ledger the mesh's bidder grants leases from (one capacity for local and remote
  // work). Only on the engine's thread.
  Ledger& mutable_ledger();
  // A change someone other than the engine (the mesh's bidder, making room for a remote
  // request) applied to the ledger: the action that carries it out on a local attempt (a
  // resize; a pre-emption is a cancel whose end re-queues the shard), nullopt when the
  // holder is not a live local attempt.
  std::optional<Action> LedgerChanged(const GrantChange& change, int64_t now_ns);
  // Changes the engine applied to grants it does not own (mesh leases in its ledger: its
  // admissions shrink or pre-empt them, its grow-back grows them) since the last call, for
  // the bidder to tell their owners.
  std::vector<GrantChange> DrainForeignChanges();

  Changes DrainChanges();
  // What the engine decided on its own since the last call (a straggler split, ...), as
  // (workflow id, sentence) for the log.
  std::vector<std::pair<std::string, std::string>> DrainNotes();
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
