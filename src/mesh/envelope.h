// Envelope: what every mesh message is on the wire (envelope.proto), and the pure functions
// that encode it and decode it with every check that needs no state: size, protobuf framing,
// version, sender name, channel, sequence and boot id. The checks that need state (is the
// sender the authenticated peer, is this a replay) are the transport's (transport.h,
// replay_window.h).
//
// DecodeEnvelope is a pure function of its arguments (the fuzz target tests/fuzz/
// mesh_envelope_fuzz.cc drives it); everything here is safe to call from any thread.
#ifndef AUGUR_MESH_ENVELOPE_H_
#define AUGUR_MESH_ENVELOPE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::mesh {

// Which part of the mesh a payload is for.
// NOTE: the values are on the wire; never renumber, append only.
// kRun: running shards on other hosts (remote_run.proto; docs/MESH.md, "Running shards on
// other hosts").
enum class Channel : uint32_t {
  kMembership = 1,
  kPlacement = 2,
  kReplication = 3,
  kData = 4,
  kRun = 5,
  // Status of a workflow asked of the host that owns it (status_query.proto; docs/MESH.md,
  // "Replication and failover").
  kStatus = 6,
};
inline constexpr uint32_t kMaxChannel = 6;

// "membership", "placement", "replication", "data", "run", "status", or "channel <n>".
std::string ChannelName(Channel ch);

// The envelope version this release writes and the only one it reads.
inline constexpr uint32_t kEnvelopeVersion = 1;
// Host names (as in authorized_keys): 1 to 253 characters of A-Z a-z 0-9 . _ - beginning with a
// letter or digit.
inline constexpr size_t kMaxHostNameBytes = 253;
bool IsValidHostName(std::string_view name);

struct Envelope {
  uint32_t version = kEnvelopeVersion;
  std::string sender;        // the sending host's name
  uint64_t boot_id = 0;      // the sender's transport start time, ns since the Unix epoch; > 0
  uint64_t seq = 0;          // per (sender, boot_id), from 1
  Channel channel = Channel::kMembership;
  std::string payload;
  int64_t sent_unix_ns = 0;  // the sender's clock; informational
};

// The serialized envelope (protobuf). Writes whatever `env` holds, checked or not, so that
// tests can make bad envelopes with it.
std::string EncodeEnvelope(const Envelope& env);

// Parses and checks `bytes` (one ZeroMQ frame). On error the Status code says what kind of
// bad input it was, and the message says what exactly:
//   kResourceExhausted   more than `max_bytes` bytes (checked before parsing)
//   kFailedPrecondition  a version other than kEnvelopeVersion
//   kCorruption          anything else: not a protobuf Envelope, bad sender name, unknown
//                        channel, seq or boot_id 0
Result<Envelope> DecodeEnvelope(std::string_view bytes, size_t max_bytes);

}  // namespace augur::mesh

#endif  // AUGUR_MESH_ENVELOPE_H_
