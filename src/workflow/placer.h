// Placer: how the executor hands shards to other hosts and runs shards other hosts award to
// it (docs/MESH.md, "Running shards on other hosts"). The executor (executor.h) knows
// nothing of the mesh; the mesh (src/mesh/mesh_placer.h) implements Placer and calls the
// executor back through PlacerHost. The split keeps the library dependency one way (the
// mesh links the workflow engine, never the reverse).
//
// Thread safety: every call in both directions happens on the executor's engine thread.
#ifndef AUGUR_WORKFLOW_PLACER_H_
#define AUGUR_WORKFLOW_PLACER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "workflow/engine.h"
#include "workflow/ledger.h"
#include "workflow/resources.h"

namespace augur::workflow {

// A shard another host awarded this one a lease for, to run here under that lease.
struct LeasedTask {
  std::string lease_id;    // the ledger holder of the lease (mesh::LeaseId)
  std::string owner;       // the host that owns its workflow
  std::string attempt_id;  // the owner's attempt id
  std::string backend;
  Resources grant;
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE
  std::string workdir;           // a directory of this host's (the placer made it)
  std::string output_path;       // where its stdout goes here
  int priority = 5;
  uint64_t range_begin = 0, range_end = 0;
};

// What the executor offers the placer.
class PlacerHost {
 public:
  virtual ~PlacerHost() = default;
  // The engine's ledger: leases are granted from it, so local and remote work share one
  // capacity.
  virtual Ledger& ledger() = 0;
  // Owner side: a placed attempt was awarded a lease (`lease_id`) on `host`. Its record is
  // written before the placer's next Tick (which sends its RunShard), with every other
  // award since the last.
  virtual void Awarded(const std::string& attempt_id, const std::string& host,
                       const Resources& grant, const std::string& lease_id, int64_t now_ns) = 0;
  // Owner side: a placed attempt ended (its result came back, or its lease was lost:
  // outcome kLost). `output` is its stdout, written where the merge expects it before the
  // engine hears of the end. Ends of attempts already ended are ignored.
  virtual void RemoteEnded(const std::string& attempt_id, const AttemptOutcome& outcome,
                           const std::string& output, int64_t now_ns) = 0;
  // Owner side: as RemoteEnded, with the output in the file `output_file` (it came by
  // transfer): the file is moved where the merge expects it (or removed, when the attempt
  // has already ended).
  virtual void RemoteEndedWithFile(const std::string& attempt_id, const AttemptOutcome& outcome,
                                   const std::string& output_file, int64_t now_ns) = 0;
  // Owner side: a placed attempt that no host has taken yet is taken back, because room
  // freed here (Engine::Unplace); its shard starts here instead.
  virtual void Unplaced(const std::string& attempt_id, int64_t now_ns) = 0;
  // Candidate side: run a leased task through this host's backend, exactly like a local
  // attempt; its end comes back through Placer::LeasedEnded. An error: it cannot start. The
  // start itself completes later, off the engine thread: one that fails then ends through
  // LeasedEnded as kLost, with an empty output and the reason.
  virtual Status RunLeased(const LeasedTask& task) = 0;
  // Candidate side: stop the leased task if it runs (its lease was released or reclaimed).
  virtual void StopLeased(const std::string& lease_id, const std::string& reason) = 0;
  // Candidate side: a leased task's grant changed (its lease was shrunk for higher-score
  // work, or grew back): its instance is resized live, as a local attempt's is.
  virtual void ResizeLeased(const std::string& lease_id, const Resources& to) = 0;
  // Candidate side: the bidder shrank or pre-empted local attempts to make room for a
  // remote request (already applied to the ledger): resize or stop them.
  virtual void LedgerChanged(const std::vector<GrantChange>& changes, int64_t now_ns) = 0;

  // Re-attaching after a restart (docs/MESH.md, "Running shards on other hosts").
  // The store the leases granted here are kept in (WorkflowStore::PutLease); the executor
  // writes a leased task's backend handles there when it runs it.
  virtual WorkflowStore& workflow_store() = 0;
  // Candidate side, at start: a leased task that ran before the restart is polled again
  // through its backend (its end comes back through Placer::LeasedEnded). False when it
  // cannot be (the backend is not up, or the task never started: `invocation` empty); its
  // instance, if any, is released then.
  virtual bool ReattachLeased(const std::string& lease_id, const std::string& backend,
                              const std::string& instance, const std::string& invocation,
                              const std::string& output_path) = 0;
};

// What the executor calls.
class Placer {
 public:
  virtual ~Placer() = default;
  // Once, from Executor::Start, before any other call.
  virtual void Bind(PlacerHost* host) = 0;
  // The room each live peer shows for shards of about `predicted_s` seconds (Engine::
  // SetRemoteRoom); empty when no peer has any.
  virtual std::vector<Resources> PeerRoom(double predicted_s) const = 0;
  // Owner side: place a kPlace action's attempt.
  virtual void Place(const Action& place, int64_t now_ns) = 0;
  // Owner side, at start: a placed attempt that ran on attempt.host under attempt.lease_id
  // when this host stopped. True when the placer takes it up again (renews the lease, asks
  // the host whether the task still runs; the end comes through RemoteEnded as usual, kLost
  // when the lease is gone); false when it cannot (no lease recorded).
  virtual bool Resume(const AttemptRecord& /*attempt*/, int64_t /*now_ns*/) { return false; }
  // Candidate side, at start (after the engine restored its own attempts): the leases
  // granted here before a restart are held again and their tasks re-attached.
  virtual void Recover(int64_t /*now_ns*/) {}
  // Owner side: stop a placed attempt (cancelled, timed out, superseded). True when the
  // attempt was one of the placer's; its end then comes through RemoteEnded.
  virtual bool Cancel(const std::string& attempt_id, const std::string& reason,
                      int64_t now_ns) = 0;
  // Candidate side: a leased task ended (its stdout is in the task's output_path).
  virtual void LeasedEnded(const std::string& lease_id, const AttemptOutcome& outcome,
                           int64_t now_ns) = 0;
  // The engine changed grants it does not own (Engine::DrainForeignChanges).
  virtual void ForeignChanges(const std::vector<GrantChange>& changes, int64_t now_ns) = 0;
  // A message from peer `from` on mesh channel `channel`; `received_ns` is when the mesh
  // thread handed it to the executor (<= now_ns: the difference is its wait on this thread).
  virtual void OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                         int64_t now_ns, int64_t received_ns) = 0;
  // Called on the mesh's thread with each message before it is queued for OnMessage: a
  // placer that acts on it there, without waiting for the engine thread, returns true. The
  // message is then not queued; TakeUpReceipts is called on the engine thread soon after
  // (ahead of other queued work, as Prompt's messages are) for what must happen there. It
  // must never wait for the engine thread; `now_ns` is on the executor's clock.
  virtual bool OnReceipt(const std::string& /*from*/, uint32_t /*channel*/,
                         const std::string& /*payload*/, int64_t /*now_ns*/) {
    return false;
  }
  // Engine thread: finishes what OnReceipt did on the mesh's thread.
  virtual void TakeUpReceipts(int64_t /*now_ns*/) {}
  // Whether messages on `channel` are handled ahead of the executor's other queued work and
  // between its queued messages (negotiation: its offers and holds are short-lived). Only
  // for messages that nothing queued before them on the other channels must precede. Called
  // on the mesh's thread: it must read no state of the placer.
  virtual bool Prompt(uint32_t /*channel*/) const { return false; }
  // Membership declared `host` dead or gone.
  virtual void PeerDown(const std::string& host, int64_t now_ns) = 0;
  // The engine's Tick may have changed the ledger (admitted or resized local work).
  virtual void RoomChanged() {}
  // Timers; call at NextDeadline() (and after the engine freed room).
  virtual void Tick(int64_t now_ns) = 0;
  virtual std::optional<int64_t> NextDeadline() const = 0;
  // Counters as a JSON object, for status and tests.
  virtual std::string StatsJson() const = 0;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_PLACER_H_
