// MeshLink: what the mesh placer (mesh_placer.h) needs of the host's mesh node: its own
// name, a way to send a payload to a peer on a channel, and membership's view of the peers
// with their gossiped headroom. augurd's mesh node (which owns the transport and SWIM
// membership) implements it; tests connect executors in one process with their own.
//
// Thread safety: the placer calls it from the executor's engine thread, and Send also from
// the thread that delivers messages to the executor (Placer::OnReceipt). An implementation
// may deliver to another executor from inside Send (Executor::OnMeshMessage queues, or
// answers at once on the calling thread: it may re-enter Send), never to the sender's own.
#ifndef AUGUR_MESH_MESH_LINK_H_
#define AUGUR_MESH_MESH_LINK_H_

#include <memory>
#include <string>
#include <vector>

#include "augur/status.h"
#include "mesh/envelope.h"
#include "mesh/negotiator.h"

namespace augur::mesh {

// Membership's view of the peers, shared and never changed once made: the placer reads it
// several times per engine tick, and it changes only with membership.
using PeerView = std::shared_ptr<const std::vector<PlacementPeer>>;

class MeshLink {
 public:
  virtual ~MeshLink() = default;
  // This host's name (as peers know it).
  virtual const std::string& self() const = 0;
  // Sends `payload` to `host` on `ch`; never blocks, may drop (the protocols resend). An
  // error: not sent (the placer counts it).
  virtual Status Send(const std::string& host, Channel ch, std::string payload) = 0;
  // Membership's view: every known peer (this host may be among them), whether it is alive,
  // its zone and its gossiped headroom. Never null.
  virtual PeerView Peers() const = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_MESH_LINK_H_
