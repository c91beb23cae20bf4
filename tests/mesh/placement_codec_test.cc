#include "mesh/placement_codec.h"

#include <random>

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

using workflow::Resources;

wire::PlacementMessage Bid(const std::string& rid, Resources want, Resources min) {
  wire::PlacementMessage m;
  wire::BidRequest* b = m.mutable_bid_request();
  b->set_request_id(rid);
  b->set_shard("wf/stage/0#1");
  *b->mutable_want() = ToAmount(want);
  *b->mutable_min() = ToAmount(min);
  b->set_score(7.5f);
  b->set_predicted_ms(1234);
  b->set_budget_left(3.5f);
  return m;
}

TEST(PlacementCodec, EveryBodyRoundTripsAndRoutes) {
  std::vector<wire::PlacementMessage> all;
  all.push_back(Bid("s@1", {2, 1 << 30}, {1, 1 << 29}));
  wire::PlacementMessage m;
  m.mutable_offer()->set_request_id("s@1");
  *m.mutable_offer()->mutable_grant() = ToAmount({1.5, 1 << 30});
  m.mutable_offer()->set_finish_ms(10);
  all.push_back(m);
  m.Clear(); m.mutable_award()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_decline()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_renew()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_release()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_leased()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_reclaimed()->set_request_id("s@1"); all.push_back(m);
  m.Clear(); m.mutable_lease_changed()->set_request_id("s@1"); all.push_back(m);
  int for_bidder = 0;
  for (const wire::PlacementMessage& in : all) {
    Result<std::string> bytes = EncodePlacement(in);
    ASSERT_TRUE(bytes.has_value()) << BodyName(in) << ": " << bytes.error().ToString();
    EXPECT_LT(bytes->size(), 80u) << BodyName(in);  // each message is small
    Result<wire::PlacementMessage> out = DecodePlacement(*bytes);
    ASSERT_TRUE(out.has_value()) << out.error().ToString();
    EXPECT_EQ(out->body_case(), in.body_case());
    EXPECT_EQ(RequestIdOf(*out), "s@1");
    EXPECT_EQ(out->version(), kPlacementVersion);
    for_bidder += ForBidder(*out);
  }
  EXPECT_EQ(for_bidder, 5);
  const auto bid = DecodePlacement(EncodePlacement(all[0]).value()).value();
  EXPECT_EQ(FromAmount(bid.bid_request().want()), (Resources{2, 1 << 30}));
  EXPECT_FLOAT_EQ(bid.bid_request().budget_left(), 3.5f);
}

TEST(PlacementCodec, DecodeRefusesMalformedMessagesSayingWhat) {
  auto corrupt = [](const wire::PlacementMessage& m, const std::string& says) {
    Result<wire::PlacementMessage> r = DecodePlacement(m.SerializeAsString());
    ASSERT_FALSE(r.has_value()) << says;
    EXPECT_TRUE(r.error().IsCorruption());
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
    // And the sending side refuses to send it in the first place.
    if (m.version() == kPlacementVersion) {
      EXPECT_FALSE(EncodePlacement(m).has_value()) << says;
    }
  };
  wire::PlacementMessage m = Bid("s@1", {1, 0}, {1, 0});
  m.set_version(2);
  corrupt(m, "version 2, expected 1");
  m.Clear();
  m.set_version(kPlacementVersion);
  corrupt(m, "no body");
  m.mutable_award();
  corrupt(m, "award: no request id");
  m.mutable_award()->set_request_id(std::string(300, 'r'));
  corrupt(m, "request id is 300 bytes");
  m = Bid("s@1", {1, 100}, {2, 100});
  m.set_version(kPlacementVersion);
  corrupt(m, "min 2 cpu");
  m = Bid("s@1", {}, {});
  m.set_version(kPlacementVersion);
  corrupt(m, "wants nothing");
  m = Bid("s@1", {1, 0}, {1, 0});
  m.set_version(kPlacementVersion);
  m.mutable_bid_request()->clear_shard();
  corrupt(m, "no shard");
  m = Bid("s@1", {1, 0}, {1, 0});
  m.set_version(kPlacementVersion);
  m.mutable_bid_request()->set_budget_left(-1);
  corrupt(m, "budget_left");
  m.Clear();
  m.set_version(kPlacementVersion);
  m.mutable_offer()->set_request_id("s@1");
  corrupt(m, "neither a grant nor a refusal");
  m.mutable_offer()->mutable_grant();
  m.mutable_offer()->set_start_ms(5);
  corrupt(m, "finishes before it starts");
}

TEST(PlacementCodec, RandomAndOversizedBytesNeverCrash) {
  EXPECT_FALSE(DecodePlacement(std::string(kMaxPlacementBytes + 1, 'x')).has_value());
  std::mt19937_64 rng(5);
  const std::string good = EncodePlacement(Bid("s@1", {1, 1}, {1, 1})).value();
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    // Flip a few bytes of a valid message, or make one up.
    if (i % 2) {
      for (int k = 0; k < 3; ++k) b[rng() % b.size()] = char(rng());
    } else {
      b.assign(size_t(rng() % 64), '\0');
      for (char& c : b) c = char(rng());
    }
    Result<wire::PlacementMessage> r = DecodePlacement(b);
    if (r) {
      ++accepted;
      EXPECT_FALSE(RequestIdOf(*r).empty());
    }
  }
  EXPECT_LT(accepted, 20000);
}

TEST(PlacementCodec, HelpersAreExact) {
  EXPECT_EQ(LeaseId("host-a", "wf/s/0#1@2"), "host-a/wf/s/0#1@2");
  EXPECT_EQ(FloorToMilli({0.3337, 5}), (Resources{0.333, 5}));
  EXPECT_EQ(FloorToMilli({0.999, 5}).cpu, 0.999);
  EXPECT_EQ(ToAmount({0.0004, 0}).cpu_milli(), 0u);
  EXPECT_EQ(ToAmount({2.0006, 0}).cpu_milli(), 2001u);
}

}  // namespace
}  // namespace augur::mesh
