// The placement messages (placement.proto) on the wire: encoding, the checks every message
// from a peer passes before the negotiator or the bidder sees it, and the small helpers
// both sides share (ids, amounts).
//
// Decode is where untrusted bytes stop: anything malformed, oversized, of another version,
// without a body or a request id, or with a request that cannot be granted (min above want)
// is a Corruption naming what is wrong; the caller counts and drops it.
//
// Pure functions; thread safety: none needed.
#ifndef AUGUR_MESH_PLACEMENT_CODEC_H_
#define AUGUR_MESH_PLACEMENT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "augur/status.h"
#include "mesh/placement.pb.h"
#include "workflow/resources.h"

namespace augur::mesh {

inline constexpr uint32_t kPlacementVersion = 1;
inline constexpr size_t kMaxPlacementBytes = 2048;
inline constexpr size_t kMaxPlacementIdBytes = 256;  // request ids, shard ids, reasons, names

// One message for the transport to carry to host `to` on the placement channel.
struct PlacementOutgoing {
  std::string to;
  wire::PlacementMessage msg;
};

// Sets the version and serializes. InvalidArgument when the message would not pass Decode
// on the other side (the same checks), so a bug here is caught before it leaves the host.
Result<std::string> EncodePlacement(wire::PlacementMessage msg);
// A message from a peer, checked (see above).
Result<wire::PlacementMessage> DecodePlacement(std::string_view bytes);

// The request id the message is about ("" for a message without a body).
const std::string& RequestIdOf(const wire::PlacementMessage& msg);
// True for what a candidate acts on (BidRequest, Award, Decline, Renew, Release), false for
// what the owner acts on (Offer, Leased, Reclaimed, LeaseChanged).
bool ForBidder(const wire::PlacementMessage& msg);
// "bid_request", "offer", ... for logs and counters.
std::string_view BodyName(const wire::PlacementMessage& msg);

// The lease an award of `request_id` by `owner` creates, and the ledger holder of its hold
// and then its lease on the candidate: "<owner>/<request_id>". Unique across owners, and
// never equal to a local attempt id (those have no host name in front).
std::string LeaseId(std::string_view owner, std::string_view request_id);

// Resources <-> the wire's Amount (CPU rounded to the nearest millicore).
wire::Amount ToAmount(const workflow::Resources& r);
workflow::Resources FromAmount(const wire::Amount& a);
// CPU rounded down to whole millicores: what can be granted and said exactly on the wire.
workflow::Resources FloorToMilli(const workflow::Resources& r);

}  // namespace augur::mesh

#endif  // AUGUR_MESH_PLACEMENT_CODEC_H_
