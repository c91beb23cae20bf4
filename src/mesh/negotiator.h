// Negotiator: the owner side of placement negotiation (docs/MESH.md, "Placement negotiation
// and leases"). The host that owns a workflow places each of its ready shards on a peer by
// asking a few for bids and awarding the best offer; awarded grants are leases it renews.
//
//   Submit    a ready shard (its want and min, score, predicted time, its workflow's budget
//             and whether the workflow spreads across zones) waits for the next Tick.
//   Tick      the shards submitted since the last Tick form a batch of m and are sampled as
//             Sparrow does: d probes per shard, d*m in all, over distinct hosts while there
//             are enough; each shard's d candidates are drawn from the live peers (never a
//             dead, suspect or departed one) with probability rising with their gossiped
//             headroom over the shard's predicted run time, those where its want (else its
//             min) fits strongly preferred (weighted sampling without replacement,
//             Efraimidis-Spirakis keys). A shard of a workflow that spreads across zones
//             is probed in every zone (up to 4, at least d), among hosts with room those in
//             the zones where its workflow has fewest shards. A BidRequest goes to each.
//   Offers    when the owner's view shows no host with room for the shard, its requests
//             ask to be queued (queue_ns): a candidate without room keeps the request and
//             says so, and offers when room frees there (late binding, as Sparrow binds
//             tasks late). While the view shows room somewhere, a candidate without room
//             refuses at once and the next sample looks elsewhere.
//             Once no probe is unanswered and one has offered (or offer_wait has passed, or
//             while all are queued, the first queued one offers) the best acceptable offer
//             is awarded: grant between min and want, predicted cost within what is
//             left of the workflow's budget; among them the zone where the workflow has
//             fewest shards (with spread), then the earliest predicted finish, then the
//             cheapest. The other offers are declined. No acceptable offer: the shard is
//             sampled afresh, the second round at once (first_retry), later ones after a
//             backoff that doubles each round (from round shrink_from_round on, the
//             candidates may shrink lower-score grants for it),
//             and only once the view shows a host with room for its min (one that refused
//             counts as full until it gossips a new headroom), or max_retry_backoff after
//             its last probes: a saturated cluster is waited on through gossip, not polled.
//   At once   when taking the first offer loses nothing (no budget, no spread, room in view
//             for two like it on the host), the first at_once_probes probes (in rank order,
//             each where the view shows that room on its host) ask for a lease at once
//             (lease_at_once): an offer from one comes as a lease (Offer.leased) and the
//             first places the shard in one round trip; the other probes are declined then.
//             Should they refuse or not answer in time, the others' offers are weighed and
//             awarded as above; a lease at once that is not taken (late, or outside min..want)
//             is released.
//   Award     resent until the candidate answers Leased (kAwarded: the shard is placed)
//             or Reclaimed (its hold had expired: a fresh round); after award_attempts
//             unanswered, the lease is released (in case it was made) and a fresh round
//             starts.
//   Leases    renewed every ttl/4, so that any two lost renewals (or their answers) leave
//             a third inside the ttl, however the delays fall; a lease whose renewals go
//             unanswered for a whole ttl,
//             that the candidate reclaims, or whose host is reported down is lost (kLost):
//             the caller re-places the shard as a new attempt. Release() ends a lease when
//             the shard is done.
//   Room      a candidate's answers (offers, refusals, queued) say its free room as
//             they leave it and how much of its grants are only holds (newer peers): the
//             owner's view of that host is then that room plus (d-1)/d of the holds (an
//             owner awards one of a shard's d offers and declines the rest), no longer its
//             gossiped headroom less this owner's awards (whose holds the room already
//             counts), until the host gossips a new headroom version; each hold this owner
//             declines there is given back to the room at once. A host that refused with
//             too little room for the shard is seen as having that room (not as full), so
//             the next round's sample, and the check for room before it, see where room
//             is now instead of waiting for gossip; one that refused while saying it had
//             room enough, or said nothing (an older peer), counts as full as before.
// Idempotent: messages are matched by request id ("<shard>@<round>"); a duplicate offer is
// ignored, a late one (its round decided) or one for an unknown request is declined, a
// Leased for a lease this owner does not hold is answered with Release, and awards are
// counted once. Each award's grant is debited from this owner's view of the host until the
// host gossips a new headroom version, so one batch does not pile onto one host.
//
// Pure: submissions, messages, the peer view and a clock in; messages and events out;
// randomness from a seeded generator, so a seed replays exactly. Thread safety: one thread.
#ifndef AUGUR_MESH_NEGOTIATOR_H_
#define AUGUR_MESH_NEGOTIATOR_H_

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "augur/status.h"
#include "mesh/headroom_summary.h"
#include "mesh/placement_codec.h"
#include "workflow/resources.h"

namespace augur::mesh {

// One peer as the owner sees it: membership's state and zone, and its gossiped headroom.
struct PlacementPeer {
  std::string name;
  std::string zone;
  bool alive = false;             // membership says alive (not suspect, dead or left)
  uint64_t headroom_version = 0;  // its meta's version: a new one clears this owner's debits
  HeadroomSummary headroom;
};

// A ready shard to place.
struct ShardRequest {
  std::string shard;     // the attempt id: unique; names it in every event
  std::string workflow;  // shards of one workflow share its budget and its spread
  workflow::Resources want;
  workflow::Resources min;  // <= want
  double score = 0;         // higher keeps its grant longer (the scheduler's score)
  double predicted_s = 0;   // its predicted run time at its full want
  // What the workflow may still spend, less what it spent outside this negotiator; the
  // predicted cost of each award this negotiator makes for the workflow is charged here.
  double budget_left = std::numeric_limits<double>::infinity();
  bool spread_zone = false;  // the workflow asks for `spread: zone`
  std::string backend;       // "": any
  bool avoid_preemptible = false;
};

struct NegotiatorOptions {
  uint32_t probes_per_shard = 2;          // d
  int64_t offer_wait_ns = 10'000'000;     // decide with what came after this long
  int64_t hold_ns = 200'000'000;          // asked of candidates
  // Asked of candidates when the view shows no room for a shard: queue the request this
  // long and offer when room frees (late binding). A round whose probes are all queued
  // waits that long. 0: off.
  int64_t queue_ns = 2'000'000'000;
  // Before the second round: its sample sees where room is now (the first round's answers
  // said it), so it need not wait; at once by default.
  int64_t first_retry_ns = 0;
  int64_t retry_backoff_ns = 5'000'000;   // before the third round; doubles each round
  int64_t max_retry_backoff_ns = 1'000'000'000;
  // A shard waiting for room that no live peer has (as gossiped) looks at the view again
  // this often, sending nothing; it probes anyway after max_retry_backoff.
  int64_t view_recheck_ns = 100'000'000;
  uint32_t shrink_from_round = 2;         // may_shrink from this round on (0: never)
  int64_t award_retry_ns = 20'000'000;
  uint32_t award_attempts = 4;
  int64_t lease_ttl_ns = 10'000'000'000;  // renewed every ttl/4
  bool include_self = true;               // this host may be a candidate too
  // When the choice among a shard's offers cannot matter (its workflow has no budget limit
  // and no spread, and the view shows room for it, on the first-ranked host for two like
  // it at least), its first-ranked probe asks for a lease at once (BidRequest.lease_ttl_ms):
  // an offer from it places the shard in one round trip, and the other probes are the
  // fallback (declined when it leases). Off: every probe awaits an Award, as before.
  bool lease_at_once = true;
  // How many of a shard's d probes ask for the lease at once, in rank order, each only where
  // the view shows room for two like it on that host: the first lease to come back places
  // the shard and the others are released (a Decline, or a Release when late), so with
  // more than one the shard takes the quickest of their round trips (docs/MESH.md).
  uint32_t at_once_probes = 2;
  uint64_t seed = 1;
};

struct PlacementEvent {
  enum class Kind {
    kAwarded,  // the shard is placed: a lease on `host` with `grant`
    kChanged,  // the lease's grant changed (shrunk for higher-score work, or grew back)
    kLost,     // the lease is gone (reclaimed, unrenewable, host down): place it again
  };
  Kind kind = Kind::kAwarded;
  std::string shard;
  std::string workflow;
  std::string host;
  std::string lease_id;  // LeaseId(owner, request id): the holder on `host`
  workflow::Resources grant;
  std::string cost_class;
  double cost_per_hour = 0;
  int64_t ready_ns = 0;  // when it was submitted
  int64_t at_ns = 0;
  uint32_t rounds = 0;   // sampling rounds it took
  std::string reason;
  bool host_down = false;  // kLost: membership declared its host dead (PeerDown)
  // kAwarded: where the time went, on this owner's clock, in its last round (docs/MESH.md,
  // "Placement benchmarks"): its probes went out, the first answer came (0: none came before
  // the decision), the award went out (after offer_wait ran out with probes unanswered:
  // decided_by_timer). at_ns is when the Leased came.
  int64_t probed_ns = 0;
  int64_t first_answer_ns = 0;
  int64_t decided_ns = 0;
  bool decided_by_timer = false;
  bool leased_at_once = false;  // the offer was a lease already: no Award went
  // What the winning host said it waited before answering the bid request and the award
  // (Offer.wait_us, Leased.wait_us; 0 from older peers), in microseconds.
  uint32_t offer_wait_us = 0;
  uint32_t award_wait_us = 0;
};

struct NegotiatorOutput {
  std::vector<PlacementOutgoing> messages;
  std::vector<PlacementEvent> events;
};

struct NegotiatorStats {
  uint64_t submitted = 0;
  uint64_t rounds = 0;          // sampling rounds (one per shard per try)
  uint64_t probes = 0;          // BidRequests sent
  uint64_t offers = 0;
  uint64_t refusals = 0;
  uint64_t queued = 0;          // probes a candidate queued for lack of room
  uint64_t no_answer = 0;       // probes unanswered at the round's deadline
  uint64_t no_candidates = 0;   // times there was no live peer to ask
  uint64_t deferred = 0;        // times a waiting shard saw no room in the view and waited
  uint64_t declined = 0;        // Declines sent (losing and late offers)
  uint64_t duplicates = 0;
  uint64_t stale = 0;           // about requests no longer current
  uint64_t awards = 0;          // kAwarded events
  uint64_t award_failures = 0;  // awards answered Reclaimed or never answered
  uint64_t renewals = 0;
  uint64_t leases_lost = 0;
  uint64_t room_reports = 0;    // answers that said the candidate's room (newer peers)
  uint64_t leased_at_once = 0;  // of the awards, offers leased at once (no Award round trip)
};

class Negotiator {
 public:
  Negotiator(std::string self, NegotiatorOptions options);

  const std::string& self() const { return self_; }

  // Queues a ready shard for the next Tick. InvalidArgument for an empty or known id, a min
  // above its want, or a shard that wants nothing.
  Status Submit(ShardRequest shard, int64_t now_ns);
  // Samples the queued shards and runs the timers due by now (round deadlines, award
  // resends, renewals). `peers` is the membership view with each peer's headroom.
  void Tick(int64_t now_ns, std::span<const PlacementPeer> peers, NegotiatorOutput* out);
  // A message from host `from` that ForBidder() does not route to the bidder.
  void Handle(const std::string& from, const wire::PlacementMessage& msg, int64_t now_ns,
              NegotiatorOutput* out);
  // The shard is done or cancelled: its lease is released, or its negotiation stopped and
  // its holds declined. NotFound for a shard it does not know.
  Status Release(const std::string& shard, int64_t now_ns, NegotiatorOutput* out);
  // A lease this owner held before it restarted (docs/MESH.md, "Running shards on other
  // hosts"): the shard is leased again on `host` under `request_id` with `grant`, renewed at
  // once and then as any lease, and lost as any lease (Reclaimed, unanswered for a ttl, the
  // host down). InvalidArgument for an empty or known shard or request id, or no host.
  Status Resume(ShardRequest shard, const std::string& host, const std::string& request_id,
                const workflow::Resources& grant, int64_t now_ns);
  // Membership declared `host` dead (or it left): its leases are lost, its probes count as
  // refused, an award to it is given up.
  void PeerDown(const std::string& host, int64_t now_ns, NegotiatorOutput* out);
  // When Tick must next run.
  std::optional<int64_t> NextDeadline() const;

  size_t pending() const;  // submitted and not yet leased
  size_t leased() const;
  // What its awards have charged to `workflow`'s budget (predicted costs).
  double Charged(const std::string& workflow) const;
  const NegotiatorStats& stats() const { return stats_; }

 private:
  struct Probe {
    std::string host;
    std::string zone;
    enum class State { kWaiting, kQueued, kOffered, kRefused } state = State::kWaiting;
    wire::Offer offer;
  };
  enum class Phase { kQueued, kProbing, kAwarding, kLeased };
  struct Shard {
    ShardRequest req;
    int64_t ready_ns = 0;
    Phase phase = Phase::kQueued;
    uint32_t round = 0;
    std::string request_id;  // the current round's
    std::vector<Probe> probes;
    int64_t due_ns = 0;      // its timer
    int64_t last_probe_ns = 0;  // when its current round's probes went out
    int64_t first_answer_ns = 0;  // the current round's first answer (0: none yet)
    int64_t decided_ns = 0;       // the award went out
    bool decided_by_timer = false;
    bool leased_at_once = false;
    uint32_t award_wait_us = 0;   // the Leased's wait_us
    // Awarding and leased:
    std::string host, zone;
    wire::Offer won;
    double cost = 0;          // predicted, charged to the budget
    bool debited = false;     // its grant is in the host's debit (no room report had it)
    uint32_t award_tries = 0;
    int64_t last_ack_ns = 0;
    workflow::Resources grant;
  };

  void SetTimer(const std::string& id, Shard& s, int64_t at);
  void Sample(std::vector<std::string> batch, int64_t now, std::span<const PlacementPeer> peers,
              NegotiatorOutput* out);
  // `by_timer`: offer_wait ran out (some probes may be unanswered).
  void Decide(const std::string& id, Shard& s, int64_t now, bool by_timer, NegotiatorOutput* out);
  // `best` (one of s.probes, or none) wins: the other probes that may hold something are
  // declined; the winner's grant is charged to the workflow and debited from its host.
  void Take(Shard& s, const Probe* best, int64_t now, bool by_timer, NegotiatorOutput* out);
  // Whether an offer is one the shard can take: its grant within [min, want], its predicted
  // cost within the workflow's budget.
  bool Acceptable(const Shard& s, const wire::Offer& o) const;
  void Declined(const Probe& p);  // its hold given back: room again in the view
  // After a probe answered: decide once none waits and one offered (or all refused); while
  // the others are only queued, wait for the first of them to find room.
  void Answered(const std::string& id, Shard& s, int64_t now, NegotiatorOutput* out);
  void Retry(const std::string& id, Shard& s, int64_t at);
  int64_t Backoff(uint32_t round) const;  // before the round after `round`
  int64_t RenewEvery() const;
  // An award that did not take: charge, zone count and debit given back.
  void Unaward(Shard& s);
  void Forget(const std::string& id);
  void Lose(const std::string& id, Shard& s, int64_t now, std::string reason, NegotiatorOutput* out);
  void Send(NegotiatorOutput* out, const std::string& to, wire::PlacementMessage msg);
  void SendAward(const Shard& s, NegotiatorOutput* out);
  void SendSimple(NegotiatorOutput* out, const std::string& to, const std::string& request_id,
                  bool release);  // a Release, else a Decline
  PlacementEvent Event(PlacementEvent::Kind kind, const Shard& s, int64_t now,
                       std::string reason) const;
  double BudgetLeft(const Shard& s) const;

  std::string self_;
  NegotiatorOptions o_;
  std::mt19937_64 rng_;
  std::map<std::string, Shard> shards_;             // by shard id
  std::map<std::string, std::string> by_request_;   // current request id -> shard id
  std::set<std::pair<int64_t, std::string>> timers_;
  std::map<std::string, double> charged_;           // by workflow
  std::map<std::string, std::map<std::string, int>> placed_;  // workflow -> zone -> shards
  struct Debit {
    uint64_t version = 0;
    workflow::Resources granted;  // awarded since that headroom version (or room report)
    bool refused = false;         // refused a request since then, its room unknown or enough
    // The room the host last said it had (an Offer's room) since that headroom version: its
    // free room now, replacing the gossiped headroom; awards of holds it already counted
    // are not debited again.
    std::optional<workflow::Resources> room;
    workflow::Resources held;  // of the granted there, held for offers not yet awarded
  };
  // What this owner's view says `p` has free over `seconds`: with a room report, the room
  // plus the share of the holds that will be declined ((d-1)/d of them).
  workflow::Resources ViewFree(const PlacementPeer& p, const Debit& d, double seconds) const;
  // An answer from `from` said its room: the owner's view of the host is corrected.
  void NoteRoom(const std::string& from, const wire::Offer& o);
  std::unordered_map<std::string, Debit> debits_;   // by host (only hosts it probed)
  NegotiatorStats stats_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_NEGOTIATOR_H_
