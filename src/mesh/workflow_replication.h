// WorkflowReplication: the executor's Replication (workflow/replication.h) over the mesh
// (docs/MESH.md, "Replication and failover"). It runs the Replicator (replication.h) for the
// workflows this host owns or holds replicas of:
//   - the executor's records (Recorded) become log records (workflow_log.h) of the workflows
//     this host owns: Create at submission, then shards planned, attempts started and ended
//     (small outputs carried), stages merged, the workflow finished;
//   - the replicator's messages travel on Channel::kReplication; its membership is the live
//     members (alive or suspect) at every Tick;
//   - its state is persisted in the store (WorkflowStore::PutReplica) before any message it
//     produced is sent, and loaded again at start;
//   - kBecameOwner: the shard outputs the log does not carry are fetched from the hosts that
//     ran them (fetch_output; each that fails is run again), then the workflow is rebuilt
//     from the log (workflow_log.h Rebuild) and the executor adopts it (Engine::Restore);
//     kLostOwnership: the executor releases it; kDropped: the persisted copy goes;
//   - a finished workflow's copy is dropped retention_ns after it finished (owned or not),
//     a bounded batch at a time; when it finishes, the hosts that keep its outputs are told.
// Status, result and history of a workflow the engine here does not run (`augurctl status`,
// `result`, `history` on any host) are asked of the owner over Channel::kStatus, else
// answered from this host's replica; a host holding nothing asks every live host. An answer
// too big for one status message (up to kMaxRemoteAnswerBytes) follows its reply as a
// chunked, checksummed transfer (transfer.h) on the same channel; a larger one is refused,
// naming its size and the host to ask.
//
// Thread safety: one thread (the executor's engine thread), except Stats(), which any thread
// may call.
#ifndef AUGUR_MESH_WORKFLOW_REPLICATION_H_
#define AUGUR_MESH_WORKFLOW_REPLICATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mesh/log_rate_limiter.h"
#include "mesh/mesh_link.h"
#include "mesh/replication.h"
#include "mesh/status_query.pb.h"
#include "mesh/transfer.h"
#include "workflow/replication.h"

namespace augur::mesh {

inline constexpr uint32_t kStatusVersion = 1;
// The largest status, result or history answer sent to another host (by transfer when over
// one message): what the control socket carries to augurctl (4 MiB), so no answer that
// augurctl could show is refused.
inline constexpr uint64_t kMaxRemoteAnswerBytes = 4ULL << 20;
// What a StatusMessage adds around an encoded transfer message, at most (tested).
inline constexpr size_t kStatusTransferOverheadBytes = 16;

// A status-channel message from a peer, checked: size, version, a body, a workflow of 1 to
// 256 printable characters, an owner that is a host name, JSON at most max_bytes.
Result<wire::StatusMessage> DecodeStatusMessage(std::string_view bytes, size_t max_bytes);
Result<std::string> EncodeStatusMessage(wire::StatusMessage msg, size_t max_bytes);

struct WorkflowReplicationOptions {
  ReplicationOptions replication;  // replicas: mesh.replicas
  // A status query waits this long for the owner (then a replica's answer, or NotFound).
  int64_t status_timeout_ns = 2'000'000'000;
  // An answer that comes by transfer: how long the asker waits for it from the reply that
  // announced it (within the executor's 15 s for the whole query).
  int64_t answer_timeout_ns = 10'000'000'000;
  // The live members' names (alive or suspect; this host may be among them). REQUIRED;
  // called on the engine thread at every Tick.
  std::function<std::vector<std::string>()> live;
  // Fetches a shard output the log does not carry from the host that ran it, into `dest`
  // (MeshPlacer::FetchOutput; `done` once, on the engine thread). Unset: such shards run
  // again on a new owner.
  std::function<void(const std::string& host, const std::string& attempt_id, uint64_t size,
                     const std::string& dest, std::function<void(Status)> done, int64_t now_ns)>
      fetch_output;
  // A workflow this host owns finished: the hosts that may keep its outputs drop them
  // (MeshPlacer::ForgetOutputs). May be unset.
  std::function<void(const std::string& workflow_id, const std::vector<std::string>& hosts)>
      forget_outputs;
  // A finished workflow's copy is dropped this long after it finished (the owner's clock in
  // its log); 0 keeps copies until their owner releases them. augurd passes
  // workflows.history_retention. Checked every prune_interval_ns, at most prune_batch a time.
  int64_t retention_ns = 0;
  int64_t prune_interval_ns = 60'000'000'000;
  size_t prune_batch = 100;
};

struct WorkflowReplicationStats {
  ReplicationStats replication;
  uint64_t created = 0;          // workflows submitted here and replicated
  uint64_t adopted = 0;          // taken over (rebuilt from the log and continued)
  uint64_t released = 0;         // handed to another owner
  uint64_t append_errors = 0;    // records the replicator refused (logged)
  uint64_t outputs_carried = 0;  // shard and stage outputs carried in the log
  uint64_t outputs_too_big = 0;  // successes whose output was not carried (fetched on takeover)
  uint64_t outputs_fetched = 0;  // taking over: fetched from the host that ran the shard
  uint64_t outputs_rerun = 0;    // taking over: not fetched (the reason is logged): run again
  uint64_t pruned = 0;           // copies of finished workflows dropped by retention
  uint64_t malformed = 0;        // replication or status messages that did not decode
  uint64_t persist_errors = 0;   // snapshots the store refused
  uint64_t status_queries = 0;   // asked of other hosts
  uint64_t status_answers = 0;   // queries of other hosts answered here
  uint64_t status_timeouts = 0;  // queries that ran out of time
  uint64_t answers_sent_by_transfer = 0;      // answers over one message sent by transfer
  uint64_t answers_received_by_transfer = 0;  // such answers received whole
  uint64_t answer_transfers_failed = 0;       // either side: the transfer did not complete
  uint64_t answers_refused = 0;               // over kMaxRemoteAnswerBytes: refused
  uint64_t held = 0;             // workflows held now (owned or replicas)
  uint64_t owned = 0;            // of those, owned
};

class WorkflowReplication : public workflow::Replication {
 public:
  // `link` must outlive this.
  WorkflowReplication(MeshLink* link, WorkflowReplicationOptions options);

  Result<std::set<std::string>> Bind(workflow::ReplicationHost* host, int64_t now_ns) override;
  void Recorded(const workflow::Changes& changes, int64_t now_ns) override;
  bool Handles(uint32_t channel) const override;
  void OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                 int64_t now_ns) override;
  void Tick(int64_t now_ns) override;
  std::optional<int64_t> NextDeadline() const override;
  void RemoteStatus(const std::string& workflow, bool explain,
                    std::function<void(Result<std::string>)> done, int64_t now_ns) override;
  void RemoteQuery(workflow::QueryKind kind, const std::string& workflow, const std::string& stage,
                   size_t limit, std::function<void(Result<workflow::RemoteAnswer>)> done,
                   int64_t now_ns) override;
  const std::string& self() const override { return link_->self(); }
  std::string StatsJson() const override;

  // Any thread.
  WorkflowReplicationStats Stats() const;
  // The replicator (tests).
  const Replicator& replicator() const { return replicator_; }

 private:
  // What this host has appended of a workflow it owns (so each engine record is logged once).
  struct Logged {
    std::string rid;                                     // its replica id
    std::set<std::pair<std::string, uint32_t>> shards;  // (stage, index)
    std::set<std::string> started, ended;                // attempt ids
    std::set<std::string> merged;                        // stages
    bool finished = false;
  };
  // A workflow this host owns whose uncarried outputs are being fetched before it adopts it.
  struct Adopting {
    uint64_t generation = 0;
    size_t outstanding = 0;
    std::map<std::string, std::string> fetched;  // attempt id -> file
  };
  struct Pending {
    std::function<void(Result<workflow::RemoteAnswer>)> done;
    std::optional<Result<workflow::RemoteAnswer>> fallback;  // a replica's answer
    std::string workflow;
    size_t outstanding = 0;
    int64_t deadline_ns = 0;
  };

  // Tells the replicator the live members when they changed.
  void RefreshMembers(int64_t now, ReplicationOutput* out);
  // Persists dirty snapshots, sends the messages, then acts on the events.
  void Flush(ReplicationOutput& out, int64_t now);
  void Append(const std::string& rid, wire::StateRecord r, int64_t now, ReplicationOutput* out);
  Logged LoggedOf(const WorkflowReplica& w) const;
  // What is logged of a workflow (by engine id) this host owns; null when it does not own it.
  Logged* Owned(const std::string& engine_id);
  // The replica id this host holds for a workflow id or name ("" if none).
  std::string HeldId(const std::string& workflow) const;
  std::string ReplicaStatus(const std::string& rid) const;
  // What this host's copy says for a query (status, a carried stage output, the attempts'
  // results as history rows).
  Result<workflow::RemoteAnswer> ReplicaAnswer(const std::string& rid, workflow::QueryKind kind,
                                               const std::string& stage, size_t limit) const;
  void Ask(workflow::QueryKind kind, const std::string& workflow, const std::string& stage,
           size_t limit, bool explain, std::function<void(Result<workflow::RemoteAnswer>)> done,
           int64_t now);
  void OnStatus(const std::string& from, const wire::StatusMessage& m, int64_t now);
  void SendStatus(const std::string& to, wire::StatusMessage m);
  void Answer(uint64_t id, Result<workflow::RemoteAnswer> r);
  // A host's answer to query `id` (from its reply, or its transfer once complete).
  void Replied(uint64_t id, bool found, bool from_owner, Result<workflow::RemoteAnswer> got);
  // A transfer message of an answer (chunks here as the asker, acks as the answerer).
  void OnAnswerTransfer(const std::string& from, const std::string& bytes, int64_t now);
  // Sends a transfer core's messages (each in a StatusMessage) and acts on its events.
  void HandleAnswerTransfer(TransferOutput& out, bool sender, int64_t now);
  void Malformed(const std::string& from, const Status& why, int64_t now);
  // kBecameOwner: fetches what the log does not carry, then FinishAdopt.
  void StartAdopt(const std::string& rid, const Epoch& epoch, int64_t now);
  void FinishAdopt(const std::string& rid, int64_t now);
  // Retention of finished workflows' copies.
  void Prune(int64_t now);
  void Publish();

  MeshLink* link_;
  WorkflowReplicationOptions o_;
  Replicator replicator_;
  workflow::ReplicationHost* host_ = nullptr;
  std::vector<std::string> live_;
  int64_t bind_ns_ = 0;
  std::map<std::string, Logged> logged_;  // by engine id, for workflows owned here
  std::map<uint64_t, Pending> pending_;   // status queries by id
  std::map<std::string, Adopting> adopting_;  // by replica id
  uint64_t adopt_generation_ = 0;
  int64_t now_ns_ = 0;  // the latest clock a call brought (for fetches that end later)
  int64_t next_prune_ns_ = 0;
  uint64_t next_query_ = 1;
  // Answers too big for one message (docs/MESH.md, "Replication and failover").
  struct AnswerIn {
    uint64_t query_id = 0;
    uint64_t size = 0;
    bool from_owner = false;
    std::string owner;
    std::string body;  // the bytes so far, in order
  };
  using TransferKey = std::pair<std::string, std::string>;  // (answering host, transfer id)
  std::map<TransferKey, AnswerIn> answers_in_;
  TransferSender answer_sender_;
  TransferReceiver answer_receiver_;
  LogRateLimiter log_limit_{10'000'000'000};
  WorkflowReplicationStats stats_;
  mutable std::mutex stats_mu_;
  WorkflowReplicationStats published_;  // guarded by stats_mu_
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_WORKFLOW_REPLICATION_H_
