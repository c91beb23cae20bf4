// BidDesk: answers the simplest bid requests on the mesh thread, as they arrive, so that a
// lease at once (docs/MESH.md, "Placement negotiation and leases", At once) costs the owner
// one round trip between two mesh threads instead of one through both hosts' engine threads
// (two thread hand-offs less on the candidate: its engine thread's wake-up and its wait,
// and the mesh thread's wake-up for the answer).
//
// The Bidder (bidder.h) stays the one authority over the ledger; the desk only promises
// what the bidder has said it has room for:
//   Publish   the engine thread says the room the bidder has for a newcomer (BidderRoom,
//             as its offers say it), after every change it makes to the ledger.
//   Answer    on the mesh thread, a BidRequest that asks for a lease at once, that this
//             desk has not seen before, whose backend is here and whose whole want fits
//             the published room (exactly: the ledger would grant all of it, shrinking
//             nothing) less what the desk has promised and the bidder not yet taken up:
//             answered at once with the offer the bidder would make (TermsOf, leased),
//             and the promise noted. Anything else is left to the bidder.
//   Settle    on the engine thread, around every act of the bidder: it grants no one the
//             room promised and not yet taken up (so a request the desk left to it cannot
//             take a promise's room); when it handles a promised request (the message is
//             still handed to it, after the desk's answer) the promise is taken up and the
//             room published after it, in one step. The caller checks that the bidder leased
//             the same grant; when it did not (the local engine's own admissions, which do
//             not see promises, took the room meanwhile), the promise is broken and its
//             owner told (Reclaimed), which places the shard again: no grant is ever made
//             twice, at worst a shard is re-placed.
// Thread safety: every method may be called from any thread (one mutex, held briefly; Settle
// holds it while the bidder acts on one message or tick).
#ifndef AUGUR_MESH_BID_DESK_H_
#define AUGUR_MESH_BID_DESK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "mesh/bidder.h"
#include "mesh/placement_codec.h"
#include "workflow/resources.h"

namespace augur::mesh {

struct BidDeskStats {
  uint64_t answered = 0;   // leases at once answered on the mesh thread
  uint64_t forwarded = 0;  // bid requests left to the bidder
};

class BidDesk {
 public:
  // `options` are the bidder's (its backends, startup, the longest lease); with
  // lease_at_once off the desk answers nothing.
  explicit BidDesk(BidderOptions options);

  // Engine thread: the room the bidder has now (Bidder::RoomNow).
  void Publish(const BidderRoom& room);
  // Mesh thread: the answer to send back to `from` at once, if the desk can make it.
  std::optional<wire::PlacementMessage> Answer(const std::string& from,
                                               const wire::PlacementMessage& msg,
                                               int64_t now_ns);
  // The same for a placement message's bytes (undecodable ones are left to the bidder,
  // which counts them): the encoded answer.
  std::optional<std::string> Answer(const std::string& from, std::string_view payload,
                                    int64_t now_ns);
  // Engine thread: runs `act(promised)`, in which the bidder acts on the ledger, with the
  // desk held so that no promise is made meanwhile; `promised` is what the desk has
  // promised and the bidder not yet taken up, but `holder`'s own (a LeaseId; "": none): room
  // the bidder must grant to no one else (Bidder::SetPromised). Then `holder`'s promise is
  // taken up (the offer the desk sent, returned) and `room()` published, in the same step,
  // so that the room the desk sees never misses a grant or a promise.
  std::optional<wire::Offer> Settle(const std::string& holder,
                                    const std::function<void(const workflow::Resources&)>& act,
                                    const std::function<BidderRoom()>& room);

  BidDeskStats stats() const;

 private:
  // Requests seen are remembered this long (a duplicate within it is left to the bidder,
  // which answers duplicates; owners resend within hold times of at most a second).
  static constexpr int64_t kRememberNs = 60'000'000'000;

  BidderOptions o_;
  mutable std::mutex mu_;
  bool published_ = false;  // nothing is promised before the engine thread says its room
  BidderRoom room_;
  workflow::Resources promised_;              // the sum of promises_' grants
  std::map<std::string, wire::Offer> promises_;  // by holder, not yet taken up
  std::set<std::string> seen_;                   // holders of requests seen
  std::deque<std::pair<int64_t, std::string>> seen_order_;
  BidDeskStats stats_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_BID_DESK_H_
