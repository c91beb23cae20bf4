// Replication: a workflow's state replicated from its owner to r other hosts, and failover
// (docs/MESH.md, "Replication and failover").
//
// The state is an ordered log of records per workflow (StateRecord: submitted with its spec,
// an attempt started on a host with a lease, an attempt's result with its output's digest and
// transfer id, a stage merged, the workflow finished, an owner took over), numbered from 1.
//
// Who holds it. Every host orders the live members for a workflow by rendezvous hashing
// (rendezvous.h, ReplicaSet): the first should own it, the next r replicate it. The owner
// sends its appends to those r (Append, with the previous record's seq and epoch), resends
// from the replica's last acknowledgement until acknowledged, and catches up a replica that
// missed records or is new from where the two logs part (each side's LogSummary: the seq where
// each epoch's records begin). A record is committed once every replica of the current set
// holds it (an owner alone commits at once). A replica that leaves the set keeps its copy
// until the owner has caught up the new set and releases it.
//
// Epochs. Every message carries the sender's epoch for the workflow, (number, owner name),
// ordered by number then name, so two hosts that take over at once never share an epoch.
// A host never accepts a message of an epoch older than the highest it has accepted (the
// message is counted as stale and answered with Stale, which tells the sender the newer
// one); an owner that hears of a newer epoch steps down.
//
// Failover. When membership says this host should own a workflow it does not (the owner died,
// or this host came back), it takes over: it picks an epoch above every one it has seen, asks
// the holders (its view's replicas, the ones the last owner named, hosts that hinted, and that
// owner) what they hold (Probe; each promises to refuse older epochs from then on), waits for
// every one that membership calls live (a live holder may have the only copy), fetches the log
// that is furthest ahead (highest last epoch, then highest seq) where it is ahead of its own,
// appends a kTakeover record and carries on as owner (kBecameOwner). A host without a view
// yet takes over nothing. An owner keeps its workflow until a newer epoch fences it, so a
// workflow submitted on a host that is not first in its order is handed to that host by the
// same takeover. A replica whose owner is gone, or that its view leaves out of the set, tells
// the host that should own (Hint): that host may not hold the workflow yet, or releases the
// copy.
//
// Partitions. Each side may have an owner; when they meet, the newer epoch wins and the
// other's records past the point where the logs part are cut. Result records so cut are not
// lost: the host that cut them keeps them as orphans and sends them to the owner, which
// records those it does not have.
//
// Exactly once. The owner records a result only for an attempt id without one and a shard
// without a successful one (AppendResult's verdict says which, and counts the rest); a stage
// is merged once and a workflow finishes once. These hold across takeovers because the index
// is rebuilt from the log itself.
//
// Limits: a record of over kMaxRecordBytes is refused (a spec that big should move as a
// transfer); a host holds at most max_workflows logs (messages for more are counted and
// dropped).
//
// Pure: membership, messages, appends and a clock in; encoded messages and events out. The
// executor persists Snapshot(W) of each workflow in DrainDirty() (state before action).
// Thread safety: one thread.
#ifndef AUGUR_MESH_REPLICATION_H_
#define AUGUR_MESH_REPLICATION_H_

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "mesh/replication.pb.h"
#include "mesh/transfer.h"  // kDefaultMaxPayloadBytes

namespace augur::mesh {

inline constexpr uint32_t kReplicationVersion = 1;
inline constexpr size_t kMaxWorkflowIdBytes = 256;
inline constexpr size_t kMaxRecordFieldBytes = 1024;  // every field but text
inline constexpr size_t kMaxRecordBytes = 32 * 1024;  // one record, encoded
inline constexpr size_t kMaxOrphans = 256;            // per message, and kept per workflow

// NOTE: the values are on the wire and on disk; never renumber, append only.
enum class RecordKind : uint32_t {
  kSubmitted = 1,         // name, text (the spec as submitted)
  kAttemptStarted = 2,    // stage, shard, attempt_id, host, lease_id
  kAttemptResult = 3,     // stage, shard, attempt_id, host, ok, digest, transfer_id, size, text (error)
  kStageMerged = 4,       // stage, digest, transfer_id, size
  kWorkflowFinished = 5,  // ok, text (error)
  kTakeover = 6,          // host (the new owner); written by the replicator itself
  kShardsPlanned = 7,     // stage, text (the shards planned for it: workflow_log.h)
};
inline constexpr uint32_t kMaxRecordKind = 7;
std::string_view RecordKindName(RecordKind k);  // "submitted", "attempt_started", ...

// Records as the executor makes them (seq, epoch and time are set by the log).
wire::StateRecord MakeSubmitted(std::string_view name, std::string_view spec);
wire::StateRecord MakeAttemptStarted(std::string_view stage, std::string_view shard,
                                     std::string_view attempt_id, std::string_view host,
                                     std::string_view lease_id);
wire::StateRecord MakeAttemptResult(std::string_view stage, std::string_view shard,
                                    std::string_view attempt_id, std::string_view host, bool ok,
                                    std::string_view digest, std::string_view transfer_id,
                                    uint64_t size, std::string_view error = {});
wire::StateRecord MakeStageMerged(std::string_view stage, std::string_view digest,
                                  std::string_view transfer_id, uint64_t size);
wire::StateRecord MakeWorkflowFinished(bool ok, std::string_view error = {});
wire::StateRecord MakeShardsPlanned(std::string_view stage, std::string_view shards);

// An ownership epoch (see the header comment).
struct Epoch {
  uint64_t number = 0;
  std::string owner;
  friend auto operator<=>(const Epoch&, const Epoch&) = default;
  friend bool operator==(const Epoch&, const Epoch&) = default;
};
std::string EpochString(const Epoch& e);  // "3/host-b"

// --- Codec -----------------------------------------------------------------------------

// Checks a record's fields for its kind (ids present and bounded, a known kind; output and
// detail at most kMaxRecordBytes each); with
// `logged`, also its seq (>= 1) and epoch (number >= 1, a valid owner name).
Status CheckRecord(const wire::StateRecord& r, bool logged);
// Sets the version and serializes. InvalidArgument when DecodeReplication would refuse it.
Result<std::string> EncodeReplication(wire::ReplicationMessage msg, size_t max_bytes);
// A message from a peer, checked: size, version, a body, a valid workflow id and epoch,
// records that pass CheckRecord in seq order, bounded lists. Errors: ResourceExhausted (too
// big), FailedPrecondition (another version), Corruption (anything else), naming the problem.
Result<wire::ReplicationMessage> DecodeReplication(std::string_view bytes, size_t max_bytes);

// --- Ownership -------------------------------------------------------------------------

// One workflow whose owner by membership changed for `self`: `owned` says it owns it now
// (it should take over), else it no longer does.
struct OwnershipChange {
  std::string workflow_id;
  bool owned = false;
};
// The owner of a workflow by membership is the first of ReplicaSet(id, live, r) (rendezvous
// order; r does not matter for the first). Returns, for each of `workflow_ids`, a change
// where `self` owned it under `before_live` and not under `after_live`, or the reverse.
std::vector<OwnershipChange> OwnershipView(std::string_view self,
                                           const std::vector<std::string>& workflow_ids,
                                           const std::vector<std::string>& before_live,
                                           const std::vector<std::string>& after_live);

// --- The replicator --------------------------------------------------------------------

struct ReplicationOptions {
  size_t replicas = 2;                     // r
  // Resend an unacknowledged append, probe, fetch or release this often. A takeover has no
  // other deadline: it waits for every holder membership calls live (see Failover).
  int64_t retransmit_ns = 50'000'000;
  // After being fenced more than once in a row while membership says it should own, a host
  // waits retransmit_ns doubled per fence (at most this) before taking over again: two hosts
  // whose views disagree do not take a workflow from each other at network speed.
  int64_t max_fence_backoff_ns = 5'000'000'000;
  // A replica takes over from an owner that membership does not call live only once it has
  // heard nothing from that owner for this long. Membership can lag behind the owner's own
  // messages (a host that has just joined a large mesh, seen on the 32-host bed: a replica
  // that had not yet seen the owner join took over the workflow it was being sent); a
  // takeover then fences off an owner that runs the workflow. A dead owner is silent from
  // the moment it dies, and membership takes about as long to declare it dead.
  int64_t owner_quiet_ns = 1'000'000'000;
  size_t max_payload_bytes = kDefaultMaxPayloadBytes;
  size_t max_workflows = 100'000;
};

enum class Role { kReplica, kRecovering, kOwner };
std::string_view RoleName(Role r);  // "replica", "recovering", "owner"

struct ReplicationEvent {
  enum class Kind {
    kBecameOwner,    // this host owns the workflow from now on (the log is as complete as
                     // its holders could make it): rebuild the engine's state from Log(W)
    kLostOwnership,  // another host owns it (at `epoch`): stop acting for it; results that
                     // still arrive here go to `owner`
    kCommitted,      // every replica holds the log up to `seq`
    kDropped,        // this host no longer holds the workflow: delete its persisted copy
  };
  Kind kind = Kind::kCommitted;
  std::string workflow_id;
  Epoch epoch;
  uint64_t seq = 0;
  std::string owner;
};

struct ReplicationOutgoing {
  std::string to;
  std::string payload;  // for Channel::kReplication
};

struct ReplicationOutput {
  std::vector<ReplicationOutgoing> messages;
  std::vector<ReplicationEvent> events;
};

// What AppendResult did with a result.
enum class ResultVerdict {
  kRecorded,   // appended
  kDuplicate,  // this attempt id already has a result: ignored
  kLate,       // its shard already has a successful result, or the workflow finished: ignored
};

struct ReplicationStats {
  uint64_t appended = 0;           // records this host appended as owner
  uint64_t records_sent = 0;       // in Append and FetchReply messages
  uint64_t records_resent = 0;     // of those, sent to a replica again (retransmissions)
  uint64_t catch_up_records = 0;   // sent to a replica that was new or had parted
  uint64_t acks = 0;
  uint64_t mismatches = 0;         // appends refused for a log that parted (catch-up follows)
  uint64_t stale_epoch = 0;        // messages refused for an older epoch
  uint64_t bad_messages = 0;       // malformed, or impossible in the state they met
  uint64_t over_capacity = 0;      // about a new workflow past max_workflows
  uint64_t duplicate_results = 0;  // kDuplicate verdicts
  uint64_t late_results = 0;       // kLate verdicts
  uint64_t takeovers = 0;          // kBecameOwner
  uint64_t step_downs = 0;         // kLostOwnership
  uint64_t fetched_records = 0;    // taken from another holder while taking over
  uint64_t truncated_records = 0;  // cut from this host's log when logs parted
  uint64_t orphans_recorded = 0;   // cut results that the owner then recorded
  uint64_t released = 0;           // copies dropped on the owner's word
  uint64_t takeovers_deferred = 0;  // not begun: the owner, not live by membership, spoke lately
  uint64_t takeovers_abandoned = 0;  // no holder had the log from its start (submitted)
};

// One workflow as this host holds it.
struct WorkflowReplica {
  std::string id;
  Role role = Role::kReplica;
  Epoch epoch;                  // the highest accepted (this host's own while it owns)
  std::vector<wire::StateRecord> log;  // log[i].seq() == i + 1
  uint64_t committed = 0;
  std::vector<std::string> replicas;  // owner: its replica set; replica: the owner's, as told
  std::vector<wire::StateRecord> orphans;  // results cut from this log, not yet resolved
};

class Replicator {
 public:
  Replicator(std::string self, ReplicationOptions options);
  Replicator(Replicator&&) noexcept;
  Replicator& operator=(Replicator&&) noexcept;
  ~Replicator();

  const std::string& self() const { return self_; }

  // A workflow submitted here: its log starts with `submitted` (a kSubmitted record) and
  // this host owns it at epoch (1, self) until a newer epoch fences it. AlreadyExists for a
  // workflow this host holds; InvalidArgument for a bad id or record; ResourceExhausted at
  // max_workflows or for a record over kMaxRecordBytes.
  Status Create(const std::string& workflow_id, wire::StateRecord submitted, int64_t now_ns,
                ReplicationOutput* out);
  // Appends a record to a workflow this host owns and sends it to the replicas; returns its
  // seq. FailedPrecondition (naming the owner this host knows) when it does not own it;
  // NotFound for an unknown workflow; InvalidArgument for a bad record, a kSubmitted or a
  // kTakeover; AlreadyExists for a stage merged or a workflow finished already;
  // ResourceExhausted for a record over kMaxRecordBytes. Results go through AppendResult.
  Result<uint64_t> Append(const std::string& workflow_id, wire::StateRecord record,
                          int64_t now_ns, ReplicationOutput* out);
  // Appends a kAttemptResult unless it is a duplicate or late (the verdict; counted). Errors
  // as Append's.
  Result<ResultVerdict> AppendResult(const std::string& workflow_id, wire::StateRecord result,
                                     int64_t now_ns, ReplicationOutput* out);

  // The live members now (this host among them). Starts takeovers of the workflows this
  // host should own, changes the owner's replica sets (new replicas are caught up, removed
  // ones released), and tells the host that should own a workflow whose owner died.
  void SetMembers(std::vector<std::string> live, int64_t now_ns, ReplicationOutput* out);
  // A message from host `from` (DecodeReplication's result).
  void Handle(const std::string& from, const wire::ReplicationMessage& msg, int64_t now_ns,
              ReplicationOutput* out);
  // Resends what is unacknowledged, ends takeovers whose wait is over.
  void Tick(int64_t now_ns, ReplicationOutput* out);
  // When Tick must next run (nullopt: nothing pending).
  std::optional<int64_t> NextDeadline() const;

  // The workflow as this host holds it, or null.
  const WorkflowReplica* Find(const std::string& workflow_id) const;
  std::vector<std::string> Workflows() const;
  bool Owns(const std::string& workflow_id) const;
  // Whether a successful result is recorded for the shard, and its attempt id.
  std::optional<std::string> Winner(const std::string& workflow_id, const std::string& stage,
                                    const std::string& shard) const;

  // The workflows whose state changed since the last call: persist their Snapshot.
  std::vector<std::string> DrainDirty();
  // A workflow's state as bytes (WorkflowSnapshot) for the executor to persist. NotFound if
  // not held.
  Result<std::string> Snapshot(const std::string& workflow_id) const;
  // Loads a snapshot (replacing what this host holds of that workflow). The workflow comes
  // back as a replica: if membership says this host owns it, it takes over at a new epoch
  // (appends it sent before a restart may be lost). Corruption for bytes that are not a
  // valid snapshot.
  Status Restore(std::string_view bytes);
  // Stops holding a workflow (retention of finished ones is the executor's). NotFound if not
  // held.
  Status Forget(const std::string& workflow_id);

  const ReplicationStats& stats() const;

 private:
  struct Impl;
  std::string self_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_REPLICATION_H_
