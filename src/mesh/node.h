// MeshNode: this host's place in the peer mesh (docs/MESH.md). It owns the transport
// (CurveZMQ, transport.h) and the membership state machine (SWIM with Lifeguard,
// membership.h) and runs them on one thread of their own: it receives, hands each payload
// to the part its channel names, ticks the protocol at the times it asks for, and sends what
// comes out. The protocol parts stay pure; this is the only place they meet sockets and
// the clock.
//
// Other threads read a snapshot of the members (Peers, PeersJson, PlacementView), set this
// host's gossiped metadata (SetMeta) and send (Send, on their own thread, through the
// transport's lock); none of it waits on the network.
//
// Thread safety: all public methods may be called from any thread.
#ifndef AUGUR_MESH_NODE_H_
#define AUGUR_MESH_NODE_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "augur/status.h"
#include "mesh/latency_histogram.h"
#include "mesh/membership.h"
#include "mesh/mesh_link.h"
#include "mesh/negotiator.h"
#include "mesh/transport.h"

namespace augur::mesh {

struct MeshNodeOptions {
  TransportOptions transport;   // host_name, listen, key files, max message
  std::string advertise;        // endpoint peers reach us at, e.g. "tcp://198.18.0.1:7946"
  std::string zone;
  std::vector<PeerAddress> seeds;
  MembershipConfig membership;
  uint64_t seed = 0;            // randomness of probe order; 0: from the clock
  // This often, a join goes to one host held dead or one seed not seen alive (node.cc
  // ReconnectTarget): how a start before the seeds and a healed partition are noticed.
  std::chrono::milliseconds rejoin_interval{2000};
  // This often the mesh thread logs its counters ("mesh: counters sent_msgs=... ", messages
  // and bytes of every channel, sent and received, and membership's own); 0: never.
  // bench/mesh/runner_augur.sh reads them.
  std::chrono::milliseconds counters_log_interval{10'000};
};

struct MeshNodeStats {
  TransportStats transport;
  MembershipStats membership;
  int local_health = 0;
  uint64_t loop_iterations = 0;
  uint64_t unaddressed = 0;     // sends to a host whose endpoint the members do not show
  uint64_t unhandled = 0;       // payloads on a channel nobody handles
  // Placement messages (Channel::kPlacement; docs/MESH.md "Placement benchmarks"): how long
  // each one sent took in Send (the transport's lock, the envelope, ZeroMQ taking it), and
  // each one received took from the sender's stamp to its dispatch here (the senders' ZeroMQ
  // and CURVE, the network, this host's, and this thread's wake-up; as good as the two
  // clocks agree).
  LatencyHistogram placement_send;
  LatencyHistogram placement_transit;
};

class MeshNode {
 public:
  // Binds the transport and starts the thread, which joins through the seeds.
  static Result<std::unique_ptr<MeshNode>> Start(MeshNodeOptions options);
  // Leaves gracefully (the leave is gossiped for up to `leave_grace`) and stops.
  ~MeshNode();
  void Stop(std::chrono::milliseconds leave_grace = std::chrono::milliseconds(500));

  std::vector<Member> Peers() const;  // every known member, this host included
  std::string PeersJson() const;      // for `augurctl peers --json`
  MeshNodeStats Stats() const;
  void SetMeta(std::string meta);     // gossiped with this host (e.g. its headroom summary)
  // Called on the mesh thread for each membership change (after it is applied).
  void OnEvent(std::function<void(const MembershipEvent&)> fn);
  // Called on the mesh thread with each payload that arrives on `ch` (placement, data,
  // replication); it must not block (post to another thread). Set before traffic comes:
  // payloads of a channel without a handler are dropped and counted.
  void OnChannel(Channel ch, std::function<void(const std::string& from, std::string payload)> fn);
  // Sends from any thread, on the calling thread (the transport serializes), to the host's
  // endpoint in the members' snapshot. Errors (an unknown host) are counted, as the
  // datagram-like transport's are; the protocols above resend. Nothing goes out once Stop
  // has begun.
  void Send(const std::string& host, Channel ch, std::string payload);
  // The peers with their decoded headroom summaries, for placement (this host included).
  // Made again only when the members' snapshot changed, decoding only the headroom that did.
  PeerView PlacementView() const;
  const std::string& name() const;
  std::string endpoint() const;  // where the transport is bound

  struct Impl;

 private:
  explicit MeshNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_NODE_H_
