// Fuzzes what the mesh's placement channel takes from peers (src/mesh/placement_codec.h) and
// the two state machines behind it, the Bidder (candidate side, granting from a ledger) and
// the Negotiator (owner side).
//  - DecodePlacement never crashes; what it refuses is a Corruption with a message; what it
//    accepts encodes again and decodes to the same message, has a request id, and a request
//    that can be granted (min <= want).
//  - The input is also read as frames [from][time][len lo][len hi][payload]: each payload that
//    decodes goes to the bidder or the negotiator (as ForBidder says), as from one of four
//    peers, with virtual time advancing and both ticked. Whatever the messages, the ledger
//    never grants more than its capacity, every message either side sends passes
//    DecodePlacement, and every lease the bidder holds is in the ledger.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/bidder.h"
#include "mesh/negotiator.h"
#include "mesh/placement_codec.h"
#include "workflow/ledger.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;
using augur::workflow::Resources;

using augur::fuzz::Require;

const char* const kPeers[] = {"h1", "h2", "h3", "h0"};  // h0 is the host itself
constexpr Resources kCapacity{4.0, 8ULL << 30};

void CheckDecoder(std::string_view bytes) {
  auto m = DecodePlacement(bytes);
  if (!m) {
    Require(m.error().IsCorruption(), "a refusal that is not a Corruption");
    Require(!m.error().message().empty(), "a refusal without a message");
    return;
  }
  Require(!RequestIdOf(*m).empty() && RequestIdOf(*m).size() <= kMaxPlacementIdBytes,
          "accepted a request id out of bounds");
  if (m->has_bid_request()) {
    const Resources want = FromAmount(m->bid_request().want());
    const Resources min = FromAmount(m->bid_request().min());
    Require(min.FitsIn(want), "accepted a request whose min is above its want");
  }
  auto again = EncodePlacement(*m);
  Require(again.has_value(), "an accepted message does not encode");
  auto back = DecodePlacement(*again);
  Require(back.has_value() && back->SerializeAsString() == m->SerializeAsString(),
          "an accepted message does not round-trip");
}

void CheckSent(const std::vector<PlacementOutgoing>& messages) {
  for (const PlacementOutgoing& o : messages) {
    auto bytes = EncodePlacement(o.msg);
    Require(bytes.has_value(), "a side made a message it cannot encode");
    Require(DecodePlacement(*bytes).has_value(), "a side sent a message peers refuse");
  }
}

void RunFrames(std::string_view bytes) {
  augur::workflow::Ledger ledger(kCapacity);
  Bidder bidder("h0", BidderOptions{});
  NegotiatorOptions no;
  no.seed = 1;
  Negotiator negotiator("h0", no);
  // Peers with room, so that the negotiator has candidates to talk to.
  std::vector<PlacementPeer> peers;
  for (const char* name : kPeers) {
    PlacementPeer p;
    p.name = name;
    p.alive = true;
    p.headroom.horizons = {{0, kCapacity, kCapacity}, {600, kCapacity, kCapacity}};
    p.headroom.backends = {{"process", {}}};
    peers.push_back(p);
  }
  int64_t now = 0;
  // Two shards of this host's own, so that offers and leases from peers meet requests.
  for (int k = 0; k < 2; ++k) {
    ShardRequest r;
    r.shard = "wf/s/" + std::to_string(k) + "#1";
    r.workflow = "wf";
    r.want = {1.0, 1ULL << 30};
    r.min = {0.5, 512ULL << 20};
    r.predicted_s = 10;
    r.backend = "process";
    (void)negotiator.Submit(r, now);
  }
  NegotiatorOutput nout;
  negotiator.Tick(now, peers, &nout);
  CheckSent(nout.messages);
  size_t i = 0;
  while (i + 4 <= bytes.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(bytes[i + k]); };
    const std::string from = kPeers[u(0) % 4];
    now += int64_t(u(1)) * 10'000'000;  // up to 2.55 s between frames
    const size_t len = std::min<size_t>(u(2) | (size_t(u(3)) << 8), bytes.size() - i - 4);
    const std::string_view payload = bytes.substr(i + 4, len);
    i += 4 + len;
    BidderOutput bout;
    NegotiatorOutput n;
    if (auto msg = DecodePlacement(payload)) {
      if (ForBidder(*msg)) {
        bidder.Handle(from, *msg, now, ledger, &bout);
      } else {
        negotiator.Handle(from, *msg, now, &n);
      }
    }
    bidder.Tick(now, ledger, &bout);
    negotiator.Tick(now, peers, &n);
    CheckSent(bout.messages);
    CheckSent(n.messages);
    const Resources granted = ledger.Granted();
    Require(granted.cpu <= kCapacity.cpu + 1e-6 && granted.memory <= kCapacity.memory,
            "the ledger granted more than its capacity");
    // Only the bidder grants from this ledger: every grant is one of its holds or leases.
    for (const auto& [holder, grant] : ledger.grants()) {
      Require(bidder.Owns(holder), "a grant in the ledger that the bidder does not hold");
    }
    Require(bidder.holds() + bidder.leases() == ledger.grants().size(),
            "the bidder's holds and leases differ from the ledger's grants");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckDecoder(bytes);
  RunFrames(bytes);
  return 0;
}
