// MeshPlacer: runs shards of this host's workflows on other hosts, and shards of other
// hosts' workflows here (docs/MESH.md, "Running shards on other hosts" and "Moving shard
// data"). It is the executor's Placer (workflow/placer.h): the executor calls it on its engine
// thread, and it calls the executor back through PlacerHost on the same thread.
//
// Owner side (a kPlace action of the engine):
//   Place     the shard is submitted to the Negotiator (owner side of placement). The files
//             under the owner's work directory that the task names are its inputs: up to
//             inline_bytes in all go inline in RunShard, the rest as transfers; one over
//             transfer.max_blob_bytes (mesh.max_transfer_bytes) fails the attempt at once,
//             naming the file, its size and the limit.
//   kAwarded  the executor records the attempt as running on the host, with the lease's
//             grant; RunShard (argv, env, the owner's work directory, its output path and the
//             inputs, inline or named by transfer id) goes to the host, resent every
//             run_resend until it answers ShardStatus; the input transfers start (chunks on
//             Channel::kData, read from the files as the window opens).
//   result    ShardResult: the output (inline, or received by transfer into a temporary file
//             under work_dir, renamed when complete and moved where the merge expects it) is
//             handed to the executor with the outcome, and the lease released. A result whose
//             output transfer is not complete waits for it. A result for an attempt that has
//             already ended (a duplicate, or a late one after the lease was lost) is counted
//             and ignored. A failed input or output transfer ends the attempt kLost (placed
//             again as a new attempt).
//   kLost     the lease is gone (reclaimed, unanswered for a ttl, the host down): the
//             attempt ends kLost and the engine places its shard again as a new attempt.
//   Cancel    the lease (or the negotiation) is released; the attempt ends cancelled.
// Candidate side (the Bidder answers from the executor's own ledger, so local and remote
// work share one capacity):
//   kLeased   the lease is noted; the RunShard that follows from its owner starts the task
//             through this host's backend under the lease's grant, in a directory of its
//             own under work_dir that stands for the owner's work directory, once every
//             input is there (transferred ones are received into temporary files and renamed
//             into the directory when complete; chunks of transfers no lease here expects
//             are refused).
//   end       ShardResult with the output inline (up to inline_bytes) or naming the transfer
//             that brings it (over transfer.max_blob_bytes: the attempt fails, naming the
//             file, its size and the limit), resent every result_resend until the owner
//             releases the lease.
//   kReleased, kReclaimed (owner gone quiet, pre-empted): the task is stopped if it runs,
//             and its transfers are stopped.
// Restarts (re-attaching, docs/MESH.md "Running shards on other hosts"):
//   owner     a placed attempt recorded with its host and lease (AttemptRecord::lease_id) is
//             taken up again by Resume: the negotiator renews the lease at once, ResumeShard
//             asks the host whether the task runs (resent until ShardStatus), and the result
//             comes as usual; a lease the host no longer holds is lost (re-placed).
//   host      each lease is kept in the store (WorkflowStore::PutLease: at the award, when its
//             task starts, when it ends with its result; deleted when dropped), with the
//             task's backend handles (the executor's). Recover, at start, holds them again in
//             the ledger for a fresh ttl and tells each owner (Leased: an owner that no longer
//             holds one answers Release, and its task is stopped), re-attaches each task
//             through its backend, resends a result not yet released; a task that had not
//             started, or whose lease no longer fits, is lost (its owner told, its instance
//             released).
// Transfers are retransmitted from Tick (the TransferSender's timers are in NextDeadline).
// Kept outputs (docs/MESH.md, "Replication and failover", "Outputs after a takeover"): a
// leased shard's output that went to its owner by transfer is kept after the lease ends,
// under work_dir/kept/<workflow hash>/<attempt hash>.out, until the workflow's owner says it
// finished (ForgetOutputs) or keep_outputs_ns passes, and while all kept outputs add up to at
// most max_kept_bytes (the oldest go first: kept_outputs.h; the directory is listed again at
// start, so the cap holds across restarts); a new owner after a takeover fetches it
// (FetchOutput) by the same chunked, checksummed transfer instead of running the shard again.
//
// The negotiation's answers where they are received (OnReceipt, on the mesh thread): an
// answer to this host's placements (an offer, a lease, a refusal, a lease's loss or change)
// is handled by the negotiator on the thread that received it, when the engine thread is
// not in the negotiator at that moment and no earlier answer was left to it: its awards,
// declines and releases go out at once, and a shard's grant is taken when its Leased comes
// (placement latency is measured to then). What needs the executor (recording the award,
// the RunShard, ending a lost attempt) waits for TakeUpReceipts on the engine thread. A
// message it cannot take so goes to OnMessage as before, and so do the later ones until
// the engine thread has handled it, so that the negotiator sees one peer's answers in the
// order they came.
//
// Thread safety: one thread (the executor's engine thread), except OnReceipt (the mesh
// thread), and transfer_stats(), placement_stats() and desk(), which any thread may call.
#ifndef AUGUR_MESH_MESH_PLACER_H_
#define AUGUR_MESH_MESH_PLACER_H_

#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mesh/bid_desk.h"
#include "mesh/bidder.h"
#include "mesh/kept_outputs.h"
#include "mesh/latency_histogram.h"
#include "mesh/log_rate_limiter.h"
#include "mesh/mesh_link.h"
#include "mesh/negotiator.h"
#include "mesh/remote_run_codec.h"
#include "mesh/transfer.h"
#include "workflow/placer.h"
#include "workflow/store.h"

namespace augur::mesh {

struct MeshPlacerOptions {
  // Directories of leased tasks (one per lease) live under it. REQUIRED.
  std::string work_dir;
  // include_self is forced off: a shard is placed elsewhere only when it does not fit here.
  NegotiatorOptions negotiator;
  // Empty backends: {"process", free}.
  BidderOptions bidder;
  int64_t run_resend_ns = 200'000'000;     // RunShard, until ShardStatus
  int64_t result_resend_ns = 500'000'000;  // ShardResult, until the lease is released
  // Inputs (all of a task's together) and outputs up to this many bytes go inline in the run
  // messages; larger ones as transfers. At most kMaxInlineBytes.
  size_t inline_bytes = 16 * 1024;
  // The transfers' options: max_blob_bytes is mesh.max_transfer_bytes (default 1 GiB);
  // max_payload_bytes must be the transport's max_message less kEnvelopeOverheadBytes.
  TransferOptions transfer;
  // Kept outputs: how long at most (0: until the owner says the workflow finished; augurd
  // passes workflows.history_retention), and how long a fetch waits for the holder's first
  // chunk or answer.
  int64_t keep_outputs_ns = 180LL * 86'400 * 1'000'000'000;
  // The bytes all kept outputs may take together (mesh.max_kept_bytes); over it the oldest
  // are deleted first. 0: no cap.
  uint64_t max_kept_bytes = 10ULL << 30;
  int64_t fetch_timeout_ns = 10'000'000'000;
};

// The placer's transfers, for /metrics (augur_mesh_transfer_*).
struct MeshTransferStats {
  TransferSenderStats sender;
  TransferReceiverStats receiver;
  uint64_t sending = 0;         // transfers in progress, out
  uint64_t receiving = 0;       // in
  uint64_t bytes_received = 0;  // written to files, in order
  uint64_t over_limit = 0;      // inputs and outputs over max_blob_bytes: their attempt failed
  uint64_t refused = 0;         // inbound transfers no placed attempt or lease here expects
  uint64_t file_errors = 0;     // a transfer's file could not be read, written or renamed
};

// The placer's negotiation, both sides, and its placement latency, for /metrics
// (augur_mesh_placement_*, augur_mesh_bid_*).
struct MeshPlacementStats {
  LatencyHistogram latency;    // MeshPlacerStats::placement_latency
  LatencyHistogram message_wait;  // MeshPlacerStats::message_wait
  NegotiatorStats negotiator;  // this host as owner
  BidderStats bidder;          // this host as candidate
};

struct MeshPlacerStats {
  uint64_t placed = 0;             // attempts handed to the negotiator
  uint64_t awarded = 0;
  uint64_t lost = 0;               // leases lost (kLost)
  uint64_t remote_results = 0;     // results accepted (owner side)
  uint64_t duplicate_results = 0;  // results for attempts already ended: ignored
  uint64_t stale = 0;              // run messages for unknown or foreign leases
  uint64_t malformed = 0;          // messages that failed to decode
  uint64_t send_errors = 0;
  uint64_t leased_runs = 0;        // tasks started here for other hosts
  uint64_t leased_stopped = 0;     // stopped because their lease ended first
  uint64_t taken_back = 0;         // placed, then started here: room freed before an award
  uint64_t resumed = 0;            // placed attempts taken up again after this owner restarted
  uint64_t leases_recovered = 0;   // leases held again after this host restarted
  uint64_t leased_reattached = 0;  // their tasks re-attached through the backend
  uint64_t leased_resized = 0;     // leased tasks resized live (their lease shrunk or grown)
  // Leases at once the desk promised on the mesh thread (bid_desk.h): taken up by the
  // bidder as promised, or broken (the ledger had no room left: the owner was told).
  uint64_t desk_kept = 0;
  uint64_t desk_broken = 0;
  // From the engine's decision to place a shard (the Tick that found it ready, without room
  // here and with room in a peer's gossiped headroom) to its grant (the host's Leased reached
  // this owner): the placement latency of issue 12's benchmark.
  LatencyHistogram placement_latency;
  // How long each placement message (both sides: bid requests, awards, offers, leases) waited
  // between the mesh thread handing it to the executor and the engine thread taking it up:
  // the part of a negotiation's round trips that this host's engine thread adds.
  LatencyHistogram message_wait;
};

class MeshPlacer : public workflow::Placer {
 public:
  // `link` must outlive the placer.
  MeshPlacer(MeshLink* link, MeshPlacerOptions options);

  void Bind(workflow::PlacerHost* host) override { host_ = host; }
  std::vector<workflow::Resources> PeerRoom(double predicted_s) const override;
  void Place(const workflow::Action& place, int64_t now_ns) override;
  bool Resume(const workflow::AttemptRecord& attempt, int64_t now_ns) override;
  void Recover(int64_t now_ns) override;
  bool Cancel(const std::string& attempt_id, const std::string& reason, int64_t now_ns) override;
  void LeasedEnded(const std::string& lease_id, const workflow::AttemptOutcome& outcome,
                   int64_t now_ns) override;
  void ForeignChanges(const std::vector<workflow::GrantChange>& changes, int64_t now_ns) override;
  void OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                 int64_t now_ns, int64_t received_ns) override;
  // Placement messages: a run message never has to precede them (a RunShard follows its
  // Award, a Release its ShardResult), so handling them first is safe.
  bool Prompt(uint32_t channel) const override { return channel == uint32_t(Channel::kPlacement); }
  // Mesh thread: the negotiation's answers (see the header comment).
  bool OnReceipt(const std::string& from, uint32_t channel, const std::string& payload,
                 int64_t now_ns) override;
  void TakeUpReceipts(int64_t now_ns) override;
  void PeerDown(const std::string& host, int64_t now_ns) override;
  void RoomChanged() override { PublishRoom(); }
  void Tick(int64_t now_ns) override;
  std::optional<int64_t> NextDeadline() const override;
  std::string StatsJson() const override;

  // --- Kept outputs (see the header comment) ---
  // Owner side, after a takeover: fetches the output of `attempt_id` (`size` bytes) that
  // `host`, which ran it, kept, into the file `dest`. `done` is called once on the engine
  // thread, now or later: OK when `dest` holds it, else why not (the host is down or keeps
  // nothing, the transfer failed, the size differs, no answer within fetch_timeout_ns).
  void FetchOutput(const std::string& host, const std::string& attempt_id, uint64_t size,
                   const std::string& dest, std::function<void(Status)> done, int64_t now_ns);
  // The workflow finished: each of `hosts` drops the outputs it kept of it.
  void ForgetOutputs(const std::string& workflow_id, const std::vector<std::string>& hosts);
  // Where this host keeps the output of another host's attempt it ran.
  std::string KeptPath(const std::string& attempt_id) const;

  const MeshPlacerStats& stats() const { return stats_; }
  // Answers leases at once on the mesh thread, from the room this placer publishes (see
  // bid_desk.h); the message is still handed to OnMessage after. Any thread.
  BidDesk& desk() { return desk_; }
  // A copy taken at the last Tick; any thread.
  MeshTransferStats transfer_stats() const;
  // A copy taken at the last Tick; any thread.
  MeshPlacementStats placement_stats() const;

 private:
  // A shard of ours placed elsewhere, by attempt id.
  struct Placed {
    std::string workflow;
    workflow::Resources want;
    wire::RunShard run;  // lease_id set at the award
    std::string host, lease_id;
    bool awarded = false;
    bool started = false;  // the host answered ShardStatus
    bool resumed = false;  // taken up after a restart: ResumeShard, not RunShard, until then
    int64_t next_send_ns = 0;
    // Inputs that go by transfer: (index in run.inputs, local path); ids set at the award.
    std::vector<std::pair<int, std::string>> transfer_inputs;
    std::string output_transfer;  // the id the host sends the output under (at the award)
    std::optional<wire::ShardResult> result;  // its output transfer is not complete yet
    std::string output_file;  // the output, received before its ShardResult came
    int64_t ready_ns = 0;  // when the engine decided to place it (attempt.started_ns)
  };
  // A lease this host granted another's shard, by lease id. What the store keeps of it is
  // its LeaseRecord part (lease_id, instance and invocation unused here: the map's key and
  // the executor's).
  struct Leased : workflow::LeaseRecord {
    bool ended = false;
    bool released = false;  // the lease ended while the task ran: drop it at its end
    std::string start_error;  // it could not start: said to every RunShard
    bool keep = false;        // its output went by transfer: kept when the lease ends
    int64_t next_send_ns = 0;
    // Inputs still coming by transfer (id -> where it goes); the task starts when none is.
    std::map<std::string, std::string> awaiting;
    std::optional<workflow::LeasedTask> task;  // to start once `awaiting` is empty
  };
  // A file this host sends as a transfer, read in pieces as the window opens.
  struct Outgoing {
    std::string path;
    std::ifstream file;
    std::string attempt_id;  // owner side: the placed attempt whose input it is
    std::string lease_id;    // candidate side: the lease whose output it is
  };
  // A transfer this host receives, into a temporary file under work_dir.
  struct Incoming {
    std::string tmp;
    std::ofstream file;
  };
  using TransferKey = std::pair<std::string, std::string>;  // (sending host, transfer id)

  void Handle(NegotiatorOutput& out, int64_t now);
  void Handle(BidderOutput& out, int64_t now);
  // Tells the desk the bidder's room now (the engine's Tick changed the ledger).
  void PublishRoom();
  // Runs `act`, the bidder acting on the ledger, under the desk (BidDesk::Settle: the room
  // promised there is out of the bidder's reach, and the room after the act is published;
  // `holder`'s promise, if any, is returned). Every bidder act that can change the ledger
  // runs so.
  std::optional<wire::Offer> WithDesk(const std::string& holder, const std::function<void()>& act);
  // The bidder has handled `from`'s BidRequest that the desk had answered (`promised`) into
  // `out`: its own answer is dropped when it leased the same grant, else the promise is
  // broken (what the bidder made of the request is declined, and the owner told Reclaimed).
  void SettlePromise(const std::string& from, const wire::Offer& promised, int64_t now,
                     BidderOutput* out);
  void SendPlacement(const std::vector<PlacementOutgoing>& messages, int64_t now);
  // Encodes one placement message and sends it to another host; false when it did not go.
  // Any thread.
  bool SendToPeer(const PlacementOutgoing& m);
  void SendRun(const std::string& to, const wire::RemoteRunMessage& msg);
  void OnRun(const std::string& from, const wire::RunShard& run, int64_t now);
  void OnResume(const std::string& from, const wire::ResumeShard& r, int64_t now);
  // The lease of a run message from `from` for `attempt`, or nullptr (counted, and the owner
  // told with an error ShardStatus).
  Leased* LeaseFor(const std::string& from, const std::string& lease, const std::string& attempt);
  // Writes a lease to the store (state before action, as the executor's records).
  void SaveLease(const std::string& lease_id, const Leased& l);
  // Writes the leases granted since the last Tick (unsaved_) in one transaction.
  void SaveLeases();
  void OnStatus(const std::string& from, const wire::ShardStatus& st, int64_t now);
  void OnResult(const std::string& from, const wire::ShardResult& r, int64_t now);
  void SendStatus(const std::string& to, const std::string& lease, const Leased& l);
  // Ends a placed attempt: the executor is told (with the output inline, or in
  // `output_file` when it came by transfer), the lease released, its transfers stopped, the
  // id remembered.
  // (attempt_id by value: callers pass keys of placed_, which it erases.)
  void EndPlaced(std::string attempt_id, const workflow::AttemptOutcome& outcome,
                 const std::string& output, int64_t now, const std::string& output_file = "");
  void DropLeased(const std::string& lease_id, int64_t now);
  void Malformed(const std::string& from, const Status& why, int64_t now);
  // A placed attempt's result whose output came by transfer (in p.output_file): ends it.
  void EndWithOutputFile(const std::string& attempt_id, const wire::ShardResult& r, int64_t now);
  // A leased task whose RunShard came and whose inputs are all there: start it.
  Status StartLeased(Leased& l);
  // A leased task that started (or waits for inputs) and is not stopping.
  static bool Running(const Leased& l) {
    return l.started && !l.ended && l.start_error.empty() && !l.task;
  }
  // The leased task's end, `m` (its ShardResult), sent to the owner until released.
  void SendResult(Leased& l, const wire::RemoteRunMessage& m, int64_t now);
  // The leased task cannot finish here (an input did not arrive, it could not start, its
  // output could not be sent): a kLost result tells the owner.
  void LoseLeased(const std::string& lease_id, Leased& l, const std::string& why, int64_t now);
  // Transfers (docs/MESH.md, "Moving shard data").
  void OnData(const std::string& from, const std::string& payload, int64_t now);
  // Sends the messages; events go to OnSent (the sender's) or OnReceived (the receiver's).
  void Handle(TransferOutput& out, bool sent, int64_t now);
  void OnSent(const TransferEvent& e, int64_t now);
  void OnReceived(const TransferEvent& e, int64_t now);
  // An inbound transfer's file is complete (renamed from its temporary name to `file`).
  void Arrived(const TransferKey& key, const std::string& file, int64_t now);
  // An inbound transfer failed: whoever waited for it ends (kLost).
  void ReceiveFailed(const TransferKey& key, const std::string& why, int64_t now);
  // Whether a placed attempt or a lease here waits for this inbound transfer.
  bool Expected(const TransferKey& key) const;
  // Starts sending the file `path` (size bytes) as transfer `id`.
  Status SendFile(const std::string& to, const std::string& id, const std::string& path,
                  uint64_t size, Outgoing o, int64_t now);
  // Reads files into the transfers whose windows have room.
  void Pump(int64_t now);
  // Stop a transfer this side no longer wants (the peer is told); no event follows.
  void StopSending(const std::string& id, const std::string& why, int64_t now);
  void StopReceiving(const TransferKey& key, const std::string& why, int64_t now);

  // Kept outputs (see the header comment).
  struct Fetching {  // owner side, by (holder, transfer id)
    std::string attempt_id, dest;
    uint64_t size = 0, nonce = 0;
    std::function<void(Status)> done;
    int64_t next_send_ns = 0, deadline_ns = 0;
  };
  struct KeptStats {
    uint64_t kept = 0, served = 0, refused = 0, forgotten = 0, pruned = 0;  // holder side
    uint64_t evicted = 0;  // deleted, oldest first, to stay within max_kept_bytes
    uint64_t fetched = 0, fetch_failed = 0;                                 // owner side
  };
  void KeepOutput(const Leased& l, int64_t now);
  // Lists work_dir/kept into kept_index_ (at start) and applies the cap.
  void LoadKept(int64_t now);
  // Deletes what the cap evicts from kept_index_: counted, each logged at a rate limit.
  void EvictKept(int64_t now);
  void OnFetch(const std::string& from, const wire::FetchOutput& f, int64_t now);
  void OnFetchRefused(const std::string& from, const wire::FetchRefused& r);
  void OnForget(const wire::ForgetOutputs& f);
  void FetchArrived(const TransferKey& key, const std::string& file);
  void EndFetch(const TransferKey& key, Status st, int64_t now);
  void TickKept(int64_t now);
  std::map<TransferKey, Fetching> fetching_;
  uint64_t next_nonce_ = 0;
  int64_t next_kept_prune_ns_ = 0;
  KeptStats kept_;
  KeptOutputs kept_index_{0};  // max_kept_bytes set in the constructor

  MeshLink* link_;
  MeshPlacerOptions o_;
  workflow::PlacerHost* host_ = nullptr;
  // The negotiator, shared with the mesh thread (OnReceipt): negotiation_mu_ is held only
  // while the negotiator itself runs, never while this placer sends or calls the executor.
  // Every use of it on the engine thread goes through Negotiate, which first takes up what
  // OnReceipt left (receipts_), in the order it was decided.
  mutable std::mutex negotiation_mu_;
  Negotiator negotiator_;
  // Decided on the mesh thread, for the engine thread (under negotiation_mu_): the outputs'
  // events, and any message to this host itself (the others went at once).
  std::vector<NegotiatorOutput> receipts_;
  // Answers the negotiator took where they were received, and those it left to the engine
  // thread (it was in the negotiator, or an earlier answer waited for it): StatsJson's
  // taken_on_receipt and left_to_engine. Send errors on the mesh thread, added to
  // stats_.send_errors by the engine thread.
  std::atomic<uint64_t> receipts_taken_{0}, receipts_left_{0}, receipt_send_errors_{0};
  // Answers OnReceipt left to OnMessage and the engine thread has not handled yet: while
  // any is, the next are left too.
  std::atomic<int64_t> left_pending_{0};
  // Engine thread: takes up the receipts, then runs fn(negotiator_, &out) under the lock
  // and handles its output.
  template <typename Fn>
  void Negotiate(int64_t now, Fn&& fn);
  Bidder bidder_;
  BidDesk desk_;
  std::map<std::string, Placed> placed_;   // by attempt id
  std::map<std::string, Leased> leased_;   // by lease id
  std::set<std::string> ended_;            // attempts of ours that ended (dedupe)
  bool submitted_ = false;                 // a shard waits for the negotiator's Tick
  std::set<std::string> unsaved_;          // leases granted here, not yet written (SaveLeases)
  TransferSender sender_;
  TransferReceiver receiver_;
  std::map<std::string, Outgoing> sending_;      // by transfer id
  std::map<TransferKey, Incoming> receiving_;
  // Inputs received before their RunShard came: the file, until it comes or the lease ends.
  std::map<TransferKey, std::string> arrived_;
  uint64_t bytes_received_ = 0, over_limit_ = 0, refused_ = 0, file_errors_ = 0;
  mutable std::mutex transfer_mu_;
  MeshTransferStats transfer_snapshot_;  // guarded by transfer_mu_
  MeshPlacementStats placement_snapshot_;  // guarded by transfer_mu_
  LogRateLimiter log_limit_{10'000'000'000};
  MeshPlacerStats stats_;
  // The wait (MeshPlacerStats::message_wait) of the placement message being handled, for
  // the placement log line; 0 outside OnMessage.
  int64_t handling_wait_ns_ = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_MESH_PLACER_H_
