// Bidder: the candidate side of placement negotiation (docs/MESH.md, "Placement
// negotiation and leases"). It answers an owner's BidRequest from this host's own
// workflow::Ledger, the same one the local engine admits its shards into, so that local and
// remote work share one capacity and nothing is granted twice.
//
//   BidRequest  the ledger plans the admission (PlanAdmit: the most of `want` that fits,
//               at least `min`; lower-score grants shrunk toward their minimums only when
//               the request says may_shrink). An admission is applied at once as a HOLD:
//               a ledger grant held by LeaseId(owner, request_id), which counts against the
//               capacity like any grant, for the hold time. The Offer says the grant, the
//               predicted start and finish (the shard's predicted time, stretched when it
//               gets less CPU than it wants), and the cost at the cheapest cost class that
//               fits (workflow::ChooseClass). No room: an Offer that says why it refuses.
//   Award       the hold becomes a LEASE (same ledger grant, same holder) that lasts ttl;
//               kLeased tells the executor to start the shard; Leased answers the owner.
//   at once     a request that asks for it (lease_ttl_ms) is offered a LEASE straight
//               away instead of a hold (Offer.leased, kLeased at once): one round trip. A
//               Decline of such a lease releases it (its owner took another offer, or gave
//               up waiting for this one).
//   no room     a request that asks to (queue_ms) waits in a queue, best score then
//               oldest first, and is told so (an Offer marked queued); when room frees
//               (a release, a decline, an expiry, or Tick after the local engine freed some)
//               the queue is served first and each request that fits gets its hold and
//               offer then: Sparrow's late binding. A newcomer meanwhile is admitted only in
//               the room beyond the queued requests' minimums, so a large request is not
//               starved by a stream of small ones. Unserved after queue_ms: refused.
//   room        every Offer it sends (an offer, a refusal, a queued answer) carries what
//               this host has free for a newcomer as the answer leaves (after the offer's
//               hold; less the queued requests' minimums), so the owner corrects its view
//               of the host at once rather than at its next gossiped headroom.
//   Decline     the hold (or queued request) is dropped. A hold neither awarded nor
//               declined expires.
//   Renew       the lease lasts another ttl; Leased answers with its grant now.
//   Release     the lease ends (kReleased: stop the shard if it still runs).
//   expiry      a lease not renewed in time is reclaimed: its grant released, kReclaimed
//               (stop the shard), and Reclaimed tells the owner, which re-places it.
// Every request is answered idempotently: a duplicate BidRequest gets the same Offer again,
// a duplicate Award the same Leased; a request once decided (declined, released, expired)
// is remembered for `remember_ns`, so a late or duplicated BidRequest or Award never
// creates a second hold or revives a lease (an Award then gets Reclaimed). A Decline or
// Release that overtakes its BidRequest is remembered the same way.
//
// Changes the bidder makes to other grants (shrinks or pre-emptions that make room, grow-
// back of its leases when room returns) are applied to the ledger and returned for the
// executor to carry out; owners of leases so changed are told (LeaseChanged, Reclaimed).
// Changes the local engine makes to the shared ledger are fed back through
// NoteLedgerChanges for the same reason.
//
// Pure: messages, the ledger and a clock in; messages, events and grant changes out. No
// I/O, no threads, no clock of its own. Thread safety: one thread (the caller's loop, which
// also owns the ledger).
#ifndef AUGUR_MESH_BIDDER_H_
#define AUGUR_MESH_BIDDER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mesh/headroom_summary.h"
#include "mesh/placement_codec.h"
#include "workflow/ledger.h"
#include "workflow/store.h"

namespace augur::mesh {

struct BidderOptions {
  int64_t default_hold_ns = 200'000'000;  // when a request asks for no hold time
  int64_t max_hold_ns = 1'000'000'000;    // a hold lasts min(asked, this)
  int64_t max_ttl_ns = 60'000'000'000;    // a lease (or renewal) lasts min(asked, this)
  int64_t remember_ns = 300'000'000'000;  // how long decided requests are remembered
  double startup_s = 0;                   // predicted delay from award to start
  // This host's backends and their cost classes (as in its headroom summary). A request
  // for a backend not listed is refused; one for any backend ("") may use every class.
  std::vector<BackendCosts> backends;
  size_t max_queue = 256;                 // requests waiting for room, at most
  int64_t max_queue_ns = 10'000'000'000;  // a request waits min(asked, this)
  // Offers say this host's room (Offer.room). Off: answers as a peer from before the field
  // (tests and the simulation compare the two, and mix them).
  bool report_room = true;
  // A request that asks for it (BidRequest.lease_ttl_ms) gets its grant as a lease at once,
  // without an Award. Off: answers as a peer from before the field (a hold awaiting one).
  bool lease_at_once = true;
};

// What an offer says for a request admitted with a grant: the grant, the predicted start and
// finish (the request's predicted time, stretched when it gets less CPU than it wants), the
// cost at the cheapest class that fits (workflow::ChooseClass) and the hold. The Bidder's
// offers and the BidDesk's (bid_desk.h) are made by the same rules.
struct OfferTerms {
  wire::Offer offer;  // request_id, grant, start_ms, finish_ms, cost, class, hold_ms
  int64_t hold_ns = 0;
};
// The cost classes a request for `backend` ("": any) may use here; nullopt: no such backend.
std::optional<std::vector<workflow::CostClass>> ClassesFor(const BidderOptions& options,
                                                           const std::string& backend);
OfferTerms TermsOf(const BidderOptions& options, const wire::BidRequest& request,
                   const std::vector<workflow::CostClass>& classes,
                   const workflow::Resources& grant);

// What every offer says of the host's room as it leaves (Offer.room, Offer.held).
struct BidderRoom {
  workflow::Resources room;  // free for a newcomer: the ledger's free less queued minimums
  workflow::Resources held;  // of the granted, what is only held (awaiting an award)
};

struct BidderEvent {
  enum class Kind {
    kLeased,     // an offer was awarded: start the shard under lease_id with `grant`
    kReleased,   // its owner released the lease: stop the shard if it still runs
    kReclaimed,  // the lease expired unrenewed or was pre-empted: stop the shard
  };
  Kind kind = Kind::kLeased;
  std::string lease_id;  // the ledger holder
  std::string owner;
  std::string request_id;
  std::string shard;
  std::string backend;     // "" any
  std::string cost_class;  // "" free
  workflow::Resources grant;
  std::string reason;
};

struct BidderOutput {
  std::vector<PlacementOutgoing> messages;
  std::vector<BidderEvent> events;
  // Changes applied to running grants (local attempts and leases, never holds): resize or
  // stop what runs under each holder.
  std::vector<workflow::GrantChange> changes;
};

struct BidderStats {
  uint64_t requests = 0;       // BidRequests acted on (not duplicates)
  uint64_t offers = 0;
  uint64_t refusals = 0;
  uint64_t duplicates = 0;     // repeated messages answered as before
  uint64_t stale = 0;          // about a request already decided or unknown
  uint64_t holds_expired = 0;
  uint64_t declines = 0;
  uint64_t leases = 0;
  uint64_t leased_at_once = 0;    // of them, leases made at the request (no Award)
  uint64_t renewals = 0;
  uint64_t releases = 0;
  uint64_t leases_reclaimed = 0;  // expired or pre-empted
  uint64_t queued = 0;            // requests that waited for room
  uint64_t queue_expired = 0;     // waited queue_ms in vain (refused then)
};

class Bidder {
 public:
  Bidder(std::string self, BidderOptions options);

  const std::string& self() const { return self_; }

  // A message from host `from` that ForBidder() routes here (others are counted stale).
  void Handle(const std::string& from, const wire::PlacementMessage& msg, int64_t now_ns,
              workflow::Ledger& ledger, BidderOutput* out);
  // Expires holds, leases and queued requests due by now, and serves the queue from what is
  // free. Call at NextDeadline(), and after the local engine frees room.
  void Tick(int64_t now_ns, workflow::Ledger& ledger, BidderOutput* out);
  // Changes the local engine applied to the shared ledger (its admissions' shrinks and
  // pre-emptions, its grow-back): those that touch a lease are told to its owner.
  void NoteLedgerChanges(const std::vector<workflow::GrantChange>& changes, int64_t now_ns,
                         BidderOutput* out);
  // A lease granted before this host restarted (its record, workflow::LeaseRecord): held
  // again in the ledger (its grant, or what still fits of it, at least its min) for a fresh
  // ttl (the owner may have renewed it meanwhile), and its owner sent Leased, so that an
  // owner that no longer holds it answers Release at once. InvalidArgument for a lease id
  // that is not LeaseId(owner, request id) or is known; ResourceExhausted when its min no
  // longer fits (the caller then treats the lease as gone).
  Status Restore(const workflow::LeaseRecord& lease, int64_t now_ns, workflow::Ledger& ledger,
                 BidderOutput* out);
  // The time left on a lease (0 for none): what a persisted lease is given after a restart.
  int64_t TtlLeft(const std::string& lease_id, int64_t now_ns) const;
  // When Tick must next run: the earliest hold, lease or queue expiry.
  std::optional<int64_t> NextDeadline() const;
  // This host's room now, as its offers say it (whole millicores and bytes, rounded down),
  // before what is promised elsewhere (SetPromised).
  BidderRoom RoomNow(const workflow::Ledger& ledger) const;
  // Room promised elsewhere (the BidDesk's leases at once, not yet handed here): granted to
  // no other request, grown into by no lease, and not said as room in offers.
  void SetPromised(const workflow::Resources& promised) { promised_ = promised; }

  size_t holds() const;
  size_t leases() const;
  size_t queued() const { return queued_.size(); }
  // Whether `lease_id` (a ledger holder) is a hold or lease of this bidder.
  bool Owns(const std::string& lease_id) const { return entries_.contains(lease_id); }
  const BidderStats& stats() const { return stats_; }

 private:
  struct Entry {
    bool leased = false;
    std::string owner, request_id, shard, backend, cost_class;
    wire::Offer offer;  // resent on a duplicate request
    int64_t expires_ns = 0;
  };

  struct Queued {
    std::string owner;
    wire::BidRequest bid;
    std::pair<double, uint64_t> key;  // (-score, arrival): its place in queue_
    int64_t expires_ns = 0;
  };

  void HandleMessage(const std::string& from, const wire::PlacementMessage& msg, int64_t now,
                     workflow::Ledger& ledger, BidderOutput* out);
  void Expire(int64_t now, workflow::Ledger& ledger, BidderOutput* out);  // Tick's work
  // Sets the room on the Offers among out->messages from `first` on.
  void StampRoom(size_t first, const workflow::Ledger& ledger, BidderOutput* out) const;
  void OnBidRequest(const std::string& from, const wire::BidRequest& b, int64_t now,
                    workflow::Ledger& ledger, BidderOutput* out);
  // kDone: it offered (holding the grant) or refused for a reason other than room. Else
  // there is no room beyond `reserved` (or only by shrinking, which the request does not
  // allow), and nothing was sent.
  enum class Tried { kDone, kNoRoom, kNeedsShrink };
  Tried TryOffer(const std::string& from, const wire::BidRequest& b, int64_t now,
                const workflow::Resources& reserved, workflow::Ledger& ledger, BidderOutput* out);
  // Room may have come back: queued requests get offers, then shrunk leases grow back.
  void RoomFreed(int64_t now, workflow::Ledger& ledger, BidderOutput* out);
  workflow::Resources QueueReserve() const;  // the minimums of the queued requests
  // Drops a queued request (remembered as decided unless it became a hold). False if none.
  bool Dequeue(const std::string& holder, int64_t now, bool remember = true);
  void SendQueued(const std::string& to, const std::string& request_id, BidderOutput* out);
  void Refuse(const std::string& to, const std::string& request_id, std::string why,
              BidderOutput* out, bool count = true);
  void SendLeased(const std::string& holder, int64_t now, const workflow::Ledger& ledger,
                  BidderOutput* out);
  void SendReclaimed(const std::string& to, const std::string& request_id, std::string reason,
                     BidderOutput* out);
  // Records changes applied to the ledger: to the executor (unless a hold), to lease owners.
  void Report(const std::vector<workflow::GrantChange>& changes, int64_t now, bool from_engine,
              BidderOutput* out);
  // Ends an entry (hold or lease): its grant released, remembered as decided.
  void End(const std::string& holder, int64_t now, workflow::Ledger& ledger);
  void Remember(const std::string& holder, int64_t now);
  void Forget(int64_t now);  // drops what was decided more than remember_ns ago
  void SetExpiry(const std::string& holder, Entry& e, int64_t at);
  void GrowLeases(int64_t now, workflow::Ledger& ledger, BidderOutput* out);

  std::string self_;
  BidderOptions o_;
  std::map<std::string, Entry> entries_;                 // by holder (LeaseId)
  std::map<std::string, Queued> queued_;                 // by holder
  std::map<std::pair<double, uint64_t>, std::string> queue_;  // in offer order
  uint64_t next_seq_ = 0;
  std::set<std::pair<int64_t, std::string>> expiries_;   // (expires_ns, holder): all three
  std::map<std::string, int64_t> decided_;               // holder -> forget at
  std::deque<std::pair<int64_t, std::string>> forget_;   // in time order
  BidderStats stats_;
  workflow::Resources promised_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_BIDDER_H_
