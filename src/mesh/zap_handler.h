// ZapHandler: the ZeroMQ authentication handler (ZAP, https://rfc.zeromq.org/spec/27/) of one
// transport. libzmq asks it about every CURVE handshake on the transport's listening socket; it
// accepts a client whose public key is in authorized_keys, and names the connection after the
// key's host: every message from it then carries the properties
//   User-Id      the host name (what the envelope's sender must be)
//   X-Augur-Key  the client's Z85 public key (so that the transport can check, per message,
//                that the key is still authorized for that host after a reload)
// Any other client is refused (status 400), counted as DropReason::kZapRefused and logged at a
// rate limit. The file is re-read when it changed, checked on every request (one stat), so a
// key added to it is accepted on the peer's next handshake without a restart.
//
// DecideZap is the pure decision. ZapHandler runs it on its own thread, bound to
// inproc://zeromq.zap.01 of the transport's ZeroMQ context (one handler per context).
// Thread safety: ZapHandler's public methods are called by its owner's thread only.
#ifndef AUGUR_MESH_ZAP_HANDLER_H_
#define AUGUR_MESH_ZAP_HANDLER_H_

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "augur/status.h"
#include "mesh/authorized_keys.h"
#include "mesh/transport_stats.h"

namespace augur::mesh {

// The ZAP domain of the mesh's listening socket.
inline constexpr char kZapDomain[] = "augur-mesh";
// The message property, set through ZAP metadata, that holds the client's Z85 public key.
inline constexpr char kKeyProperty[] = "X-Augur-Key";

struct ZapRequest {
  std::string version;     // "1.0"
  std::string request_id;
  std::string domain;
  std::string address;     // the client's IP address
  std::string identity;
  std::string mechanism;   // "CURVE" is the only one accepted
  std::vector<std::string> credentials;  // CURVE: the client's 32-byte public key
};

struct ZapReply {
  std::string status_code;  // "200" accepted, "400" refused, "500" bad request
  std::string status_text;  // why, for the log
  std::string user_id;      // the host name when accepted
  std::string metadata;     // ZMTP properties: kKeyProperty when accepted
  std::string client_key;   // the client's Z85 key, when it sent one (for the log)
};

// Frames of a ZAP request, as libzmq sends them. Fewer than six frames is an error.
Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames);
// Accepts a CURVE client whose key `keys` lists; refuses everything else.
ZapReply DecideZap(const ZapRequest& req, const AuthorizedKeys& keys);
// ZMTP metadata: one property (1-byte name length, name, 4-byte big-endian value length, value).
std::string EncodeZapMetadata(std::string_view name, std::string_view value);

class ZapHandler {
 public:
  // Binds the ZAP endpoint on `ctx` and starts the thread. `keys` and `counters` must outlive
  // the handler. Must be started before the listening socket binds, or libzmq would let
  // clients in unchecked.
  static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx, AuthorizedKeysFile& keys,
                                                   TransportCounters& counters,
                                                   std::chrono::nanoseconds log_interval);
  // Stops the thread and closes its sockets. REQUIRES: the context is not yet closed.
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

 private:
  ZapHandler(zmq::socket_t rep, zmq::socket_t stop_rx, zmq::socket_t stop_tx,
             AuthorizedKeysFile& keys, TransportCounters& counters,
             std::chrono::nanoseconds log_interval);
  void Run();

  zmq::socket_t rep_;      // used by the thread only
  zmq::socket_t stop_rx_;  // used by the thread only
  zmq::socket_t stop_tx_;  // used by the owner only
  AuthorizedKeysFile& keys_;
  TransportCounters& counters_;
  const std::chrono::nanoseconds log_interval_;
  std::thread thread_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_ZAP_HANDLER_H_
