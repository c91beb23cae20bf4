#include "mesh/placement_codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

namespace augur::mesh {
namespace {

using wire::PlacementMessage;

std::optional<std::string> TooLong(std::string_view what, const std::string& s) {
  if (s.size() <= kMaxPlacementIdBytes) return std::nullopt;
  return fmt::format("{} is {} bytes, at most {}", what, s.size(), kMaxPlacementIdBytes);
}

// The first thing wrong with a message, or nullopt.
std::optional<std::string> Broken(const PlacementMessage& m) {
  if (m.version() != kPlacementVersion) {
    return fmt::format("version {}, expected {}", m.version(), kPlacementVersion);
  }
  if (m.body_case() == PlacementMessage::BODY_NOT_SET) return "no body";
  const std::string& id = RequestIdOf(m);
  if (id.empty()) return fmt::format("{}: no request id", BodyName(m));
  if (auto e = TooLong("request id", id)) return fmt::format("{}: {}", BodyName(m), *e);
  switch (m.body_case()) {
    case PlacementMessage::kBidRequest: {
      const wire::BidRequest& b = m.bid_request();
      if (b.shard().empty()) return fmt::format("bid_request {}: no shard", id);
      if (auto e = TooLong("shard", b.shard())) return fmt::format("bid_request {}: {}", id, *e);
      if (auto e = TooLong("backend", b.backend())) return fmt::format("bid_request {}: {}", id, *e);
      const workflow::Resources want = FromAmount(b.want()), min = FromAmount(b.min());
      if (!min.FitsIn(want)) {
        return fmt::format("bid_request {}: min {} is above want {}", id, min.ToString(),
                           want.ToString());
      }
      if (want.cpu <= 0 && want.memory == 0) return fmt::format("bid_request {}: wants nothing", id);
      if (!std::isfinite(b.score())) return fmt::format("bid_request {}: score is not finite", id);
      if (b.has_budget_left() && !(b.budget_left() >= 0)) {
        return fmt::format("bid_request {}: budget_left {} is not a number >= 0", id, b.budget_left());
      }
      return std::nullopt;
    }
    case PlacementMessage::kOffer: {
      const wire::Offer& o = m.offer();
      if (auto e = TooLong("refusal", o.refused())) return fmt::format("offer {}: {}", id, *e);
      if (auto e = TooLong("cost class", o.cost_class())) return fmt::format("offer {}: {}", id, *e);
      if (o.queued() && !o.refused().empty()) return fmt::format("offer {}: both queued and refused", id);
      if (o.refused().empty() && !o.queued()) {
        if (!o.has_grant()) return fmt::format("offer {}: neither a grant nor a refusal", id);
        if (o.finish_ms() < o.start_ms()) return fmt::format("offer {}: finishes before it starts", id);
        if (!(o.cost_per_hour() >= 0) || !std::isfinite(o.cost_per_hour())) {
          return fmt::format("offer {}: cost_per_hour is not a finite number >= 0", id);
        }
      }
      return std::nullopt;
    }
    case PlacementMessage::kReclaimed:
      if (auto e = TooLong("reason", m.reclaimed().reason())) return fmt::format("reclaimed {}: {}", id, *e);
      return std::nullopt;
    case PlacementMessage::kLeaseChanged:
      if (auto e = TooLong("reason", m.lease_changed().reason())) {
        return fmt::format("lease_changed {}: {}", id, *e);
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace

const std::string& RequestIdOf(const PlacementMessage& m) {
  switch (m.body_case()) {
    case PlacementMessage::kBidRequest: return m.bid_request().request_id();
    case PlacementMessage::kOffer: return m.offer().request_id();
    case PlacementMessage::kAward: return m.award().request_id();
    case PlacementMessage::kDecline: return m.decline().request_id();
    case PlacementMessage::kRenew: return m.renew().request_id();
    case PlacementMessage::kRelease: return m.release().request_id();
    case PlacementMessage::kLeased: return m.leased().request_id();
    case PlacementMessage::kReclaimed: return m.reclaimed().request_id();
    case PlacementMessage::kLeaseChanged: return m.lease_changed().request_id();
    case PlacementMessage::BODY_NOT_SET: break;
  }
  static const std::string kNone;
  return kNone;
}

bool ForBidder(const PlacementMessage& m) {
  switch (m.body_case()) {
    case PlacementMessage::kBidRequest:
    case PlacementMessage::kAward:
    case PlacementMessage::kDecline:
    case PlacementMessage::kRenew:
    case PlacementMessage::kRelease:
      return true;
    default:
      return false;
  }
}

std::string_view BodyName(const PlacementMessage& m) {
  switch (m.body_case()) {
    case PlacementMessage::kBidRequest: return "bid_request";
    case PlacementMessage::kOffer: return "offer";
    case PlacementMessage::kAward: return "award";
    case PlacementMessage::kDecline: return "decline";
    case PlacementMessage::kRenew: return "renew";
    case PlacementMessage::kRelease: return "release";
    case PlacementMessage::kLeased: return "leased";
    case PlacementMessage::kReclaimed: return "reclaimed";
    case PlacementMessage::kLeaseChanged: return "lease_changed";
    case PlacementMessage::BODY_NOT_SET: break;
  }
  return "none";
}

Result<std::string> EncodePlacement(PlacementMessage msg) {
  msg.set_version(kPlacementVersion);
  if (auto why = Broken(msg)) {
    return Err(Status::InvalidArgument("placement message: " + *why));
  }
  std::string out;
  if (!msg.SerializeToString(&out)) {
    return Err(Status::Internal("placement message: protobuf would not serialize"));
  }
  if (out.size() > kMaxPlacementBytes) {
    return Err(Status::InvalidArgument(fmt::format("placement {} {}: {} bytes, at most {}",
                                                   BodyName(msg), RequestIdOf(msg), out.size(),
                                                   kMaxPlacementBytes)));
  }
  return out;
}

Result<PlacementMessage> DecodePlacement(std::string_view bytes) {
  if (bytes.size() > kMaxPlacementBytes) {
    return Err(Status::Corruption(fmt::format("placement message: {} bytes, at most {}",
                                              bytes.size(), kMaxPlacementBytes)));
  }
  PlacementMessage m;
  if (!m.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return Err(Status::Corruption(
        fmt::format("placement message: {} bytes that do not parse as one", bytes.size())));
  }
  if (auto why = Broken(m)) return Err(Status::Corruption("placement message: " + *why));
  return m;
}

std::string LeaseId(std::string_view owner, std::string_view request_id) {
  return fmt::format("{}/{}", owner, request_id);
}

wire::Amount ToAmount(const workflow::Resources& r) {
  wire::Amount a;
  a.set_cpu_milli(uint32_t(std::clamp(std::llround(r.cpu * 1000), 0LL,
                                      (long long)std::numeric_limits<uint32_t>::max())));
  a.set_memory(r.memory);
  return a;
}

workflow::Resources FromAmount(const wire::Amount& a) {
  return {a.cpu_milli() / 1000.0, a.memory()};
}

workflow::Resources FloorToMilli(const workflow::Resources& r) {
  return {std::floor(r.cpu * 1000 + 1e-9) / 1000.0, r.memory};
}

}  // namespace augur::mesh
