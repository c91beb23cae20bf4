// WorkflowStore: the workflow engine's durable state and history, in SQLite (WAL) under
// state_dir (DESIGN.md: "state before action").
//
// The executor writes every workflow, shard, shard attempt (with its grant) and stage result
// here before it acts on it, so that kill -9 at any point resumes with nothing lost and
// nothing merged twice: an attempt id is written before its task starts, and a shard's
// winner is recorded in the same transaction as the shard's state. Every finished attempt
// is also a history row (measured CPU time, peak memory, wall time, bytes read and written,
// exit status) that the predictive issue learns from.
//
// Schema 2 added history.cost, the events table and incremental vacuum; schema 3 the host
// of each attempt; schema 4 the replicas table; schema 5 (this build) the lease of each
// placed attempt and the leases table. An older file is migrated in
// place when opened (new columns take their defaults).
//
// Errors. A file that is not SQLite, or an SQLite database that is not augur's (no or
// another `augur_schema` row), is a Corruption naming the file; it is never replaced. A
// newer schema version than this build knows is FailedPrecondition. I/O errors (a full
// disk) are IOError naming the file and the statement's purpose; the engine turns them into
// an error on the workflow concerned, never a crash.
//
// Thread safety: one WorkflowStore per thread (the engine thread owns it). Readers in other
// processes may open the same file (WAL allows concurrent readers).
#ifndef AUGUR_WORKFLOW_STORE_H_
#define AUGUR_WORKFLOW_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "augur/status.h"
#include "workflow/resources.h"

namespace augur::workflow {

// NOTE: the string values of these enums are stored in the database; do not rename them.
enum class WorkflowState { kRunning, kSucceeded, kFailed, kCancelled };
enum class ShardState { kPending, kRunning, kSucceeded, kFailed, kCancelled };
// kReclaimed: the backend's class took the instance away (a spot instance), not a failure.
enum class AttemptState { kStarting, kRunning, kSucceeded, kFailed, kOom, kTimedOut,
                          kCancelled, kLost, kReclaimed };
std::string_view WorkflowStateName(WorkflowState s);  // "running", "succeeded", ...
std::string_view ShardStateName(ShardState s);
std::string_view AttemptStateName(AttemptState s);
std::optional<WorkflowState> WorkflowStateFromName(std::string_view s);
std::optional<ShardState> ShardStateFromName(std::string_view s);
std::optional<AttemptState> AttemptStateFromName(std::string_view s);

struct WorkflowRecord {
  std::string id;         // "checksum-1a2b3c", unique
  std::string name;       // the file's `workflow:`
  std::string spec_yaml;  // the file as submitted (re-parsed on recovery)
  std::string origin;     // the file's path as given to submit, for messages
  WorkflowState state = WorkflowState::kRunning;
  int64_t submitted_ns = 0;
  int64_t finished_ns = 0;  // 0 while running
  int64_t deadline_ns = 0;  // 0: none
  double boost = 0;         // priority points from `augurctl boost`
  int64_t boost_until_ns = 0;  // 0: for good
  double spent = 0;         // cost so far, in the backends' cost unit
  std::string error;        // why it failed, "" otherwise
};

struct ShardRecord {
  std::string workflow_id;
  std::string stage;
  uint32_t index = 0;      // merge order within the stage
  std::string shard_id;    // "3", "3.1" after a split
  uint64_t begin = 0;      // range shards: [begin, end)
  uint64_t end = 0;
  std::vector<std::string> items;  // item shards
  ShardState state = ShardState::kPending;
  uint32_t attempts = 0;   // started so far
  Resources want;          // the next attempt's (after grow_memory/grow_cpu)
  Resources min;
  int64_t not_before_ns = 0;  // retry backoff: not started before this
  std::string winner;      // the winning attempt id once succeeded
  std::string output_path; // the winner's stdout file
};

struct AttemptRecord {
  std::string attempt_id;  // "<workflow>/<stage>/<shard_id>#<n>", unique
  std::string workflow_id;
  std::string stage;
  uint32_t shard_index = 0;
  uint32_t attempt = 1;
  std::string backend;     // "process"
  std::string instance;    // backend handle, "" until provisioned
  std::string invocation;  // backend handle, "" until started
  // The backend's cost class it runs on ("": the default, or none), so that a re-attached
  // attempt is charged at its own class after a restart.
  std::string resource_class;
  Resources grant;         // what the ledger granted (and the backend gave)
  AttemptState state = AttemptState::kStarting;
  int64_t started_ns = 0;
  int64_t finished_ns = 0;
  int32_t exit_code = 0;
  int32_t term_signal = 0;
  double cpu_seconds = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  std::string output_path;  // its stdout
  std::string error;        // why it failed
  // The host it runs on: this host's name for a local attempt; for a shard placed on
  // another host through the mesh, "" until the award and then that host's name.
  std::string host;
  // A placed attempt's lease on `host` (mesh::LeaseId: "<owner>/<request id>"), "" for a
  // local one: with it a restarted owner resumes the lease instead of re-running the shard.
  std::string lease_id;
};

// A finished attempt as history shows it (`augurctl history`): the facts the predictive
// allocator learns from.
struct HistoryRecord {
  std::string attempt_id;
  std::string workflow_id;
  std::string workflow_name;
  std::string stage;
  uint32_t shard_index = 0;
  uint64_t range_begin = 0, range_end = 0;
  uint32_t items = 0;
  AttemptState state = AttemptState::kSucceeded;
  int32_t exit_code = 0;
  int64_t started_ns = 0;
  double wall_seconds = 0;
  double cpu_seconds = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  Resources grant;
  double cost = 0;  // in the backends' cost unit; 0 when the backend reports none
  std::string host;  // where it ran (AttemptRecord::host)
};

// A demand event (`augurctl event`): NAME says that about `expected` submissions of
// `workflow` are coming at `at_ns`. The demand model (demand.h) adds it to its forecast.
struct EventRecord {
  std::string name;      // unique: a second Put of the same name replaces the first
  std::string workflow;  // a workflow name
  double expected = 0;   // submissions
  int64_t at_ns = 0;
  int64_t created_ns = 0;
};

// A lease this host granted another host's shard (docs/MESH.md, "Running shards on other
// hosts"), kept so that a restart re-attaches its task instead of forgetting it: what the
// bidder holds (owner, request, grant) and what the placer knows of the task.
struct LeaseRecord {
  std::string lease_id;    // the ledger holder, "<owner>/<request id>"
  std::string owner;
  std::string request_id;
  std::string attempt_id;  // the owner's
  std::string backend;
  std::string cost_class;
  Resources want, min, grant;
  double score = 0;
  int64_t ttl_ns = 0;      // the lease's time: a restart gives the owner this long to renew
  bool started = false;    // its RunShard came (the task started, or waits for inputs)
  std::string dir;         // its directory under the placer's work_dir
  std::string output_path;
  std::string owner_output;
  std::string result;      // the encoded ShardResult once the task ended, resent until released
  // The task's backend handles, written by the executor when it runs it (SetLeaseHandles);
  // PutLease leaves them as they are.
  std::string instance, invocation;
};

// What one PruneHistory batch did.
struct PruneResult {
  size_t history_rows = 0;    // history rows deleted
  size_t workflows = 0;       // finished workflows deleted with everything they had
  size_t other_rows = 0;      // their shards, attempts and stage outputs, and old events
  size_t pages_released = 0;  // free pages given back to the file system
  std::vector<std::string> workflow_ids;  // the workflows deleted (their work dirs can go)
  bool more = false;                      // the batch hit its budget: call again
};

// A pre-warmed instance not yet given to a shard (warm_pool.h). Recorded before it is
// provisioned and deleted in the same transaction as the attempt that takes it, so that
// after a restart the instances that were warmed and never used are found and released.
struct WarmRecord {
  std::string name;  // the provision request's name ("warm-<hash>"), unique
  std::string backend;
  std::string instance;  // backend handle, "" until provisioned
  Resources shape;
  int64_t created_ns = 0;
};

class WorkflowStore {
 public:
  // Opens or creates the database at `path` (WAL, synchronous=NORMAL, a busy timeout),
  // creating the schema on first use. See the header comment for the errors.
  static Result<std::unique_ptr<WorkflowStore>> Open(const std::string& path);
  ~WorkflowStore();

  // Runs `body` in one transaction: committed when it returns OK, rolled back otherwise
  // (and its Status returned). Nested calls join the outer transaction.
  Status Transaction(const std::function<Status()>& body);

  // Inserts or replaces by primary key (id; workflow+stage+index; attempt_id).
  Status PutWorkflow(const WorkflowRecord& w);
  Status PutShard(const ShardRecord& s);
  Status PutAttempt(const AttemptRecord& a);
  // Records a stage's merged output (its file), once the stage completed.
  Status PutStageOutput(const std::string& workflow_id, const std::string& stage,
                        const std::string& output_path);
  // Appends a finished attempt to the history (idempotent on attempt_id: a second append of
  // the same attempt keeps the first row).
  Status AppendHistory(const HistoryRecord& h);
  // Inserts or replaces an event by name.
  Status PutEvent(const EventRecord& e);

  // Retention: deletes, in one transaction of at most about `max_rows` row deletions, the
  // oldest history rows that started before `cutoff_ns`, then the oldest workflows that
  // finished before it (not running ones) with their shards, attempts and stage outputs (a
  // workflow too big for one batch is deleted over several, its own row last), then events
  // whose time is before it. When many pages are free afterwards (a quarter of the file and
  // more than `max_rows` pages), up to `max_rows` of them are given back to the file system
  // (incremental vacuum; databases created before schema 2 only reuse free pages). Call
  // again while `more`; each call takes time bounded by `max_rows`, not by the backlog.
  Result<PruneResult> PruneHistory(int64_t cutoff_ns, size_t max_rows = 1000);

  Result<std::optional<WorkflowRecord>> GetWorkflow(const std::string& id) const;
  // All workflows, newest first (by submitted_ns, then id descending); only those still
  // running when `running_only`.
  Result<std::vector<WorkflowRecord>> Workflows(bool running_only) const;
  Result<std::vector<ShardRecord>> Shards(const std::string& workflow_id) const;
  Result<std::vector<AttemptRecord>> Attempts(const std::string& workflow_id) const;
  Result<std::optional<std::string>> StageOutput(const std::string& workflow_id,
                                                 const std::string& stage) const;
  // History, newest first; of one workflow when `workflow_id` is set (by id or name). At
  // most `limit` rows; 0 means all.
  Result<std::vector<HistoryRecord>> History(const std::optional<std::string>& workflow,
                                             size_t limit) const;
  // The workflows submitted at or after `since_ns`, newest first, at most `limit` (0: all),
  // with only id, name and submitted_ns read: what the demand model and pre-warming's
  // "B follows A" learn from.
  Result<std::vector<WorkflowRecord>> Submissions(int64_t since_ns, size_t limit = 0) const;
  // The newest workflow of this name, if any.
  Result<std::optional<WorkflowRecord>> LatestNamed(const std::string& name) const;
  // Events, by time then name; of one workflow name when `workflow` is not "".
  Result<std::vector<EventRecord>> Events(const std::string& workflow) const;

  // The warm pool's instances (WarmRecord): insert or replace by name, delete (deleting an
  // unknown name is OK), and all of them by name.
  Status PutWarm(const WarmRecord& w);
  Status DeleteWarm(const std::string& name);
  Result<std::vector<WarmRecord>> Warm() const;

  // Replicated workflows (the mesh's, docs/MESH.md "Replication and failover"): an opaque
  // snapshot per replica id, inserted or replaced; deleting an unknown id is OK.
  Status PutReplica(const std::string& id, std::string_view snapshot);
  Status DeleteReplica(const std::string& id);
  Result<std::vector<std::pair<std::string, std::string>>> Replicas() const;
  // Leases granted to other hosts (LeaseRecord): insert or replace by lease id (keeping the
  // task handles), the task handles alone, delete (an unknown id is OK), all by lease id.
  Status PutLease(const LeaseRecord& l);
  Status SetLeaseHandles(const std::string& lease_id, const std::string& instance,
                         const std::string& invocation);
  Status DeleteLease(const std::string& lease_id);
  Result<std::vector<LeaseRecord>> Leases() const;
  // Forgets a workflow's rows (workflow, shards, attempts, stage outputs; its history stays):
  // another host owns it now.
  Status DeleteWorkflow(const std::string& id);

  const std::string& path() const { return path_; }

 private:
  // The first row of `sql` (kWorkflowColumns, one text parameter `key`), if any.
  Result<std::optional<WorkflowRecord>> OneWorkflow(const std::string& sql,
                                                    const std::string& key,
                                                    std::string what) const;
  struct Impl;
  WorkflowStore(std::unique_ptr<Impl> impl, std::string path);
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_STORE_H_
