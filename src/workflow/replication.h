// Replication: how the executor replicates the workflows it owns to other hosts, and takes
// over theirs when their owner dies (docs/MESH.md, "Replication and failover"). The executor
// (executor.h) knows nothing of the mesh; the mesh (src/mesh/workflow_replication.h)
// implements Replication and calls the executor back through ReplicationHost, as Placer and
// PlacerHost do (placer.h), so the library dependency stays one way.
//
// Thread safety: every call in both directions happens on the executor's engine thread.
#ifndef AUGUR_WORKFLOW_REPLICATION_H_
#define AUGUR_WORKFLOW_REPLICATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "augur/status.h"
#include "workflow/engine.h"
#include "workflow/store.h"

namespace augur::workflow {

// A workflow this host owns from now on, rebuilt from its replicated log: the records to
// store and hand to Engine::Restore (no attempt runs: those without a result are lost and
// their shards pending), and the outputs the log carried, to write first.
struct AdoptedWorkflow {
  WorkflowRecord workflow;
  std::vector<ShardRecord> shards;
  std::map<std::string, std::string> stage_outputs;           // stage -> its file
  std::vector<std::pair<std::string, std::string>> files;     // (path, contents)
};

// What `augurctl status`, `result` and `history` ask of the host that owns a workflow.
enum class QueryKind : uint32_t { kStatus = 0, kResult = 1, kHistory = 2 };

// The answer of another host: `body` is the status or history JSON (annotated with owner and
// answered_by) or a stage's merged output; `owner` the owner the answering host knows.
struct RemoteAnswer {
  std::string body;
  std::string owner, answered_by;
  bool from_owner = false;
};

// What the executor offers the replication.
class ReplicationHost {
 public:
  virtual ~ReplicationHost() = default;
  // The store: replicas' snapshots are persisted in it (WorkflowStore::PutReplica).
  virtual WorkflowStore& workflow_store() = 0;
  // Where workflows' directories are (EngineOptions::work_root).
  virtual const std::string& work_root() const = 0;
  // This host owns `w` now (a takeover, or its own again after a restart): its outputs are
  // written, its records stored, and the engine continues it (Engine::Restore). A workflow
  // the engine runs already is kept as it is.
  virtual Status Adopt(const AdoptedWorkflow& w, int64_t now_ns) = 0;
  // Another host (`owner`) owns the workflow now: the engine stops acting for it (its
  // attempts are cancelled, no merge follows) and the store forgets it.
  virtual void Release(const std::string& workflow_id, const std::string& owner,
                       int64_t now_ns) = 0;
  // The engine's status JSON of a workflow it runs (by id or name); NotFound otherwise.
  virtual Result<std::string> LocalStatus(const std::string& workflow, bool explain) = 0;
  // A stage's merged output (`stage` "" the last) or the history JSON (newest `limit`) of a
  // workflow the engine runs; NotFound otherwise.
  virtual Result<std::string> LocalQuery(QueryKind kind, const std::string& workflow,
                                         const std::string& stage, size_t limit) = 0;
};

// What the executor calls.
class Replication {
 public:
  virtual ~Replication() = default;
  // Once, from Executor::Start, before any other call: loads the persisted replicas and
  // returns the ids of the workflows they hold. The executor does not restore those from
  // its own rows: they come back through Adopt when this host owns them.
  virtual Result<std::set<std::string>> Bind(ReplicationHost* host, int64_t now_ns) = 0;
  // What the executor has just written to its store (state before action): the owner
  // replicates it (a new workflow, shards planned, attempts started and ended, stages
  // merged, the workflow finished).
  virtual void Recorded(const Changes& changes, int64_t now_ns) = 0;
  // True for the mesh channels it reads (OnMessage). Any thread (the mesh's asks): reads no
  // state.
  virtual bool Handles(uint32_t channel) const = 0;
  virtual void OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                         int64_t now_ns) = 0;
  // Timers and membership; call at NextDeadline() and at every engine tick.
  virtual void Tick(int64_t now_ns) = 0;
  virtual std::optional<int64_t> NextDeadline() const = 0;
  // `augurctl status` of a workflow the engine does not run here: answered from this host's
  // replica or by the owner over the mesh. `done` is called once, on the engine thread, now
  // or later (NotFound when no host knows it).
  virtual void RemoteStatus(const std::string& workflow, bool explain,
                      std::function<void(Result<std::string>)> done, int64_t now_ns) = 0;
  // `augurctl result` or `history` of a workflow the engine does not run here: asked of the
  // owner over the mesh, else answered from a replica (a result only when its copy carries
  // the output). `done` once, on the engine thread; ResourceExhausted naming the size and the
  // owner for a result too big for one message, NotFound when no host knows it.
  virtual void RemoteQuery(QueryKind kind, const std::string& workflow, const std::string& stage,
                           size_t limit, std::function<void(Result<RemoteAnswer>)> done,
                           int64_t now_ns) = 0;
  // This host's name in the mesh (status says which host owns a workflow).
  virtual const std::string& self() const = 0;
  // Counters as a JSON object.
  virtual std::string StatsJson() const = 0;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_REPLICATION_H_
