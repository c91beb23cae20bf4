// CheckedCodec: how the mesh's versioned protobuf messages (transfer.proto, replication.proto)
// are encoded and decoded with the same checks on both sides: a size limit, protobuf framing,
// the version, and the message's own `check` (what a peer may send). Encode refuses what the
// other side's Decode would refuse, so a bug is caught before it leaves the host.
//
// Decode errors: ResourceExhausted (over max_bytes, checked before parsing),
// FailedPrecondition (another version), Corruption (not the message, or `check` refused it).
// Encode errors: InvalidArgument (it would not pass Decode), Internal (did not serialize).
//
// Pure templates; safe from any thread. protobuf's ParseFromArray and SerializeToString
// never throw; they return false.
#ifndef AUGUR_MESH_CHECKED_CODEC_H_
#define AUGUR_MESH_CHECKED_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "augur/status.h"

namespace augur::mesh {

// `check(const Msg&)` returns a Status naming what is wrong.
template <typename Msg, typename Check>
Result<std::string> EncodeChecked(Msg msg, uint32_t version, size_t max_bytes, std::string_view what,
                                  Check check) {
  msg.set_version(version);
  if (Status s = check(msg); !s.ok()) return Err(Status::InvalidArgument(s.message()));
  std::string out;
  if (!msg.SerializeToString(&out)) return Err(Status::Internal(fmt::format("{} did not serialize", what)));
  if (out.size() > max_bytes) {
    return Err(Status::InvalidArgument(
        fmt::format("{} of {} bytes is over the limit of {}", what, out.size(), max_bytes)));
  }
  return out;
}

template <typename Msg, typename Check>
Result<Msg> DecodeChecked(std::string_view bytes, uint32_t version, size_t max_bytes, std::string_view what,
                          Check check) {
  if (bytes.size() > max_bytes) {
    return Err(Status::ResourceExhausted(
        fmt::format("{} of {} bytes is over the limit of {}", what, bytes.size(), max_bytes)));
  }
  Msg m;
  if (!m.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return Err(Status::Corruption(fmt::format("{} bytes are not a {}", bytes.size(), what)));
  }
  if (m.version() != version) {
    return Err(Status::FailedPrecondition(
        fmt::format("{} version {} (this host speaks {})", what, m.version(), version)));
  }
  if (Status s = check(m); !s.ok()) return Err(s);
  return m;
}

}  // namespace augur::mesh

#endif  // AUGUR_MESH_CHECKED_CODEC_H_
