// The remote-run messages (remote_run.proto) on the wire: encoding, and the checks every
// message from a peer passes before the placer sees it.
//
// Decode is where untrusted bytes stop: anything malformed, oversized, of another version,
// without a body, without a lease or attempt id (a fetch or fetch_refused: without an
// attempt id; a forget: without a workflow id), with a task that has no argv, an input
// path that leaves the work directory, a transfer id that is not one (or an input or output
// both inline and by transfer), or a result state that is not one, is a Corruption
// naming what is wrong; the caller counts and drops it.
//
// Pure functions; thread safety: none needed.
#ifndef AUGUR_MESH_REMOTE_RUN_CODEC_H_
#define AUGUR_MESH_REMOTE_RUN_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "augur/status.h"
#include "mesh/remote_run.pb.h"

namespace augur::mesh {

inline constexpr uint32_t kRemoteRunVersion = 1;
// A whole message, encoded: the transport's default envelope limit (64 KiB) less room for
// the envelope around it.
inline constexpr size_t kMaxRemoteRunBytes = 60 * 1024;
// What a ShardResult could carry of output, and a RunShard of inputs (all files together): the
// message limit less room for everything else in it (ids, argv, numbers). The placer sends
// inline only up to its own, smaller threshold (MeshPlacerOptions::inline_bytes); larger
// files travel as transfers (transfer.h) that the message names.
inline constexpr size_t kMaxInlineBytes = kMaxRemoteRunBytes - 8 * 1024;
inline constexpr size_t kMaxRemoteRunIdBytes = 256;     // lease and attempt ids
inline constexpr size_t kMaxRemoteRunErrorBytes = 1024;  // errors

// Sets the version and serializes. InvalidArgument when the message would not pass Decode
// on the other side (ResourceExhausted when only its size is the problem).
Result<std::string> EncodeRemoteRun(wire::RemoteRunMessage msg);
// A message from a peer, checked (see above).
Result<wire::RemoteRunMessage> DecodeRemoteRun(std::string_view bytes);

// "run", "status", "result", "fetch", "fetch_refused", "forget" for logs and counters.
std::string_view RemoteRunBodyName(const wire::RemoteRunMessage& msg);
// The lease the message is about ("" for the kept-output bodies, which name none).
const std::string& LeaseOf(const wire::RemoteRunMessage& msg);

}  // namespace augur::mesh

#endif  // AUGUR_MESH_REMOTE_RUN_CODEC_H_
