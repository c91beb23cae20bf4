#include "mesh/bid_desk.h"

#include <algorithm>
#include <utility>

namespace augur::mesh {

using workflow::Resources;

namespace {
// At most this many requests remembered as seen (the oldest are forgotten first).
constexpr size_t kMaxSeen = 65'536;
}  // namespace

BidDesk::BidDesk(BidderOptions options) : o_(std::move(options)) {}

void BidDesk::Publish(const BidderRoom& room) {
  std::lock_guard lock(mu_);
  room_ = room;
  published_ = true;
}

std::optional<wire::PlacementMessage> BidDesk::Answer(const std::string& from,
                                                      const wire::PlacementMessage& msg,
                                                      int64_t now) {
  if (!msg.has_bid_request()) return std::nullopt;
  const wire::BidRequest& b = msg.bid_request();
  const std::string holder = LeaseId(from, b.request_id());
  std::lock_guard lock(mu_);
  while (!seen_order_.empty() &&
         (seen_order_.front().first + kRememberNs < now || seen_order_.size() > kMaxSeen)) {
    seen_.erase(seen_order_.front().second);
    seen_order_.pop_front();
  }
  // A request seen before is a duplicate (or the desk left it to the bidder once): the
  // bidder answers duplicates as it answered the first.
  const bool first = seen_.insert(holder).second;
  if (first) seen_order_.emplace_back(now, holder);
  const Resources want = FromAmount(b.want());
  const Resources min = FromAmount(b.min());
  std::optional<std::vector<workflow::CostClass>> classes;
  if (!first || !published_ || !o_.lease_at_once || b.lease_ttl_ms() == 0 ||
      !min.FitsIn(want) || !(Resources::Min(want, room_.room - promised_) == want) ||
      !(classes = ClassesFor(o_, b.backend()))) {
    ++stats_.forwarded;
    return std::nullopt;
  }
  OfferTerms terms = TermsOf(o_, b, *classes, want);
  terms.offer.set_leased(true);
  promised_ += want;
  promises_[holder] = terms.offer;
  ++stats_.answered;
  wire::PlacementMessage answer;
  *answer.mutable_offer() = std::move(terms.offer);
  *answer.mutable_offer()->mutable_room() = ToAmount(FloorToMilli(room_.room - promised_));
  *answer.mutable_offer()->mutable_held() = ToAmount(room_.held);
  return answer;
}

std::optional<std::string> BidDesk::Answer(const std::string& from, std::string_view payload,
                                          int64_t now) {
  Result<wire::PlacementMessage> msg = DecodePlacement(payload);
  if (!msg) return std::nullopt;
  std::optional<wire::PlacementMessage> answer = Answer(from, *msg, now);
  if (!answer) return std::nullopt;
  Result<std::string> bytes = EncodePlacement(std::move(*answer));
  if (!bytes) return std::nullopt;  // not expected: made from a message that decoded
  return std::move(*bytes);
}

std::optional<wire::Offer> BidDesk::Settle(const std::string& holder,
                                           const std::function<void(const Resources&)>& act,
                                           const std::function<BidderRoom()>& room) {
  std::lock_guard lock(mu_);
  auto it = holder.empty() ? promises_.end() : promises_.find(holder);
  act(it == promises_.end() ? promised_ : promised_ - FromAmount(it->second.grant()));
  room_ = room();
  published_ = true;
  if (it == promises_.end()) return std::nullopt;
  wire::Offer offer = std::move(it->second);
  promises_.erase(it);
  promised_ -= FromAmount(offer.grant());
  return offer;
}

BidDeskStats BidDesk::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace augur::mesh
