#include "mesh/bidder.h"

#include <random>

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

using workflow::GrantChange;
using workflow::Ledger;
using workflow::Resources;

constexpr uint64_t kGiB = 1ULL << 30;
constexpr int64_t kMs = 1'000'000;

struct BidSpec {
  Resources want{1, kGiB};
  Resources min{1, kGiB};
  double score = 5;
  uint32_t predicted_ms = 10'000;
  uint32_t hold_ms = 100;
  bool may_shrink = false;
  std::string backend;
  std::optional<float> budget;
  bool avoid_preemptible = false;
  uint32_t queue_ms = 0;
};

BidSpec Spec(Resources want, Resources min, double score = 5, uint32_t predicted_ms = 10'000,
             bool may_shrink = false) {
  BidSpec s;
  s.want = want;
  s.min = min;
  s.score = score;
  s.predicted_ms = predicted_ms;
  s.may_shrink = may_shrink;
  return s;
}

wire::PlacementMessage Bid(const std::string& rid, const BidSpec& s = BidSpec()) {
  wire::PlacementMessage m;
  wire::BidRequest* b = m.mutable_bid_request();
  b->set_request_id(rid);
  b->set_shard("shard-" + rid);
  *b->mutable_want() = ToAmount(s.want);
  *b->mutable_min() = ToAmount(s.min);
  b->set_score(float(s.score));
  b->set_predicted_ms(s.predicted_ms);
  b->set_hold_ms(s.hold_ms);
  b->set_may_shrink(s.may_shrink);
  b->set_backend(s.backend);
  b->set_avoid_preemptible(s.avoid_preemptible);
  if (s.budget) b->set_budget_left(*s.budget);
  b->set_queue_ms(s.queue_ms);
  return m;
}

wire::PlacementMessage Simple(const std::string& kind, const std::string& rid, uint32_t ttl_ms = 0) {
  wire::PlacementMessage m;
  if (kind == "award") {
    m.mutable_award()->set_request_id(rid);
    m.mutable_award()->set_ttl_ms(ttl_ms);
  } else if (kind == "renew") {
    m.mutable_renew()->set_request_id(rid);
    m.mutable_renew()->set_ttl_ms(ttl_ms);
  } else if (kind == "decline") {
    m.mutable_decline()->set_request_id(rid);
  } else {
    m.mutable_release()->set_request_id(rid);
  }
  return m;
}

// The one message of `out` (asserting there is exactly one).
const wire::PlacementMessage& Only(const BidderOutput& out) {
  EXPECT_EQ(out.messages.size(), 1u);
  static const wire::PlacementMessage kNone;
  return out.messages.empty() ? kNone : out.messages.back().msg;
}

class BidderTest : public ::testing::Test {
 protected:
  BidderOutput Send(const std::string& from, const wire::PlacementMessage& m, int64_t now) {
    BidderOutput out;
    bidder_.Handle(from, m, now, ledger_, &out);
    return out;
  }
  BidderOutput Tick(int64_t now) {
    BidderOutput out;
    bidder_.Tick(now, ledger_, &out);
    return out;
  }
  Ledger ledger_{{4, 8 * kGiB}};
  Bidder bidder_{"cand", BidderOptions{}};
};

TEST_F(BidderTest, OffersTheMostOfWantThatFitsAndHoldsItInTheLedger) {
  BidderOutput out = Send("owner", Bid("a@1", Spec({3, 2 * kGiB}, {1, kGiB})), 0);
  const wire::PlacementMessage& m = Only(out);
  ASSERT_TRUE(m.has_offer());
  EXPECT_EQ(m.offer().refused(), "");
  EXPECT_EQ(FromAmount(m.offer().grant()), (Resources{3, 2 * kGiB}));
  EXPECT_EQ(out.messages[0].to, "owner");
  EXPECT_EQ(ledger_.Granted(), (Resources{3, 2 * kGiB}));
  EXPECT_NE(ledger_.Find(LeaseId("owner", "a@1")), nullptr);
  // The next one gets what is left, at least its min.
  out = Send("owner", Bid("b@1", Spec({3, 2 * kGiB}, {1, kGiB})), 1);
  EXPECT_EQ(FromAmount(Only(out).offer().grant()), (Resources{1, 2 * kGiB}));
  // Then there is no room for a third: a refusal that says why, and nothing held.
  out = Send("owner", Bid("c@1", Spec({3, 2 * kGiB}, {1, kGiB})), 2);
  EXPECT_NE(Only(out).offer().refused().find("no room"), std::string::npos);
  EXPECT_EQ(bidder_.holds(), 2u);
  EXPECT_EQ(ledger_.grants().size(), 2u);
  EXPECT_EQ(bidder_.stats().refusals, 1u);
}

TEST_F(BidderTest, EveryAnswerSaysTheRoomLeftAndWhatIsOnlyHeld) {
  BidderOutput out = Send("owner", Bid("a@1", Spec({3, 2 * kGiB}, {1, kGiB})), 0);
  ASSERT_TRUE(Only(out).offer().has_room());
  EXPECT_EQ(FromAmount(Only(out).offer().room()), (Resources{1, 6 * kGiB})) << "after its hold";
  EXPECT_EQ(FromAmount(Only(out).offer().held()), (Resources{3, 2 * kGiB}));
  out = Send("owner", Bid("b@1", Spec({1, 6 * kGiB}, {1, 6 * kGiB})), 1);
  // The award makes a@1 a lease: no longer only held.
  (void)Send("owner", Simple("award", "a@1"), 2);
  out = Send("other", Bid("c@1", Spec({1, kGiB}, {1, kGiB})), 3);
  ASSERT_FALSE(Only(out).offer().refused().empty());
  EXPECT_EQ(FromAmount(Only(out).offer().room()), (Resources{0, 0}));
  EXPECT_EQ(FromAmount(Only(out).offer().held()), (Resources{1, 6 * kGiB}));
  // A duplicate request gets its offer again, with the room as it is now.
  out = Send("owner", Bid("b@1", Spec({1, 6 * kGiB}, {1, 6 * kGiB})), 4);
  EXPECT_EQ(FromAmount(Only(out).offer().held()), (Resources{1, 6 * kGiB}));
  // As a peer from before the fields: none.
  BidderOptions old;
  old.report_room = false;
  Bidder older("cand", old);
  Ledger ledger({4, 8 * kGiB});
  BidderOutput o2;
  older.Handle("owner", Bid("a@1", Spec({3, 2 * kGiB}, {1, kGiB})), 0, ledger, &o2);
  EXPECT_FALSE(Only(o2).offer().has_room());
  EXPECT_FALSE(Only(o2).offer().has_held());
}

TEST_F(BidderTest, OfferPredictsAFinishStretchedByAShortGrant) {
  BidderOptions opt;
  opt.startup_s = 0.5;
  Bidder b("cand", opt);
  BidderOutput out;
  ledger_.SetCapacity({1, 8 * kGiB});
  b.Handle("o", Bid("a@1", Spec({2, kGiB}, {0.5, kGiB}, 5, 10'000)), 0, ledger_, &out);
  const wire::Offer& o = Only(out).offer();
  EXPECT_EQ(FromAmount(o.grant()).cpu, 1);
  EXPECT_EQ(o.start_ms(), 500u);
  EXPECT_EQ(o.finish_ms(), 500u + 20'000u);  // half the CPU: twice as long
  EXPECT_EQ(o.hold_ms(), 100u);
}

TEST_F(BidderTest, AHoldNeitherAwardedNorDeclinedExpires) {
  Send("o", Bid("a@1"), 0);
  ASSERT_EQ(bidder_.NextDeadline(), 100 * kMs);
  EXPECT_TRUE(Tick(100 * kMs - 1).messages.empty());
  EXPECT_EQ(bidder_.holds(), 1u);
  Tick(100 * kMs);
  EXPECT_EQ(bidder_.holds(), 0u);
  EXPECT_TRUE(ledger_.grants().empty());
  EXPECT_EQ(bidder_.stats().holds_expired, 1u);
  // An award that comes too late is answered: there is no lease.
  BidderOutput out = Send("o", Simple("award", "a@1", 1000), 150 * kMs);
  ASSERT_TRUE(Only(out).has_reclaimed());
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(ledger_.grants().empty());
}

TEST_F(BidderTest, AnAwardMakesALeaseThatRenewsAndIsReclaimedWhenRenewalsStop) {
  Send("o", Bid("a@1", Spec({2, kGiB}, {1, kGiB})), 0);
  BidderOutput out = Send("o", Simple("award", "a@1", 1000), 50 * kMs);
  ASSERT_TRUE(Only(out).has_leased());
  EXPECT_EQ(FromAmount(out.messages[0].msg.leased().grant()), (Resources{2, kGiB}));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kLeased);
  EXPECT_EQ(out.events[0].lease_id, LeaseId("o", "a@1"));
  EXPECT_EQ(out.events[0].shard, "shard-a@1");
  EXPECT_EQ(bidder_.leases(), 1u);
  EXPECT_EQ(bidder_.NextDeadline(), 1050 * kMs);
  // Renewed before it runs out: it lasts another ttl from now.
  out = Send("o", Simple("renew", "a@1", 1000), 900 * kMs);
  ASSERT_TRUE(Only(out).has_leased());
  EXPECT_TRUE(Tick(1050 * kMs).events.empty());
  EXPECT_EQ(bidder_.leases(), 1u);
  // Then no more renewals: reclaimed at 1900 ms, the executor told to stop it, the owner told.
  out = Tick(1900 * kMs);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kReclaimed);
  ASSERT_TRUE(Only(out).has_reclaimed());
  EXPECT_EQ(out.messages[0].to, "o");
  EXPECT_TRUE(ledger_.grants().empty());
  // A renewal after that cannot revive it.
  out = Send("o", Simple("renew", "a@1", 1000), 2000 * kMs);
  ASSERT_TRUE(Only(out).has_reclaimed());
  EXPECT_TRUE(ledger_.grants().empty());
}

TEST_F(BidderTest, DuplicatesAreAnsweredAsBeforeAndChangeNothing) {
  BidderOutput first = Send("o", Bid("a@1"), 0);
  BidderOutput again = Send("o", Bid("a@1"), 1);
  EXPECT_EQ(Only(again).SerializeAsString(), Only(first).SerializeAsString());
  EXPECT_EQ(ledger_.grants().size(), 1u);
  Send("o", Simple("award", "a@1", 1000), 2);
  BidderOutput dup = Send("o", Simple("award", "a@1", 1000), 3);
  ASSERT_TRUE(Only(dup).has_leased());
  EXPECT_TRUE(dup.events.empty());  // started once
  EXPECT_TRUE(Send("o", Bid("a@1"), 4).messages.empty());  // no second offer once leased
  Send("o", Simple("release", "a@1"), 5);
  BidderOutput late = Send("o", Simple("release", "a@1"), 6);
  EXPECT_TRUE(late.events.empty());
  EXPECT_TRUE(Send("o", Bid("a@1"), 7).messages.empty());  // decided: no new hold
  EXPECT_TRUE(ledger_.grants().empty());
  EXPECT_EQ(bidder_.stats().leases, 1u);
  EXPECT_EQ(bidder_.stats().offers, 1u);
}

TEST_F(BidderTest, ADeclineThatOvertakesItsRequestIsRemembered) {
  Send("o", Simple("decline", "a@1"), 0);
  EXPECT_TRUE(Send("o", Bid("a@1"), 1).messages.empty());
  EXPECT_TRUE(ledger_.grants().empty());
  // The same request id from another owner is another request.
  EXPECT_TRUE(Only(Send("p", Bid("a@1"), 2)).has_offer());
}

TEST_F(BidderTest, ReleaseFreesTheLeaseAndStopsTheShard) {
  Send("o", Bid("a@1"), 0);
  Send("o", Simple("award", "a@1", 1000), 1);
  BidderOutput out = Send("o", Simple("release", "a@1"), 2);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kReleased);
  EXPECT_TRUE(ledger_.grants().empty());
  EXPECT_EQ(bidder_.NextDeadline(), std::nullopt);
}

TEST_F(BidderTest, ARequestThatAsksForALeaseAtOnceGetsOneWithoutAnAward) {
  wire::PlacementMessage bid = Bid("a@1", Spec({2, kGiB}, {1, kGiB}));
  bid.mutable_bid_request()->set_lease_ttl_ms(1000);
  BidderOutput out = Send("o", bid, 0);
  ASSERT_TRUE(Only(out).has_offer());
  EXPECT_TRUE(out.messages[0].msg.offer().leased());
  ASSERT_EQ(out.events.size(), 1u);  // started when its RunShard comes, as after an award
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kLeased);
  EXPECT_EQ(out.events[0].grant, (Resources{2, kGiB}));
  EXPECT_EQ(bidder_.leases(), 1u);
  EXPECT_EQ(bidder_.holds(), 0u);
  EXPECT_EQ(bidder_.NextDeadline(), 1000 * kMs);  // the lease's ttl, not a hold's
  // A duplicate request is answered with the same leased offer and starts nothing again;
  // an award (an owner resending) is answered Leased.
  BidderOutput dup = Send("o", bid, 1);
  EXPECT_EQ(Only(dup).SerializeAsString(), out.messages[0].msg.SerializeAsString());
  EXPECT_TRUE(dup.events.empty());
  ASSERT_TRUE(Only(Send("o", Simple("award", "a@1", 1000), 2)).has_leased());
  // Declined (its owner took another offer): released, the shard stopped if it started.
  out = Send("o", Simple("decline", "a@1"), 3);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kReleased);
  EXPECT_TRUE(ledger_.grants().empty());
  EXPECT_TRUE(Send("o", bid, 4).messages.empty());  // decided: never a second lease
  EXPECT_EQ(bidder_.stats().leased_at_once, 1u);
}

TEST_F(BidderTest, AnOlderPeerHoldsARequestForALeaseAtOnceAndWaitsForTheAward) {
  BidderOptions older;
  older.lease_at_once = false;
  bidder_ = Bidder("cand", older);
  wire::PlacementMessage bid = Bid("a@1", Spec({2, kGiB}, {1, kGiB}));
  bid.mutable_bid_request()->set_lease_ttl_ms(1000);
  BidderOutput out = Send("o", bid, 0);
  ASSERT_TRUE(Only(out).has_offer());
  EXPECT_FALSE(out.messages[0].msg.offer().leased());
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(bidder_.holds(), 1u);
  ASSERT_TRUE(Only(Send("o", Simple("award", "a@1", 1000), 1)).has_leased());
}

TEST_F(BidderTest, ShrinksLowerScoreGrantsOnlyWhenTheRequestMayAndReportsTheChanges) {
  // A local attempt of the engine holds the whole host at a low score.
  const workflow::ReservationRequest local{"wf/s/0#1", {4, 4 * kGiB}, {1, kGiB}, 1};
  ASSERT_TRUE(ledger_.ApplyAdmission(local, {{4, 4 * kGiB}, {}}).ok());
  BidSpec s = Spec({2, kGiB}, {2, kGiB}, 9);
  BidderOutput out = Send("o", Bid("a@1", s), 0);
  EXPECT_NE(Only(out).offer().refused().find("without shrinking"), std::string::npos);
  EXPECT_EQ(ledger_.Find("wf/s/0#1")->granted.cpu, 4);
  s.may_shrink = true;
  out = Send("o", Bid("a@2", s), 1);
  EXPECT_EQ(FromAmount(Only(out).offer().grant()).cpu, 2);
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].kind, GrantChange::Kind::kShrink);
  EXPECT_EQ(out.changes[0].holder, "wf/s/0#1");
  EXPECT_EQ(out.changes[0].to.cpu, 2);
  EXPECT_EQ(ledger_.Find("wf/s/0#1")->granted.cpu, 2);
  EXPECT_TRUE(ledger_.Granted().FitsIn(ledger_.capacity()));
  // A request of lower score than the holder shrinks nothing.
  s.score = 0.5;
  out = Send("o", Bid("a@3", s), 2);
  EXPECT_FALSE(Only(out).offer().refused().empty());
  EXPECT_TRUE(out.changes.empty());
}

TEST_F(BidderTest, AShrunkLeaseIsToldToItsOwnerAndGrowsBackWhenRoomReturns) {
  Send("low", Bid("a@1", Spec({4, kGiB}, {1, kGiB}, 1)), 0);
  Send("low", Simple("award", "a@1", 10'000), 1);
  BidderOutput out = Send("high", Bid("b@1", Spec({3, kGiB}, {3, kGiB}, 9, 1000, true)), 2);
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[0].to, "high");
  EXPECT_TRUE(out.messages[0].msg.has_offer());
  EXPECT_EQ(out.messages[1].to, "low");
  ASSERT_TRUE(out.messages[1].msg.has_lease_changed());
  EXPECT_EQ(FromAmount(out.messages[1].msg.lease_changed().grant()).cpu, 1);
  ASSERT_EQ(out.changes.size(), 1u);  // the executor resizes the running lease
  EXPECT_EQ(out.changes[0].holder, LeaseId("low", "a@1"));
  // The high one is declined: the low lease grows back, and its owner hears of it.
  out = Send("high", Simple("decline", "b@1"), 3);
  ASSERT_EQ(out.changes.size(), 1u);
  EXPECT_EQ(out.changes[0].kind, GrantChange::Kind::kGrow);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(FromAmount(out.messages[0].msg.lease_changed().grant()).cpu, 4);
  EXPECT_EQ(ledger_.Find(LeaseId("low", "a@1"))->granted.cpu, 4);
}

TEST_F(BidderTest, ChangesTheEngineMakesToLeasesAreToldToTheirOwners) {
  Send("o", Bid("a@1", Spec({2, kGiB}, {1, kGiB}, 1)), 0);
  Send("o", Simple("award", "a@1", 10'000), 1);
  Send("o", Bid("b@1", Spec({1, kGiB}, {1, kGiB}, 1)), 2);  // a hold
  // The engine pre-empts both for a local shard (it applied that to the ledger itself).
  const std::string lease = LeaseId("o", "a@1"), hold = LeaseId("o", "b@1");
  std::vector<GrantChange> engine = {
      {GrantChange::Kind::kPreempt, lease, {2, kGiB}, {}, "local"},
      {GrantChange::Kind::kPreempt, hold, {1, kGiB}, {}, "local"},
      {GrantChange::Kind::kShrink, "wf/x#1", {2, kGiB}, {1, kGiB}, "local"}};
  for (const GrantChange& c : engine) {
    if (c.kind == GrantChange::Kind::kPreempt) {
      ASSERT_TRUE(ledger_.ApplyChange(c).ok());
    }
  }
  BidderOutput out;
  bidder_.NoteLedgerChanges(engine, 3, &out);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_TRUE(out.messages[0].msg.has_reclaimed());
  EXPECT_NE(out.messages[0].msg.reclaimed().reason().find("pre-empted"), std::string::npos);
  ASSERT_EQ(out.changes.size(), 1u);  // the lease: the engine does not run it
  EXPECT_EQ(out.changes[0].holder, lease);
  EXPECT_EQ(bidder_.leases() + bidder_.holds(), 0u);
  // The pre-empted hold's award is answered Reclaimed.
  EXPECT_TRUE(Only(Send("o", Simple("award", "b@1", 1000), 4)).has_reclaimed());
}

TEST_F(BidderTest, ChoosesTheCheapestCostClassThatFitsTheBudget) {
  BidderOptions o;
  o.backends = {{"libvirt", {{"on-demand", 1.0, 0, false}, {"spot", 0.25, 0, true}}},
                {"process", {}}};
  Bidder b("cand", o);
  ledger_.SetCapacity({16, 16 * kGiB});
  auto offer = [&](const std::string& rid, BidSpec s) {
    BidderOutput out;
    b.Handle("o", Bid(rid, s), 0, ledger_, &out);
    return Only(out).offer();
  };
  BidSpec s = Spec({2, kGiB}, {2, kGiB});
  s.backend = "libvirt";
  wire::Offer spot = offer("a@1", s);
  EXPECT_EQ(spot.cost_class(), "spot");
  EXPECT_FLOAT_EQ(spot.cost_per_hour(), 0.5f);
  EXPECT_TRUE(spot.preemptible());
  s.avoid_preemptible = true;
  wire::Offer od = offer("b@1", s);
  EXPECT_EQ(od.cost_class(), "on-demand");
  EXPECT_FLOAT_EQ(od.cost_per_hour(), 2.0f);
  s.backend = "docker";
  EXPECT_NE(offer("c@1", s).refused().find("no backend docker"), std::string::npos);
  // A budget too small for any class still gets an offer at the cheapest (the owner judges).
  s.backend = "libvirt";
  s.avoid_preemptible = false;
  s.budget = 0.0f;
  EXPECT_EQ(offer("d@1", s).cost_class(), "spot");
}

BidSpec Queued(Resources r, double score = 5, uint32_t queue_ms = 1000) {
  BidSpec s = Spec(r, r, score);
  s.queue_ms = queue_ms;
  return s;
}

TEST_F(BidderTest, WithoutRoomARequestWaitsInTheQueueAndIsOfferedWhenRoomFrees) {
  Send("o", Bid("a@1", Spec({3, kGiB}, {3, kGiB})), 0);
  Send("o", Simple("award", "a@1", 10'000), 1);
  // No room: queued (and told so), nothing held.
  BidderOutput out = Send("p", Bid("b@1", Queued({2, kGiB})), 2);
  ASSERT_TRUE(Only(out).has_offer());
  EXPECT_TRUE(out.messages[0].msg.offer().queued());
  EXPECT_EQ(bidder_.queued(), 1u);
  EXPECT_EQ(ledger_.grants().size(), 1u);
  // A duplicate is told the same; a small newcomer does not get the core that is free,
  // since the queued request needs it first: it queues behind.
  EXPECT_TRUE(Only(Send("p", Bid("b@1", Queued({2, kGiB})), 3)).offer().queued());
  EXPECT_TRUE(Only(Send("q", Bid("c@1", Queued({1, kGiB})), 4)).offer().queued());
  EXPECT_EQ(bidder_.queued(), 2u);
  // The lease ends: both get their offers, in order, and hold their grants.
  out = Send("o", Simple("release", "a@1"), 5);
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[0].to, "p");
  EXPECT_EQ(FromAmount(out.messages[0].msg.offer().grant()).cpu, 2);
  EXPECT_EQ(out.messages[1].to, "q");
  EXPECT_EQ(FromAmount(out.messages[1].msg.offer().grant()).cpu, 1);
  EXPECT_EQ(bidder_.queued(), 0u);
  EXPECT_EQ(bidder_.holds(), 2u);
  EXPECT_EQ(bidder_.stats().queued, 2u);
}

TEST_F(BidderTest, TheQueueServesHigherScoresFirstAndForgetsDeclinedRequests) {
  Send("o", Bid("a@1", Spec({4, kGiB}, {4, kGiB})), 0);
  Send("p", Bid("low@1", Queued({2, kGiB}, 1)), 1);
  Send("p", Bid("gone@1", Queued({2, kGiB}, 9)), 2);
  Send("p", Bid("high@1", Queued({2, kGiB}, 8)), 3);
  EXPECT_TRUE(Send("p", Simple("decline", "gone@1"), 4).messages.empty());
  EXPECT_EQ(bidder_.queued(), 2u);
  BidderOutput out = Send("o", Simple("decline", "a@1"), 5);
  ASSERT_EQ(out.messages.size(), 2u);
  EXPECT_EQ(out.messages[0].msg.offer().request_id(), "high@1");
  EXPECT_EQ(out.messages[1].msg.offer().request_id(), "low@1");
  // A declined request that comes again is not queued again.
  EXPECT_TRUE(Send("p", Bid("gone@1", Queued({2, kGiB}, 9)), 6).messages.empty());
}

TEST_F(BidderTest, AQueuedRequestThatFindsNoRoomInTimeIsRefused) {
  Send("o", Bid("a@1", Spec({4, kGiB}, {4, kGiB})), 0);
  Send("o", Simple("award", "a@1", 10'000), 1);
  Send("p", Bid("b@1", Queued({1, kGiB}, 5, 300)), 2 * kMs);
  EXPECT_EQ(bidder_.NextDeadline(), 302 * kMs);
  BidderOutput out = Tick(302 * kMs);
  ASSERT_TRUE(Only(out).has_offer());
  EXPECT_NE(out.messages[0].msg.offer().refused().find("waited 300 ms"), std::string::npos);
  EXPECT_EQ(bidder_.queued(), 0u);
  EXPECT_EQ(bidder_.stats().queue_expired, 1u);
  // Room later does not revive it.
  EXPECT_TRUE(Send("o", Simple("release", "a@1"), 400 * kMs).messages.empty());
}

// Random traffic from several owners (requests, awards, declines, renewals, releases,
// duplicates and reorderings, time passing): the ledger never grants more than it has,
// every grant stays between its min and want, and the bidder's holds and leases are
// exactly the ledger's grants.
TEST(BidderProperty, NeverOverGrantsAndKeepsItsBooksInStepWithTheLedger) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    Ledger ledger({8, 16 * kGiB});
    BidderOptions opt;
    opt.max_ttl_ns = 500 * kMs;
    Bidder bidder("cand", opt);
    int64_t now = 0;
    std::vector<std::pair<std::string, std::string>> seen;  // (owner, request id)
    std::uniform_int_distribution<int> pick(0, 99);
    for (int step = 0; step < 600; ++step) {
      now += int64_t(rng() % 20) * kMs;
      BidderOutput out;
      const int p = pick(rng);
      if (p < 35 || seen.empty()) {
        const std::string owner = "o" + std::to_string(rng() % 3);
        const std::string rid = "r" + std::to_string(step);
        const double want = 0.5 + double(rng() % 40) / 10;
        const double min = want * double(1 + rng() % 10) / 10;
        BidSpec s = Spec({want, (1 + rng() % 6) * kGiB}, {min, kGiB}, double(rng() % 10));
        s.hold_ms = uint32_t(20 + rng() % 200);
        s.may_shrink = rng() % 2 == 0;
        s.queue_ms = rng() % 2 ? uint32_t(rng() % 300) : 0;
        bidder.Handle(owner, Bid(rid, s), now, ledger, &out);
        seen.emplace_back(owner, rid);
      } else {
        // Mostly about recent requests, so that holds get awarded and leases renewed.
        const auto& [owner, rid] = seen[seen.size() - 1 - rng() % std::min<size_t>(seen.size(), 8)];
        static const char* kKinds[] = {"award", "decline", "renew", "release"};
        const std::string kind = kKinds[rng() % 4];
        bidder.Handle(owner, Simple(kind, rid, uint32_t(50 + rng() % 400)), now, ledger, &out);
        if (p > 95) {  // a duplicated message
          const auto& [o2, r2] = seen[rng() % seen.size()];
          bidder.Handle(o2, Bid(r2), now, ledger, &out);
        }
      }
      bidder.Tick(now, ledger, &out);
      ASSERT_TRUE(ledger.Granted().FitsIn(ledger.capacity())) << "seed " << seed << " step " << step;
      for (const auto& [holder, g] : ledger.grants()) {
        ASSERT_TRUE(g.min.FitsIn(g.granted) && g.granted.FitsIn(g.want)) << holder;
        ASSERT_TRUE(bidder.Owns(holder)) << holder;
      }
      ASSERT_EQ(bidder.holds() + bidder.leases(), ledger.grants().size());
    }
    // The traffic did exercise every path.
    const BidderStats& st = bidder.stats();
    EXPECT_GT(st.offers, 0u);
    EXPECT_GT(st.refusals, 0u);
    EXPECT_GT(st.leases, 0u);
    EXPECT_GT(st.renewals, 0u);
    EXPECT_GT(st.holds_expired + st.leases_reclaimed, 0u);
    EXPECT_GT(st.queued, 0u);
    // Nothing renewed for longer than any hold or ttl: everything is given back.
    BidderOutput out;
    bidder.Tick(now + 2'000 * kMs, ledger, &out);
    EXPECT_TRUE(ledger.grants().empty()) << "seed " << seed;
    EXPECT_EQ(bidder.queued(), 0u);
  }
}

}  // namespace
}  // namespace augur::mesh

// After this host restarted (docs/MESH.md, "Running shards on other hosts", Restarts): a
// persisted lease is held again and its owner told; the owner's messages then act on it as on
// any lease.
namespace augur::mesh {
namespace {

workflow::LeaseRecord Persisted(const std::string& owner, const std::string& rid,
                                Resources grant) {
  workflow::LeaseRecord l;
  l.lease_id = LeaseId(owner, rid);
  l.owner = owner;
  l.request_id = rid;
  l.attempt_id = "shard-" + rid;
  l.backend = "process";
  l.want = grant;
  l.min = grant;
  l.grant = grant;
  l.score = 5;
  l.ttl_ns = 1000 * kMs;
  return l;
}

TEST_F(BidderTest, ARestoredLeaseIsHeldAgainItsOwnerToldAndItExpiresUnrenewed) {
  BidderOutput out;
  ASSERT_TRUE(bidder_.Restore(Persisted("owner", "a@1", {1, kGiB}), 0, ledger_, &out).ok());
  EXPECT_EQ(bidder_.leases(), 1u);
  EXPECT_EQ(ledger_.Granted(), (Resources{1, kGiB}));
  const wire::PlacementMessage& m = Only(out);
  ASSERT_TRUE(m.has_leased());
  EXPECT_EQ(out.messages[0].to, "owner");
  EXPECT_EQ(m.leased().request_id(), "a@1");
  EXPECT_EQ(FromAmount(m.leased().grant()), (Resources{1, kGiB}));
  // Known, or not its lease id: refused, nothing held twice.
  BidderOutput none;
  EXPECT_FALSE(bidder_.Restore(Persisted("owner", "a@1", {1, kGiB}), 0, ledger_, &none).ok());
  workflow::LeaseRecord wrong = Persisted("owner", "b@1", {1, kGiB});
  wrong.lease_id = "other/b@1";
  EXPECT_FALSE(bidder_.Restore(wrong, 0, ledger_, &none).ok());
  EXPECT_TRUE(none.messages.empty());
  EXPECT_EQ(ledger_.grants().size(), 1u);
  // The owner renews it as any lease.
  out = Send("owner", Simple("renew", "a@1", 1000), 500 * kMs);
  ASSERT_TRUE(Only(out).has_leased());
  // Unrenewed for its ttl: reclaimed, the task to be stopped, the ledger freed.
  out = Tick(1500 * kMs);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, BidderEvent::Kind::kReclaimed);
  EXPECT_EQ(ledger_.grants().size(), 0u);
}

TEST_F(BidderTest, ARestoredLeaseWhoseMinNoLongerFitsIsNotHeld) {
  ledger_.SetCapacity({1, 8 * kGiB});
  BidderOutput out;
  ASSERT_TRUE(bidder_.Restore(Persisted("o", "a@1", {1, kGiB}), 0, ledger_, &out).ok());
  Status st = bidder_.Restore(Persisted("o", "b@1", {0.5, kGiB}), 0, ledger_, &out);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_EQ(bidder_.leases(), 1u);
  // Its owner's renewal is answered Reclaimed: it places the shard again.
  out = Send("o", Simple("renew", "b@1", 1000), kMs);
  EXPECT_TRUE(Only(out).has_reclaimed());
}

}  // namespace
}  // namespace augur::mesh
