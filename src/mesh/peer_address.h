// PeerAddress: a peer as configuration names it (mesh.seeds): "name@addr:port". The name comes
// first because a CURVE client must know the server's public key before it connects, and the
// key is looked up by name in authorized_keys; the address alone would not say which key.
//
//   node-2@10.0.0.2:7946     node-2@10.0.0.2 (port 7946)     node-3@[fd00::3]:7946
//   node-4@host4.example:7000
//
// Pure functions; safe from any thread.
#ifndef AUGUR_MESH_PEER_ADDRESS_H_
#define AUGUR_MESH_PEER_ADDRESS_H_

#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::mesh {

// The default port of mesh.listen and of a peer address without one.
inline constexpr int kDefaultMeshPort = 7946;

struct PeerAddress {
  std::string name;      // the host name, as in authorized_keys
  std::string endpoint;  // "tcp://addr:port", what Transport::Send takes
};

// Parses "name@addr[:port]"; the port defaults to `default_port`.
// An IPv6 address is written in brackets. Errors say what is wrong with which part.
Result<PeerAddress> ParsePeerAddress(std::string_view text, int default_port = kDefaultMeshPort);

}  // namespace augur::mesh

#endif  // AUGUR_MESH_PEER_ADDRESS_H_
