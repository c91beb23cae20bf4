// Executor: the one part of the workflow engine that does I/O. It owns the Engine (pure),
// the WorkflowStore (SQLite) and the engine thread, and drives the provisioning backends.
//
// Every 100 ms (and at once when a request arrives) the engine thread:
//   1. answers queued requests (submit, status, result, cancel, boost, history);
//   2. polls running invocations (Backend::Poll without waiting) and reports their ends;
//   3. runs Engine::Tick;
//   4. writes everything that changed to the store in one transaction (state before
//      action), and only then
//   5. acts: hands each attempt to start to the start pool (start_pool.h), which provisions
//      an instance (a cgroup for the process backend), or uses a pre-warmed one the engine
//      thread took (warm_pool.h), and runs the task in it with its invocation metadata; it
//      resizes grants live, cancels, merges;
//   6. pre-warms: the warm pool acts on Engine::Upcoming() and the cross-workflow
//      predictions (warm_pool.h).
// A crash between 4 and 5 loses nothing: on the next start the running workflows are
// restored from the store, attempts that were running are re-attached through the backend
// (whose plugin host recovered its handles) or, when gone, re-run; merging is idempotent.
// A crash while a start is in flight is a crash before it: its attempt is recorded as
// starting, with no task, and runs again (its instance, when one was made, is the backend's
// to reclaim by name, as before).
//
// Threads: the engine thread alone touches the Engine, the store and the task map, and makes
// the backends' calls other than starts; requests from the control socket are posted to it
// and wait for its answer. The sampling loop of augurd never waits on it. Starts (Provision
// and Run of an attempt's or a leased task's, 53-103 ms each on a loaded 2-core host) run on
// the start pool's `start_threads` workers, so that negotiation messages, polls and requests
// do not wait behind them; a completed start comes back through the engine thread's queue
// and is applied there: the attempt is recorded with its task's handles (state before the
// next action on it) and polled from then on, or, when it did not start, reported lost as
// before. A cancel or a resize that comes for an attempt still starting (a timeout, a
// cancelled workflow, a pre-emption, a boost's regrant, the workflow going to another host)
// is applied as soon as its start completes. Stopping waits for the starts running (each
// bounded by the backend's call deadline), records them and leaves their tasks running; the
// starts not begun are dropped and run again at the next start (leased tasks are started
// first: their owners would otherwise run the shards again). Merge commands still start on
// the engine thread (one per stage).
//
// Every task carries its origin host (ExecutorOptions::host_name). When it ends, its history
// row gets the backend's final figures: CPU, peak memory, and the storage bytes it read and
// wrote as the backend measured them (0 where a backend cannot; docs/BACKENDS.md).
// Learning: every finished attempt teaches the ProfileBook (profile.h), every submission
// the DemandModel (demand.h), both fed from the store at start; provisioning plus starting a
// task teaches the backend's start-up time. Retention prunes the store in bounded batches
// (WorkflowStore::PruneHistory) between ticks.
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
#include "workflow/demand.h"
#include "workflow/engine.h"
#include "workflow/placer.h"
#include "workflow/profile.h"
#include "workflow/replication.h"
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

// This host's name (gethostname()); "" when it has none.
std::string LocalHostName();

struct ExecutorOptions {
  std::string state_dir;  // workflows.db and work/ live here
  EngineOptions engine;   // work_root is set from state_dir when empty
  uint64_t max_output_bytes = 1ULL << 30;  // per shard or stage output file
  std::chrono::milliseconds tick{100};
  // Backends whose cost classes (describe()) the engine charges shards at; read at start
  // and every cost_refresh after (a backend's prices may change).
  std::vector<std::string> backends;
  std::chrono::milliseconds cost_refresh{30'000};
  // The host that owns the workflows this executor runs, sent with every task as its origin
  // (plugin::InvocationMeta::origin_host). Every workflow is owned by the host it was
  // submitted to, so this host; the mesh will set its owner id here. At most 255 bytes of
  // UTF-8 without control characters (Start refuses others); "" for unknown.
  std::string host_name = LocalHostName();
  // History, finished workflows (with their work dirs) and events older than this are
  // pruned, a batch of kPruneBatch rows per tick while there is a backlog, else once a
  // minute; 0 keeps everything.
  std::chrono::milliseconds history_retention{180LL * 86'400'000};
  ProfileOptions profile;  // what is learned per stage (augurctl profile)
  DemandOptions demand;    // submissions per hour (utc_offset_s: the host's local time)
  // Pre-warming (off unless enabled). scratch_dir is set from state_dir when empty;
  // capacity from engine.capacity, keep_free to the room of two merges.
  WarmPoolOptions prewarm;
  // Placement on other hosts (docs/MESH.md, "Running shards on other hosts"): the mesh's
  // placer, called on the engine thread only. nullptr: every shard runs here.
  std::shared_ptr<Placer> placer;
  // Worker threads that start tasks (provision and run) off the engine thread
  // (start_pool.h); at least one.
  size_t start_threads = 2;
  // Replication of the workflows submitted here to other hosts, and failover (docs/MESH.md,
  // "Replication and failover"): the mesh's, called on the engine thread only. nullptr:
  // workflows live on this host alone.
  std::shared_ptr<Replication> replication;
};

// Rows deleted per retention batch: a few milliseconds of the engine thread.
inline constexpr size_t kPruneBatch = 1000;

// The backend of a given name, or nullptr when it is not enabled or not up.
using BackendLookup = std::function<plugin::Backend*(const std::string& name)>;
// What the host's other load is predicted to leave free per forecast horizon (lower edge),
// sorted by horizon; empty when not known.
using ForecastFree = std::function<std::vector<HorizonFree>()>;

class Executor {
 public:
  // Opens the store (errors name the file), restores running workflows, and starts the
  // engine thread. InvalidArgument for a host_name that cannot go to a plugin.
  static Result<std::unique_ptr<Executor>> Start(ExecutorOptions options, BackendLookup backends,
                                                 ForecastFree forecast = nullptr);
  // Stops the engine thread, after the starts in flight complete (not those not begun).
  // Running tasks are left running: the next start re-attaches.
  ~Executor();

  // Thread-safe; each waits for the engine thread's answer.
  Result<std::string> Submit(const std::string& yaml, const std::string& origin);
  // With replication, a workflow the engine here does not run is answered by the
  // replication (a replica here, or its owner over the mesh), each object naming its
  // "owner"; this waits at most a few seconds for that.
  Result<std::string> StatusJson(const std::string& workflow, bool explain);
  // A stage's merged output (default: the last stage in the file).
  // A workflow this host does not run is asked of its owner over the mesh (`remote`, when
  // given, says who answered).
  Result<std::string> Output(const std::string& workflow, const std::string& stage,
                             RemoteAnswer* remote = nullptr);
  Status Cancel(const std::string& workflow);
  Status Boost(const std::string& workflow, double points, std::chrono::milliseconds duration);
  // Of a workflow this host neither runs nor ran: its owner's (rows carry owner and
  // answered_by).
  Result<std::string> HistoryJson(const std::string& workflow, size_t limit,
                                  RemoteAnswer* remote = nullptr);
  // An anomaly event of the forecaster's detector on `series`; `cgroup` is the series'
  // cgroup label, "" for a host-wide series. A cgroup of a running shard's instance is that
  // shard's anomaly (Engine::ShardAnomaly); anything else is the host's
  // (Engine::HostAnomaly). Queued for the engine thread; does not wait.
  void Anomaly(const std::string& series, const std::string& cgroup);
  // What was learned about a workflow (by name, or the name of a workflow id), or one stage
  // of it, as JSON: per stage each quantity with its interval, sample count, size model and
  // source (or the fallback that applies), the next hour's demand and upcoming events, and
  // each backend's start-up time. NotFound for a workflow never seen here.
  Result<std::string> ProfileJson(const std::string& workflow, const std::string& stage);
  // Stores an event and tells the demand model at once. InvalidArgument for a bad name or
  // workflow name, an expected count outside 1..1000000, or a time over an hour in the past
  // or more than 366 days ahead.
  Status AddEvent(const std::string& name, const std::string& workflow, double expected,
                  int64_t at_ns);
  // Stored events (of one workflow name when not ""), by time, as a JSON array.
  Result<std::string> EventsJson(const std::string& workflow);
  // A mesh message from peer `from` (the transport's authenticated name) on `channel`, for
  // the replication when it reads that channel, else the placer; queued for the engine
  // thread (unless the placer acts on it here: Placer::OnReceipt), does not wait. Dropped
  // without either.
  void OnMeshMessage(const std::string& from, uint32_t channel, std::string payload);
  // Membership declared `host` dead or gone: its leases are lost and their shards placed
  // again. Queued; does not wait.
  void OnPeerDown(const std::string& host);
  // The placer's counters (Placer::StatsJson), "{}" without one; waits for the engine thread.
  std::string MeshStatsJson();
  // Pre-warming's counters; any thread, never waits on the engine thread.
  PrewarmStats prewarm_stats() const;

  struct Impl;

 private:
  explicit Executor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_EXECUTOR_H_
