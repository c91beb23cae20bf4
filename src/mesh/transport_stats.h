// TransportStats: what the mesh transport sent, received and dropped, by reason. A snapshot
// (a plain struct) for callers; TransportCounters is the live, atomic set the transport and its
// ZAP thread add to.
//
// Thread safety: TransportCounters may be added to and read from any thread; a
// TransportStats snapshot is a plain value.
#ifndef AUGUR_MESH_TRANSPORT_STATS_H_
#define AUGUR_MESH_TRANSPORT_STATS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace augur::mesh {

// Why a message (or a handshake) was dropped. Each has a counter and its own log rate limit.
// NOTE: the names (DropReasonName) are metric labels; append only.
enum class DropReason : uint32_t {
  // Received from a peer.
  kMalformed = 0,     // not a protobuf Envelope, bad sender name, unknown channel, seq/boot 0,
                      // or more than one frame
  kOversized,         // over max_message_bytes
  kUnknownVersion,    // envelope version other than kEnvelopeVersion
  kSenderMismatch,    // envelope sender differs from the CURVE-authenticated host name
  kUnauthorized,      // the peer's key left authorized_keys (or changed) after it connected
  kReplayed,          // (sender, boot, seq) seen before, or older than the replay window
  kStaleBoot,         // a boot id older than the newest one seen from that sender
  kZapRefused,        // a handshake from a key not in authorized_keys (counted by the ZAP handler)
  kHandshakeFailed,   // a handshake that failed before ZAP: not CURVE, or encrypted to another
                      // key than ours (a peer holding a wrong public key for this host)
  // Sent by this host.
  kUnknownPeer,       // no key for the peer name in authorized_keys: cannot authenticate it
  kNotConnected,      // the link has no completed handshake (yet); ZMQ_IMMEDIATE queues nothing
  kQueueFull,         // the link's send queue (send_hwm) is full
  kSendOversized,     // the envelope would exceed max_message_bytes
  kSendInvalid,       // bad channel or endpoint given to Send
  kRefusedByPeer,     // the peer's ZAP refused our key (it does not list us); link re-made later
  kPeerHandshakeFailed,  // our handshake to a peer failed (it is not the key we hold for it)
};
inline constexpr size_t kDropReasonCount = 16;

// "malformed", "oversized", ..., one snake_case word per reason.
std::string_view DropReasonName(DropReason r);

struct TransportStats {
  uint64_t sent_messages = 0;      // envelopes handed to ZeroMQ
  uint64_t sent_bytes = 0;
  uint64_t received_messages = 0;  // envelopes that passed every check (returned by Receive)
  uint64_t received_bytes = 0;
  std::array<uint64_t, kDropReasonCount> dropped{};
  uint64_t keys_reloads = 0;       // authorized_keys re-read after a change
  uint64_t keys_errors = 0;        // re-reads that failed (the previous keys stayed in force)
  uint64_t links_opened = 0;       // DEALER sockets made (first Send to a peer, or re-made)

  uint64_t drops(DropReason r) const { return dropped[static_cast<size_t>(r)]; }
  uint64_t total_dropped() const {
    uint64_t n = 0;
    for (uint64_t d : dropped) n += d;
    return n;
  }
};

class TransportCounters {
 public:
  void Drop(DropReason r) { dropped_[static_cast<size_t>(r)].fetch_add(1, kOrder); }
  void Sent(size_t bytes) {
    sent_messages_.fetch_add(1, kOrder);
    sent_bytes_.fetch_add(bytes, kOrder);
  }
  void Received(size_t bytes) {
    received_messages_.fetch_add(1, kOrder);
    received_bytes_.fetch_add(bytes, kOrder);
  }
  void LinkOpened() { links_opened_.fetch_add(1, kOrder); }

  // keys_reloads and keys_errors come from the authorized_keys file, not from here.
  TransportStats Snapshot() const {
    TransportStats s;
    s.sent_messages = sent_messages_.load(kOrder);
    s.sent_bytes = sent_bytes_.load(kOrder);
    s.received_messages = received_messages_.load(kOrder);
    s.received_bytes = received_bytes_.load(kOrder);
    for (size_t i = 0; i < kDropReasonCount; ++i) s.dropped[i] = dropped_[i].load(kOrder);
    s.links_opened = links_opened_.load(kOrder);
    return s;
  }

 private:
  // Counters only: nothing is published through them, so relaxed order is enough.
  static constexpr std::memory_order kOrder = std::memory_order_relaxed;
  std::atomic<uint64_t> sent_messages_{0}, sent_bytes_{0};
  std::atomic<uint64_t> received_messages_{0}, received_bytes_{0};
  std::array<std::atomic<uint64_t>, kDropReasonCount> dropped_{};
  std::atomic<uint64_t> links_opened_{0};
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_TRANSPORT_STATS_H_
