// BidDesk (src/mesh/bid_desk.h): leases at once answered on the mesh thread from the room the
// bidder published, and taken up (or broken) by the placer on the engine thread.
#include "mesh/bid_desk.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mesh/mesh_link.h"
#include "mesh/mesh_placer.h"
#include "testing/stub_placer_host.h"

namespace augur::mesh {
namespace {

using workflow::Ledger;
using workflow::Resources;

constexpr uint64_t kGiB = 1ULL << 30;
constexpr Resources kQuarter{0.25, kGiB / 4};

wire::PlacementMessage Bid(const std::string& rid, Resources want, uint32_t lease_ttl_ms = 10'000,
                           const std::string& backend = "") {
  wire::PlacementMessage m;
  wire::BidRequest* b = m.mutable_bid_request();
  b->set_request_id(rid);
  b->set_shard("shard-" + rid);
  *b->mutable_want() = ToAmount(want);
  *b->mutable_min() = ToAmount(want);
  b->set_score(5);
  b->set_predicted_ms(4'000);
  b->set_hold_ms(200);
  b->set_backend(backend);
  b->set_lease_ttl_ms(lease_ttl_ms);
  return m;
}

BidderRoom Room(Resources room) { return {room, {}}; }

TEST(BidDeskTest, AnswersALeaseAtOnceThatFitsWithTheOfferTheBidderWouldMake) {
  BidDesk desk(BidderOptions{});
  Ledger ledger({1, kGiB});
  Bidder bidder("cand", BidderOptions{});
  EXPECT_FALSE(desk.Answer("owner", Bid("a@1", kQuarter), 0)) << "nothing published yet";
  desk.Publish(bidder.RoomNow(ledger));
  std::optional<wire::PlacementMessage> at_once = desk.Answer("owner", Bid("b@1", kQuarter), 0);
  ASSERT_TRUE(at_once);
  ASSERT_TRUE(at_once->has_offer());
  // The bidder, given the same request, offers the same terms.
  BidderOutput out;
  bidder.Handle("owner", Bid("b@1", kQuarter), 0, ledger, &out);
  ASSERT_EQ(out.messages.size(), 1u);
  const wire::Offer& bidders = out.messages[0].msg.offer();
  const wire::Offer& desks = at_once->offer();
  EXPECT_TRUE(desks.leased());
  EXPECT_TRUE(bidders.leased());
  EXPECT_EQ(desks.request_id(), "b@1");
  EXPECT_EQ(FromAmount(desks.grant()), FromAmount(bidders.grant()));
  EXPECT_EQ(desks.start_ms(), bidders.start_ms());
  EXPECT_EQ(desks.finish_ms(), bidders.finish_ms());
  EXPECT_EQ(desks.cost_class(), bidders.cost_class());
  EXPECT_EQ(desks.hold_ms(), bidders.hold_ms());
  // Its room is what is left after the promise, as the bidder's is after the lease.
  EXPECT_EQ(FromAmount(desks.room()), FromAmount(bidders.room()));
  EXPECT_EQ(desk.stats().answered, 1u);
}

TEST(BidDeskTest, LeavesToTheBidderWhatItCannotPromise) {
  BidderOptions o;
  o.backends = {{"process", {}}};
  BidDesk desk(o);
  desk.Publish(Room({0.5, kGiB}));
  EXPECT_FALSE(desk.Answer("owner", Bid("hold@1", kQuarter, 0), 0)) << "no lease at once asked";
  EXPECT_FALSE(desk.Answer("owner", Bid("vm@1", kQuarter, 10'000, "libvirt"), 0))
      << "a backend not here";
  EXPECT_FALSE(desk.Answer("owner", Bid("big@1", {1, kGiB / 4}), 0)) << "more than the room";
  ASSERT_TRUE(desk.Answer("owner", Bid("a@1", kQuarter), 0));
  EXPECT_FALSE(desk.Answer("owner", Bid("a@1", kQuarter), 0)) << "a duplicate";
  ASSERT_TRUE(desk.Answer("other", Bid("a@1", kQuarter), 0)) << "another owner's request";
  EXPECT_FALSE(desk.Answer("owner", Bid("c@1", kQuarter), 0)) << "the room is promised";
  // Taken up: the bidder's room now counts the first promise; the second is still out, and
  // out of the bidder's reach meanwhile.
  auto take = [&](const std::string& holder, Resources room, Resources out_of_reach) {
    return desk.Settle(
        holder, [&](const Resources& promised) { EXPECT_EQ(promised, out_of_reach); },
        [&] { return Room(room); });
  };
  EXPECT_TRUE(take(LeaseId("owner", "a@1"), {0.25, kGiB - kGiB / 4}, kQuarter));
  EXPECT_FALSE(desk.Answer("owner", Bid("d@1", kQuarter), 0));
  EXPECT_TRUE(take(LeaseId("other", "a@1"), {0, kGiB / 2}, Resources{}));
  EXPECT_FALSE(take(LeaseId("owner", "c@1"), {0, kGiB / 2}, Resources{})) << "never promised";
  desk.Publish(Room({0.25, kGiB / 2}));  // one lease ended
  EXPECT_TRUE(desk.Answer("owner", Bid("e@1", kQuarter), 0));
  o.lease_at_once = false;
  BidDesk off(o);
  off.Publish(Room({4, 4 * kGiB}));
  EXPECT_FALSE(off.Answer("owner", Bid("a@1", kQuarter), 0));
}

TEST(BidDeskTest, BytesThatDoNotDecodeAreLeftToTheBidder) {
  BidDesk desk(BidderOptions{});
  desk.Publish(Room({1, kGiB}));
  EXPECT_FALSE(desk.Answer("owner", std::string_view("\x08\x01garbage"), 0));
  Result<std::string> bytes = EncodePlacement(Bid("a@1", kQuarter));
  ASSERT_TRUE(bytes);
  std::optional<std::string> answer = desk.Answer("owner", std::string_view(*bytes), 0);
  ASSERT_TRUE(answer);
  Result<wire::PlacementMessage> decoded = DecodePlacement(*answer);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_TRUE(decoded->offer().leased());
}

// The desk on one thread (the mesh thread's), the bidder and its ledger on another (the
// engine thread's), as in augurd: every promise is taken up as made (nothing else takes the
// room), and the ledger never grants more than its capacity.
TEST(BidDeskTest, PromisesMadeOnOneThreadAreKeptByTheBidderOnAnother) {
  constexpr int kRequests = 4'000;
  BidDesk desk(BidderOptions{});
  Ledger ledger({2, 2 * kGiB});
  Bidder bidder("cand", BidderOptions{});
  desk.Publish(bidder.RoomNow(ledger));
  std::mutex mu;
  std::deque<wire::PlacementMessage> handed;  // the engine thread's queue
  std::atomic<bool> done{false};
  std::atomic<int> kept{0}, broken{0}, answered{0};
  std::thread engine([&] {
    int64_t now = 0;
    for (;;) {
      // Read `done` before taking the queue: read after, it may be set by a producer that
      // pushed its last requests between the two, and they would never be settled.
      const bool last = done;
      std::deque<wire::PlacementMessage> batch;
      {
        std::lock_guard lock(mu);
        batch.swap(handed);
      }
      if (batch.empty() && last) break;
      for (const wire::PlacementMessage& m : batch) {
        const std::string& rid = m.bid_request().request_id();
        BidderOutput out;
        std::optional<wire::Offer> promised = desk.Settle(
            LeaseId("owner", rid),
            [&](const Resources& elsewhere) {
              bidder.SetPromised(elsewhere);
              bidder.Handle("owner", m, ++now, ledger, &out);
            },
            [&] { return bidder.RoomNow(ledger); });
        EXPECT_TRUE(ledger.Granted().FitsIn(ledger.capacity()));
        if (promised) {
          const bool same = out.messages.size() == 1 && out.messages[0].msg.offer().leased() &&
                            FromAmount(out.messages[0].msg.offer().grant()) ==
                                FromAmount(promised->grant());
          (same ? kept : broken)++;
        }
        // Half the leases end at once, so that room comes and goes.
        if (std::hash<std::string>{}(rid) % 2 == 0) {
          wire::PlacementMessage release;
          release.mutable_release()->set_request_id(rid);
          BidderOutput r;
          desk.Settle(
              "",
              [&](const Resources& elsewhere) {
                bidder.SetPromised(elsewhere);
                bidder.Handle("owner", release, ++now, ledger, &r);
              },
              [&] { return bidder.RoomNow(ledger); });
        }
      }
    }
  });
  for (int i = 0; i < kRequests; ++i) {
    wire::PlacementMessage m = Bid("r" + std::to_string(i), kQuarter);
    if (desk.Answer("owner", m, i)) ++answered;
    std::lock_guard lock(mu);
    handed.push_back(std::move(m));
  }
  done = true;
  engine.join();
  EXPECT_GT(answered.load(), 0);
  EXPECT_GT(desk.stats().forwarded, 0u) << "room ran out at times: the bidder answered those";
  EXPECT_EQ(kept.load(), answered.load());
  EXPECT_EQ(broken.load(), 0);
  EXPECT_EQ(desk.stats().answered + desk.stats().forwarded, uint64_t(kRequests));
}

// The placer takes the desk's promises up on the engine thread: its bidder's own answer is
// not sent a second time; a promise the ledger can no longer keep (the local engine took the
// room after the desk's answer) is broken: nothing stays held, and the owner is told.
class Capture : public MeshLink {
 public:
  const std::string& self() const override { return self_; }
  Status Send(const std::string& host, Channel, std::string payload) override {
    auto m = DecodePlacement(payload);
    if (m) sent.push_back({host, *m});
    return Status::OK();
  }
  PeerView Peers() const override { return std::make_shared<std::vector<PlacementPeer>>(); }
  std::vector<std::pair<std::string, wire::PlacementMessage>> sent;

 private:
  std::string self_ = "cand";
};

class PlacerDeskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok()) << tmp_.error();
    host_ = std::make_unique<testing::StubPlacerHost>(tmp_.store(), Resources{0.5, kGiB});
    MeshPlacerOptions o;
    o.work_dir = tmp_.dir() + "/remote";
    placer_ = std::make_unique<MeshPlacer>(&link_, o);
    placer_->Bind(host_.get());
    placer_->RoomChanged();  // the room published, as the executor does after its Tick
  }
  void TearDown() override { placer_.reset(); }
  // The request as augurd's mesh thread sees it (the desk first), then the engine thread.
  std::optional<wire::PlacementMessage> Deliver(const wire::PlacementMessage& m) {
    std::optional<wire::PlacementMessage> at_once = placer_->desk().Answer("owner", m, 0);
    placer_->OnMessage("owner", uint32_t(Channel::kPlacement), *EncodePlacement(m), 0, 0);
    return at_once;
  }
  nlohmann::json Stats() const { return nlohmann::json::parse(placer_->StatsJson()); }

  testing::TempStore tmp_{"bid-desk"};
  Capture link_;
  std::unique_ptr<testing::StubPlacerHost> host_;
  std::unique_ptr<MeshPlacer> placer_;
};

TEST_F(PlacerDeskTest, APromiseKeptIsAnsweredOnceAndHeldAsALease) {
  ASSERT_TRUE(Deliver(Bid("a@1", kQuarter)));
  EXPECT_TRUE(link_.sent.empty()) << "the bidder's answer went a second time";
  EXPECT_EQ(Stats()["desk_kept"], 1);
  EXPECT_EQ(Stats()["bidder_leases"], 1);
  EXPECT_TRUE(host_->ledger_.Find(LeaseId("owner", "a@1")));
}

TEST_F(PlacerDeskTest, APromiseTheLedgerCannotKeepIsBrokenAndTheOwnerTold) {
  // The desk answers from the room published before the local engine took all of it.
  std::optional<wire::PlacementMessage> at_once = placer_->desk().Answer("owner", Bid("a@1", kQuarter), 0);
  ASSERT_TRUE(at_once);
  ASSERT_TRUE(host_->ledger_.Restore({"local", {0.5, kGiB}, {0.5, kGiB}, {0.5, kGiB}, 5}).ok());
  placer_->OnMessage("owner", uint32_t(Channel::kPlacement), *EncodePlacement(Bid("a@1", kQuarter)),
                     0, 0);
  ASSERT_EQ(link_.sent.size(), 1u);
  EXPECT_EQ(link_.sent[0].first, "owner");
  EXPECT_TRUE(link_.sent[0].second.has_reclaimed()) << link_.sent[0].second.DebugString();
  EXPECT_EQ(link_.sent[0].second.reclaimed().request_id(), "a@1");
  EXPECT_EQ(Stats()["desk_broken"], 1);
  EXPECT_EQ(Stats()["bidder_leases"], 0);
  EXPECT_FALSE(host_->ledger_.Find(LeaseId("owner", "a@1")));
  // The request is remembered as decided: sent again, it makes nothing.
  link_.sent.clear();
  EXPECT_FALSE(Deliver(Bid("a@1", kQuarter)));
  EXPECT_FALSE(host_->ledger_.Find(LeaseId("owner", "a@1")));
}

}  // namespace
}  // namespace augur::mesh
