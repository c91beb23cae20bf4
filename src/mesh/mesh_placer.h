// MeshPlacer: runs shards of this host's workflows on other hosts, and shards of other
// hosts' workflows here (docs/MESH.md, "Running shards on other hosts"). It is the
// executor's Placer (workflow/placer.h): the executor calls it on its engine thread, and it
// calls the executor back through PlacerHost on the same thread.
//
// Owner side (a kPlace action of the engine):
//   Place     the shard is submitted to the Negotiator (owner side of placement).
//   kAwarded  the executor records the attempt as running on the host, with the lease's
//             grant; RunShard (argv, env, the owner's work directory, its output path and
//             the files under that directory the task names, inline) goes to the host, resent
//             every run_resend until it answers ShardStatus.
//   result    ShardResult: the output is handed to the executor (written where the merge
//             expects it) with the outcome, and the lease released. A result for an attempt
//             that has already ended (a duplicate, or a late one after the lease was lost)
//             is counted and ignored.
//   kLost     the lease is gone (reclaimed, unanswered for a ttl, the host down): the
//             attempt ends kLost and the engine places its shard again as a new attempt.
//   Cancel    the lease (or the negotiation) is released; the attempt ends cancelled.
// Candidate side (the Bidder answers from the executor's own ledger, so local and remote
// work share one capacity):
//   kLeased   the lease is noted; the RunShard that follows from its owner starts the task
//             through this host's backend under the lease's grant, in a directory of its
//             own under work_dir that stands for the owner's work directory.
//   end       ShardResult with the output inline (at most kMaxInlineBytes: beyond that the
//             attempt fails with a clear error, until chunked transfer is wired in), resent
//             every result_resend until the owner releases the lease.
//   kReleased, kReclaimed (owner gone quiet, pre-empted): the task is stopped if it runs.
//
// Thread safety: one thread (the executor's engine thread).
#ifndef AUGUR_MESH_MESH_PLACER_H_
#define AUGUR_MESH_MESH_PLACER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mesh/bidder.h"
#include "mesh/latency_histogram.h"
#include "mesh/log_rate_limiter.h"
#include "mesh/mesh_link.h"
#include "mesh/negotiator.h"
#include "mesh/remote_run_codec.h"
#include "workflow/placer.h"

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
  // From the engine's decision to place a shard (the Tick that found it ready, without room
  // here and with room in a peer's gossiped headroom) to its grant (the host's Leased reached
  // this owner): the placement latency of issue 12's benchmark.
  LatencyHistogram placement_latency;
};

class MeshPlacer : public workflow::Placer {
 public:
  // `link` must outlive the placer.
  MeshPlacer(MeshLink* link, MeshPlacerOptions options);

  void Bind(workflow::PlacerHost* host) override { host_ = host; }
  std::vector<workflow::Resources> PeerRoom(double predicted_s) const override;
  void Place(const workflow::Action& place, int64_t now_ns) override;
  bool Cancel(const std::string& attempt_id, const std::string& reason, int64_t now_ns) override;
  void LeasedEnded(const std::string& lease_id, const workflow::AttemptOutcome& outcome,
                   int64_t now_ns) override;
  void ForeignChanges(const std::vector<workflow::GrantChange>& changes, int64_t now_ns) override;
  void OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                 int64_t now_ns) override;
  // Placement messages: a run message never has to precede them (a RunShard follows its
  // Award, a Release its ShardResult), so handling them first is safe.
  bool Prompt(uint32_t channel) const override { return channel == uint32_t(Channel::kPlacement); }
  void PeerDown(const std::string& host, int64_t now_ns) override;
  void Tick(int64_t now_ns) override;
  std::optional<int64_t> NextDeadline() const override;
  std::string StatsJson() const override;

  const MeshPlacerStats& stats() const { return stats_; }

 private:
  // A shard of ours placed elsewhere, by attempt id.
  struct Placed {
    std::string workflow;
    workflow::Resources want;
    wire::RunShard run;  // lease_id set at the award
    std::string host, lease_id;
    bool awarded = false;
    bool started = false;  // the host answered ShardStatus
    int64_t next_send_ns = 0;
    int64_t ready_ns = 0;  // when the engine decided to place it (attempt.started_ns)
  };
  // A lease this host granted another's shard, by lease id.
  struct Leased {
    std::string owner, attempt_id, backend;
    workflow::Resources grant;
    bool started = false;
    bool ended = false;
    bool released = false;  // the lease ended while the task ran: drop it at its end
    std::string dir, output_path;
    std::string start_error;  // it could not start: said to every RunShard
    std::string result;       // the encoded ShardResult, once ended
    int64_t next_send_ns = 0;
  };

  void Handle(NegotiatorOutput& out, int64_t now);
  void Handle(BidderOutput& out, int64_t now);
  void SendPlacement(const std::vector<PlacementOutgoing>& messages, int64_t now);
  void SendRun(const std::string& to, const wire::RemoteRunMessage& msg);
  void OnRun(const std::string& from, const wire::RunShard& run, int64_t now);
  void OnStatus(const std::string& from, const wire::ShardStatus& st, int64_t now);
  void OnResult(const std::string& from, const wire::ShardResult& r, int64_t now);
  void SendStatus(const std::string& to, const std::string& lease, const Leased& l);
  // Ends a placed attempt: the executor is told, the lease released, the id remembered.
  void EndPlaced(const std::string& attempt_id, const workflow::AttemptOutcome& outcome,
                 const std::string& output, int64_t now);
  void DropLeased(const std::string& lease_id);
  void Malformed(const std::string& from, const Status& why, int64_t now);

  MeshLink* link_;
  MeshPlacerOptions o_;
  workflow::PlacerHost* host_ = nullptr;
  Negotiator negotiator_;
  Bidder bidder_;
  std::map<std::string, Placed> placed_;   // by attempt id
  std::map<std::string, Leased> leased_;   // by lease id
  std::set<std::string> ended_;            // attempts of ours that ended (dedupe)
  bool submitted_ = false;                 // a shard waits for the negotiator's Tick
  LogRateLimiter log_limit_{10'000'000'000};
  MeshPlacerStats stats_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_MESH_PLACER_H_
