// PlacementCluster: many hosts running the placement cores (each with its Negotiator, its
// Bidder and its own workflow::Ledger) over a SimNetwork in virtual time, with headroom
// gossip and failure detection modelled around them. For the mesh's protocol tests
// (tests/mesh/) and the large-N simulation (bench/mesh/placement_sim.cc): the same code the
// daemon runs, driven by one seeded event loop instead of sockets and threads.
//
// Every placement message is encoded (EncodePlacement) and decoded (DecodePlacement) on
// its way through the simulated network, so the wire checks run as well. Gossip is
// modelled, not simulated message by message: every gossip_period each host encodes its
// headroom summary (its ledger's free room at every horizon, its backends and zone), and
// the summary becomes every owner's view of it dissemination_ns later, with a new version
// when it changed. A host set down stops processing and its messages are lost; the others'
// views mark it dead, and their negotiators hear PeerDown, detect_ns later.
//
// Thread safety: none; one thread drives it.
#ifndef AUGUR_MESH_PLACEMENT_CLUSTER_H_
#define AUGUR_MESH_PLACEMENT_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "augur/status.h"
#include "mesh/bidder.h"
#include "mesh/headroom_summary.h"
#include "mesh/negotiator.h"
#include "mesh/sim_network.h"
#include "workflow/ledger.h"

namespace augur::mesh {

struct ClusterHost {
  std::string name;
  std::string zone;
  workflow::Resources capacity;
  std::vector<BackendCosts> backends;  // also the bidder's
  // Its bidder answers as a peer from before the room and at-once fields (BidderOptions::
  // report_room, lease_at_once off).
  bool older_peer = false;
};

struct ClusterOptions {
  NegotiatorOptions negotiator;  // each host's seed is derived from `seed` and its index
  BidderOptions bidder;          // backends come from each ClusterHost
  workflow::LedgerOptions ledger;
  SimLinkFaults faults;
  int64_t gossip_period_ns = 1'000'000'000;
  int64_t dissemination_ns = 500'000'000;
  int64_t detect_ns = 2'000'000'000;  // from a host going down to PeerDown everywhere
  std::vector<uint32_t> horizons_s = {0, 60, 600};
  uint64_t seed = 1;
};

class PlacementCluster {
 public:
  PlacementCluster(std::vector<ClusterHost> hosts, ClusterOptions options);
  ~PlacementCluster();

  int64_t now_ns() const { return now_; }
  size_t size() const { return hosts_.size(); }
  const std::string& name(size_t i) const;
  SimNetwork& net() { return net_; }

  // At the current time; the owner samples it (with the others submitted at the same
  // time) when the loop next runs.
  Status Submit(const std::string& owner, ShardRequest shard);
  Status Release(const std::string& owner, const std::string& shard);
  // Runs `fn` at virtual time `at_ns` (>= now), in order with the cluster's own events.
  void At(int64_t at_ns, std::function<void()> fn);
  // Processes every event due by `until_ns` in time order; then now is until_ns.
  void RunUntil(int64_t until_ns);
  // When the next event is due (nullopt: nothing will ever happen again).
  std::optional<int64_t> NextAt() const;
  // Takes a host down (it stops; messages to and from it are lost; detect_ns later every
  // other host's view marks it dead and its negotiator hears PeerDown).
  void SetDown(const std::string& host);
  // Stops a host's negotiator only (as if its owner role died): its leases go unrenewed.
  void StopOwner(const std::string& host);

  workflow::Ledger& ledger(const std::string& host);
  // Raised each time host i's bidder runs (a message, a timer): its ledger may have changed
  // only then, so a caller that reads every ledger re-reads only those whose count moved.
  uint64_t ledger_epoch(size_t i) const { return ledger_epochs_.at(i); }
  const Negotiator& negotiator(const std::string& host) const;
  const Bidder& bidder(const std::string& host) const;
  const std::vector<PlacementPeer>& view() const { return view_; }

  // Events out of the cores.
  std::function<void(const std::string& owner, const PlacementEvent&)> on_placement;
  std::function<void(const std::string& host, const BidderEvent&)> on_bidder;
  // Called after every event processed (property tests check invariants here).
  std::function<void()> after_event;

  // Placement messages sent, by body ("bid_request", ...), and counts of trouble.
  const std::map<std::string, uint64_t>& sent_by_kind() const { return sent_by_kind_; }
  uint64_t messages_sent() const;
  uint64_t bad_messages() const { return bad_messages_; }   // did not decode (must stay 0)
  uint64_t encode_errors() const { return encode_errors_; }  // must stay 0
  uint64_t gossip_bytes_max() const { return gossip_bytes_max_; }

 private:
  struct Host;
  struct Event {
    int64_t at;
    uint64_t seq;
    enum class Kind { kTimer, kGossip, kPublish, kDetect, kCall } kind;
    size_t host;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  size_t Index(const std::string& host) const;
  void Push(int64_t at, Event::Kind kind, size_t host);
  void Reschedule(size_t h);
  void Flush(size_t h, NegotiatorOutput& nout, BidderOutput& bout);
  void Deliver(const SimDelivery& d);
  void Gossip(size_t h);
  std::optional<int64_t> NextOwnAt() const;

  ClusterOptions o_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<PlacementPeer> view_;
  SimNetwork net_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::map<uint64_t, std::function<void()>> calls_;  // by event seq
  uint64_t seq_ = 0;
  int64_t now_ = 0;
  std::map<std::string, uint64_t> sent_by_kind_;
  uint64_t bad_messages_ = 0;
  uint64_t encode_errors_ = 0;
  uint64_t gossip_bytes_max_ = 0;
  std::vector<uint64_t> ledger_epochs_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_PLACEMENT_CLUSTER_H_
