#include "mesh/envelope.h"

#include <fmt/format.h>

#include "mesh/envelope.pb.h"

namespace augur::mesh {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// A name from the wire, printable in an error message whatever it holds.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

std::string ChannelName(Channel ch) {
  switch (ch) {
    case Channel::kMembership: return "membership";
    case Channel::kPlacement: return "placement";
    case Channel::kReplication: return "replication";
    case Channel::kData: return "data";
    case Channel::kRun: return "run";
    case Channel::kStatus: return "status";
  }
  return fmt::format("channel {}", static_cast<uint32_t>(ch));
}

bool IsValidHostName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostNameBytes) return false;
  if (name[0] == '.' || name[0] == '_' || name[0] == '-') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

std::string EncodeEnvelope(const Envelope& env) {
  wire::Envelope w;
  w.set_version(env.version);
  w.set_sender(env.sender);
  w.set_boot_id(env.boot_id);
  w.set_seq(env.seq);
  w.set_channel(static_cast<uint32_t>(env.channel));
  w.set_payload(env.payload);
  w.set_sent_unix_ns(env.sent_unix_ns);
  return w.SerializeAsString();
}

Result<Envelope> DecodeEnvelope(std::string_view bytes, size_t max_bytes) {
  if (bytes.size() > max_bytes) {
    return Err(Status::ResourceExhausted(fmt::format(
        "envelope of {} bytes is over the limit of {} (mesh.max_message_bytes)", bytes.size(),
        max_bytes)));
  }
  wire::Envelope w;
  // ParseFromArray takes an int size; max_bytes may be larger than INT_MAX only by mistake.
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !w.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Err(Status::Corruption(
        fmt::format("envelope: {} bytes that are not a protobuf Envelope", bytes.size())));
  }
  if (w.version() != kEnvelopeVersion) {
    return Err(Status::FailedPrecondition(
        fmt::format("envelope version {} from '{}': this host speaks version {}", w.version(),
                    Printable(w.sender()), kEnvelopeVersion)));
  }
  if (!IsValidHostName(w.sender())) {
    return Err(Status::Corruption(fmt::format(
        "envelope: sender '{}' is not a host name (1-{} of A-Z a-z 0-9 . _ -)",
        Printable(w.sender()), kMaxHostNameBytes)));
  }
  if (w.channel() == 0 || w.channel() > kMaxChannel) {
    return Err(Status::Corruption(
        fmt::format("envelope from '{}': unknown channel {}", w.sender(), w.channel())));
  }
  if (w.boot_id() == 0) {
    return Err(Status::Corruption(fmt::format("envelope from '{}': boot_id 0", w.sender())));
  }
  if (w.seq() == 0) {
    return Err(Status::Corruption(fmt::format("envelope from '{}': seq 0", w.sender())));
  }
  Envelope env;
  env.version = w.version();
  env.sender = std::move(*w.mutable_sender());
  env.boot_id = w.boot_id();
  env.seq = w.seq();
  env.channel = static_cast<Channel>(w.channel());
  env.payload = std::move(*w.mutable_payload());
  env.sent_unix_ns = w.sent_unix_ns();
  return env;
}

}  // namespace augur::mesh
