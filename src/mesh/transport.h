// Transport: the wire layer every mesh message goes through (docs/MESH.md, "Transport and
// security"). Datagram-like: Send never blocks and may drop; Receive returns the next message
// that passed every check, with the peer's authenticated host name.
//
// On the wire: each host binds one ROUTER (a CURVE server) on `listen`, and sends through one
// DEALER (a CURVE client) per peer, made on the first Send to that peer, whose server key is
// the peer's key in authorized_keys. A ZAP handler thread (zap_handler.h) lets in only keys
// listed there. Every message is one Envelope (envelope.h) that is checked for size, version,
// sender (must be the authenticated host) and replay (replay_window.h); what fails is dropped,
// counted by reason (transport_stats.h) and logged at a rate limit. Nothing a peer sends can
// crash the host.
//
// The transport knows nothing of membership: it neither tracks who is alive nor retries.
//
// Thread safety: Send, Connect, ResetLink, Wake, the test hooks, stats(), endpoint(),
// public_key() and boot_id() may be called from any thread (sends are serialized inside, so a
// thread with a message sends it itself rather than waking another to: one thread hop less
// on every message). One thread at a time calls Receive. The ZAP thread inside is the
// transport's own.
#ifndef AUGUR_MESH_TRANSPORT_H_
#define AUGUR_MESH_TRANSPORT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "augur/status.h"
#include "mesh/envelope.h"
#include "mesh/peer_address.h"  // kDefaultMeshPort, and seeds as name@addr:port
#include "mesh/transport_stats.h"

namespace augur::mesh {

// A message that passed every check.
struct Inbound {
  std::string from;     // the authenticated host name (its key's name in authorized_keys)
  Channel channel;
  std::string payload;
  // The sender's wall clock when its mesh thread sent it (the envelope's, informational:
  // only as good as the two clocks' agreement). MeshNode's transit histogram reads it.
  int64_t sent_unix_ns = 0;
};

struct TransportOptions {
  std::string host_name;             // this host's name (as in peers' authorized_keys)
  std::string listen;                // e.g. "tcp://0.0.0.0:7946"; port 0 picks a free port
  std::string secret_key_file;       // written by `augurctl keygen` (mode 0600)
  std::string authorized_keys_file;  // lines: "<z85 public key> <host-name> [# comment]"
  // Largest envelope sent or accepted (encoded bytes, payload included). Frames over 4 times
  // this close the connection inside ZeroMQ (ZMQ_MAXMSGSIZE) before we could count them.
  size_t max_message_bytes = 64 * 1024;

  // Per peer link, messages ZeroMQ queues before Send drops (ZMQ_SNDHWM).
  int send_hwm = 256;
  // Messages queued on the listening socket before ZeroMQ stops reading peers (ZMQ_RCVHWM).
  int receive_hwm = 4096;
  // ZMTP heartbeats on every link (ZMQ_HEARTBEAT_IVL, _TIMEOUT, _TTL); 0: none. Off by
  // default: membership's probes already prove every link it uses and judge whether a peer is
  // alive, and MeshNode resets the link of a peer it declares dead (ResetLink). At 1 s,
  // heartbeats were most of the mesh's packets (two per link per second, plus TCP acks); at
  // 10 s still ~25 of 51 packets a second per host at N = 32, growing with N.
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds heartbeat_timeout{30'000};
  // TCP keepalive on every link (ZMQ_TCP_KEEPALIVE*): probes only a connection idle this long,
  // so it costs nothing on a link in use and closes, within about a minute more, one whose
  // peer vanished without a FIN (a link nobody sends on, e.g. a dead peer's inbound one).
  // 0: the system's default (off).
  std::chrono::seconds tcp_keepalive_idle{60};
  // Reconnection of a link whose peer went away (ZMQ_RECONNECT_IVL and _IVL_MAX).
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{2000};
  // A peer that refused our key (its ZAP said 400) is never retried by ZeroMQ; the transport
  // makes the link again on a Send this long after the refusal.
  std::chrono::milliseconds relink_after_refusal{1000};
  // The mesh thread stats authorized_keys at most this often (on Send and Receive); the ZAP
  // thread also stats it on every handshake.
  std::chrono::milliseconds keys_check_interval{1000};
  // At most one log line per drop reason per this interval; the line counts the rest.
  std::chrono::milliseconds log_interval{10000};
  // Boot id of this run: 0 means the wall clock at Start in ns (a restarted host is newer).
  uint64_t boot_id = 0;
  // false: no CURVE, no ZAP, no encryption; the envelope's sender is trusted as is. For
  // benchmarks that measure what CURVE costs; augurd never sets it.
  bool curve = true;
};

class Transport {
 public:
  // Reads the key files, starts the ZAP handler and binds `listen`. Fails (naming the file or
  // the endpoint) on a missing or bad key file, a bad authorized_keys, a bad host name, or an
  // endpoint that cannot be bound.
  static Result<std::unique_ptr<Transport>> Start(const TransportOptions& opts);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Sends `payload` to host `peer_name` at `peer_endpoint` ("tcp://addr:port"), like a
  // datagram: never blocks. OK means ZeroMQ took it (not that it arrived). Otherwise the
  // message is dropped, counted, and the Status says why: NotFound (no key for the peer in
  // authorized_keys), Unavailable (link not connected yet, or its queue is full),
  // ResourceExhausted (over max_message_bytes), InvalidArgument (bad channel or endpoint).
  // The first messages to a new peer are dropped until the link's handshake completes (no
  // queueing while disconnected, so nothing stale is delivered later); Connect opens a link
  // ahead of time. A later Send naming another endpoint for the same peer replaces its link.
  Status Send(const std::string& peer_name, const std::string& peer_endpoint, Channel ch,
              std::string_view payload);

  // Opens the link to a peer now, so that the handshake runs before the first Send. OK if it
  // exists already. Errors as Send's (NotFound, InvalidArgument), counted the same way.
  Status Connect(const std::string& peer_name, const std::string& peer_endpoint);

  // The next message that passed every check, waiting up to `timeout`; nullopt on timeout.
  // Dropped messages are consumed and counted, never returned.
  std::optional<Inbound> Receive(std::chrono::milliseconds timeout);
  // Makes a Receive that is waiting (or the next one) return at once, without a message:
  // how another thread that left work for the receiving thread gets it done now rather than
  // after the wait.
  void Wake();
  // Closes the link to `peer_name`, if any; the next Send makes a new one. For a peer
  // membership declared dead or gone: a TCP connection across a healed partition may be
  // stuck in retransmission backoff, and a fresh one is not.
  void ResetLink(const std::string& peer_name);

  TransportStats stats() const;
  // The bound endpoint, e.g. "tcp://127.0.0.1:41234" (the real port when `listen` had 0).
  std::string endpoint() const;
  // This host's Z85 public key (the line for peers' authorized_keys is "<key> <host_name>");
  // empty when `curve` is false.
  const std::string& public_key() const;
  // This run's boot id (see TransportOptions::boot_id).
  uint64_t boot_id() const;

  // Test hooks. SendRawForTest sends `bytes` as they are (no envelope) over the link to the
  // peer, as Send would; tests use it to inject malformed, oversized, replayed or forged
  // envelopes through an authenticated link.
  Status SendRawForTest(const std::string& peer_name, const std::string& peer_endpoint,
                        std::string_view bytes);
  // The sequence number the next Send will use.
  uint64_t NextSeqForTest() const;

 private:
  class Impl;
  explicit Transport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_TRANSPORT_H_
