#include "mesh/negotiator.h"

#include <set>

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

using workflow::Resources;

constexpr uint64_t kGiB = 1ULL << 30;
constexpr int64_t kMs = 1'000'000;

PlacementPeer Peer(const std::string& name, Resources free, bool alive = true,
                   const std::string& zone = "z1") {
  PlacementPeer p;
  p.name = name;
  p.zone = zone;
  p.alive = alive;
  p.headroom_version = 1;
  p.headroom.horizons = {{0, free, free}, {600, free, free}};
  p.headroom.zone = zone;
  return p;
}

ShardRequest Shard(const std::string& id, Resources want = {1, kGiB}, Resources min = {1, kGiB}) {
  ShardRequest s;
  s.shard = id;
  s.workflow = "wf";
  s.want = want;
  s.min = min;
  s.score = 5;
  s.predicted_s = 10;
  return s;
}

wire::PlacementMessage OfferMsg(const std::string& rid, Resources grant, uint32_t finish_ms,
                                float cost_per_hour = 0) {
  wire::PlacementMessage m;
  wire::Offer* o = m.mutable_offer();
  o->set_request_id(rid);
  *o->mutable_grant() = ToAmount(grant);
  o->set_finish_ms(finish_ms);
  o->set_cost_per_hour(cost_per_hour);
  return m;
}

wire::PlacementMessage Refusal(const std::string& rid) {
  wire::PlacementMessage m;
  m.mutable_offer()->set_request_id(rid);
  m.mutable_offer()->set_refused("no room");
  return m;
}

wire::PlacementMessage LeasedMsg(const std::string& rid, Resources grant) {
  wire::PlacementMessage m;
  m.mutable_leased()->set_request_id(rid);
  *m.mutable_leased()->mutable_grant() = ToAmount(grant);
  return m;
}

// The messages of one body kind, by destination.
std::multiset<std::string> To(const NegotiatorOutput& out, wire::PlacementMessage::BodyCase kind) {
  std::multiset<std::string> hosts;
  for (const PlacementOutgoing& m : out.messages) {
    if (m.msg.body_case() == kind) hosts.insert(m.to);
  }
  return hosts;
}

class NegotiatorTest : public ::testing::Test {
 protected:
  NegotiatorTest() {
    for (int i = 0; i < 10; ++i) peers_.push_back(Peer("h" + std::to_string(i), {8, 32 * kGiB}));
    o_.seed = 3;
  }
  NegotiatorOutput Tick(Negotiator& n, int64_t now) {
    NegotiatorOutput out;
    n.Tick(now, peers_, &out);
    return out;
  }
  NegotiatorOutput Handle(Negotiator& n, const std::string& from, const wire::PlacementMessage& m,
                          int64_t now) {
    NegotiatorOutput out;
    n.Handle(from, m, now, &out);
    return out;
  }
  // The hosts shard `id`'s probes of its current round went to (from out).
  static std::vector<std::string> Probed(const NegotiatorOutput& out, const std::string& rid) {
    std::vector<std::string> hosts;
    for (const PlacementOutgoing& m : out.messages) {
      if (m.msg.has_bid_request() && m.msg.bid_request().request_id() == rid) hosts.push_back(m.to);
    }
    return hosts;
  }
  std::vector<PlacementPeer> peers_;
  NegotiatorOptions o_;
};

TEST_F(NegotiatorTest, ABatchOfMShardsSendsDTimesMProbesToDistinctLiveHosts) {
  peers_[1].alive = peers_[4].alive = peers_[7].alive = false;  // suspect, dead or left
  Negotiator n("owner", o_);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(n.Submit(Shard("s" + std::to_string(i)), 0).ok());
  EXPECT_EQ(n.NextDeadline(), 0);
  NegotiatorOutput out = Tick(n, 0);
  const auto probed = To(out, wire::PlacementMessage::kBidRequest);
  EXPECT_EQ(probed.size(), 6u);
  EXPECT_EQ(std::set<std::string>(probed.begin(), probed.end()).size(), 6u);
  for (const std::string& h : probed) EXPECT_TRUE(h != "h1" && h != "h4" && h != "h7") << h;
  EXPECT_EQ(n.stats().probes, 6u);
  EXPECT_EQ(n.NextDeadline(), o_.offer_wait_ns);
  // The view shows room: candidates are asked to refuse at once rather than queue.
  for (const PlacementOutgoing& m : out.messages) EXPECT_EQ(m.msg.bid_request().queue_ms(), 0u);
}

TEST_F(NegotiatorTest, SamplingPrefersHostsWhereTheShardFits) {
  for (int i = 0; i < 5; ++i) peers_[i] = Peer("full" + std::to_string(i), {0.2, kGiB / 4});
  int to_full = 0, total = 0;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    o_.seed = seed;
    Negotiator n("owner", o_);
    ASSERT_TRUE(n.Submit(Shard("s", {2, 2 * kGiB}, {1, kGiB}), 0).ok());
    for (const std::string& h : Probed(Tick(n, 0), "s@1")) {
      ++total;
      to_full += h.starts_with("full");
    }
  }
  EXPECT_EQ(total, 200);
  EXPECT_LT(to_full, 10);  // each full host weighs 0.02 x 0.2 against 1 x 8 for a roomy one
}

TEST_F(NegotiatorTest, AwardsTheEarliestFinishThenTheCheapestAndDeclinesTheRest) {
  o_.probes_per_shard = 3;
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s", {2, kGiB}, {1, kGiB}), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_TRUE(Handle(n, hosts[0], OfferMsg("s@1", {1, kGiB}, 20'000, 0), kMs).messages.empty());
  Handle(n, hosts[1], OfferMsg("s@1", {2, kGiB}, 10'000, 0.5), kMs);
  NegotiatorOutput out = Handle(n, hosts[2], OfferMsg("s@1", {2, kGiB}, 10'000, 0.25), kMs);
  // All three answered: decided now, without waiting for the deadline.
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{hosts[2]});
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline),
            (std::multiset<std::string>{hosts[0], hosts[1]}));
  EXPECT_TRUE(out.events.empty());  // placed only when the candidate confirms the lease
  out = Handle(n, hosts[2], LeasedMsg("s@1", {2, kGiB}), 2 * kMs);
  ASSERT_EQ(out.events.size(), 1u);
  const PlacementEvent& e = out.events[0];
  EXPECT_EQ(e.kind, PlacementEvent::Kind::kAwarded);
  EXPECT_EQ(e.host, hosts[2]);
  EXPECT_EQ(e.shard, "s");
  EXPECT_EQ(e.lease_id, LeaseId("owner", "s@1"));
  EXPECT_EQ(e.grant, (Resources{2, kGiB}));
  EXPECT_EQ(e.at_ns - e.ready_ns, 2 * kMs);
  EXPECT_EQ(e.rounds, 1u);
  EXPECT_EQ(n.leased(), 1u);
  EXPECT_EQ(n.pending(), 0u);
}

TEST_F(NegotiatorTest, TheFirstProbeAsksForALeaseAtOnceAndItsOfferPlacesTheShard) {
  o_.at_once_probes = 1;
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s", {2, kGiB}, {1, kGiB}), 0).ok());
  NegotiatorOutput out = Tick(n, 0);
  const std::vector<std::string> hosts = Probed(out, "s@1");
  ASSERT_EQ(hosts.size(), 2u);
  // Only the first-ranked probe asks for it; the other is the fallback.
  EXPECT_EQ(out.messages[0].msg.bid_request().lease_ttl_ms(), uint32_t(o_.lease_ttl_ns / kMs));
  EXPECT_EQ(out.messages[1].msg.bid_request().lease_ttl_ms(), 0u);
  // The fallback offers first: the owner waits for the first-ranked one.
  EXPECT_TRUE(Handle(n, hosts[1], OfferMsg("s@1", {2, kGiB}, 10'000), kMs).messages.empty());
  wire::PlacementMessage leased = OfferMsg("s@1", {2, kGiB}, 20'000);
  leased.mutable_offer()->set_leased(true);
  out = Handle(n, hosts[0], leased, 2 * kMs);
  // Placed at once (one round trip, no Award), though the fallback would finish sooner;
  // the fallback's hold is declined.
  EXPECT_TRUE(To(out, wire::PlacementMessage::kAward).empty());
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline), std::multiset<std::string>{hosts[1]});
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, PlacementEvent::Kind::kAwarded);
  EXPECT_EQ(out.events[0].host, hosts[0]);
  EXPECT_TRUE(out.events[0].leased_at_once);
  EXPECT_EQ(out.events[0].at_ns, 2 * kMs);
  EXPECT_EQ(n.leased(), 1u);
  EXPECT_EQ(n.stats().leased_at_once, 1u);
  // Renewed as any lease; a duplicate of the leased offer changes nothing.
  EXPECT_TRUE(Handle(n, hosts[0], leased, 3 * kMs).messages.empty());
  EXPECT_EQ(n.NextDeadline(), 2 * kMs + o_.lease_ttl_ns / 4);
}

// With at_once_probes = d (the default), every probe whose host shows room for two asks for
// the lease at once: the quickest answer places the shard, the other is declined (a Decline
// releases a lease made at once), and a lease that comes after is released.
TEST_F(NegotiatorTest, EveryProbeAsksForALeaseAtOnceAndTheQuickestPlacesTheShard) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s", {2, kGiB}, {1, kGiB}), 0).ok());
  NegotiatorOutput out = Tick(n, 0);
  const std::vector<std::string> hosts = Probed(out, "s@1");
  ASSERT_EQ(hosts.size(), 2u);
  for (const PlacementOutgoing& m : out.messages) {
    EXPECT_EQ(m.msg.bid_request().lease_ttl_ms(), uint32_t(o_.lease_ttl_ns / kMs)) << m.to;
  }
  // The second-ranked host answers first: its lease places the shard.
  wire::PlacementMessage leased = OfferMsg("s@1", {2, kGiB}, 20'000);
  leased.mutable_offer()->set_leased(true);
  out = Handle(n, hosts[1], leased, kMs);
  EXPECT_TRUE(To(out, wire::PlacementMessage::kAward).empty());
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline), std::multiset<std::string>{hosts[0]});
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].host, hosts[1]);
  EXPECT_TRUE(out.events[0].leased_at_once);
  // The first-ranked host's lease comes after: released, and nothing else changes.
  out = Handle(n, hosts[0], leased, 2 * kMs);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].to, hosts[0]);
  EXPECT_TRUE(out.messages[0].msg.has_release());
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(n.leased(), 1u);
  EXPECT_EQ(n.stats().leased_at_once, 1u);
  EXPECT_EQ(n.stats().awards, 1u);
}

TEST_F(NegotiatorTest, ALeaseAtOnceThatComesTooLateOrIsNotWantedIsReleased) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s", {2, kGiB}, {1, kGiB}), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  ASSERT_EQ(hosts.size(), 2u);
  // The first-ranked one does not answer in time: the fallback's offer is awarded and the
  // first is declined (a Decline releases a lease made at once).
  Handle(n, hosts[1], OfferMsg("s@1", {2, kGiB}, 10'000), kMs);
  NegotiatorOutput out = Tick(n, o_.offer_wait_ns);
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{hosts[1]});
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline), std::multiset<std::string>{hosts[0]});
  // Its lease comes after all: released.
  wire::PlacementMessage leased = OfferMsg("s@1", {2, kGiB}, 10'000);
  leased.mutable_offer()->set_leased(true);
  out = Handle(n, hosts[0], leased, o_.offer_wait_ns + kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kRelease), std::multiset<std::string>{hosts[0]});
  EXPECT_TRUE(out.events.empty());
  // A lease at once outside [min, want] is released and counts as a refusal.
  ASSERT_TRUE(n.Submit(Shard("t", {2, kGiB}, {1, kGiB}), 0).ok());
  const std::vector<std::string> t_hosts = Probed(Tick(n, 100 * kMs), "t@1");
  ASSERT_EQ(t_hosts.size(), 2u);
  wire::PlacementMessage big = OfferMsg("t@1", {3, kGiB}, 10'000);
  big.mutable_offer()->set_leased(true);
  out = Handle(n, t_hosts[0], big, 101 * kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kRelease), std::multiset<std::string>{t_hosts[0]});
  EXPECT_TRUE(out.events.empty());
  out = Handle(n, t_hosts[1], OfferMsg("t@1", {2, kGiB}, 10'000), 102 * kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{t_hosts[1]});
}

TEST_F(NegotiatorTest, NoLeaseAtOnceWhereTheChoiceAmongOffersMatters) {
  Negotiator n("owner", o_);
  ShardRequest budget = Shard("b");
  budget.budget_left = 5;
  ShardRequest spread = Shard("z");
  spread.spread_zone = true;
  ASSERT_TRUE(n.Submit(budget, 0).ok());
  ASSERT_TRUE(n.Submit(spread, 0).ok());
  for (const PlacementOutgoing& m : Tick(n, 0).messages) {
    EXPECT_EQ(m.msg.bid_request().lease_ttl_ms(), 0u) << m.msg.bid_request().request_id();
  }
  o_.lease_at_once = false;
  Negotiator off("owner", o_);
  ASSERT_TRUE(off.Submit(Shard("s"), 0).ok());
  for (const PlacementOutgoing& m : Tick(off, 0).messages) {
    EXPECT_EQ(m.msg.bid_request().lease_ttl_ms(), 0u);
  }
}

TEST_F(NegotiatorTest, OffersOutsideMinAndWantOrOverBudgetAreNotTaken) {
  Negotiator n("owner", o_);
  ShardRequest s = Shard("s", {2, kGiB}, {1, kGiB});
  s.budget_left = 1.0;  // per hour 3.6 for 1000 s = 1.0: the limit
  s.predicted_s = 1000;
  ASSERT_TRUE(n.Submit(s, 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[0], OfferMsg("s@1", {0.5, kGiB}, 1'000'000), kMs);  // below min
  NegotiatorOutput out = Handle(n, hosts[1], OfferMsg("s@1", {2, kGiB}, 1'000'000, 3.7f), kMs);
  EXPECT_TRUE(To(out, wire::PlacementMessage::kAward).empty());
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline).size(), 2u);
  // Retried with a fresh sample at once (the second round); this time one fits the budget.
  EXPECT_EQ(n.NextDeadline(), kMs + o_.first_retry_ns);
  const std::vector<std::string> again = Probed(Tick(n, kMs + o_.first_retry_ns), "s@2");
  ASSERT_EQ(again.size(), 2u);
  Handle(n, again[0], Refusal("s@2"), 2 * kMs);
  out = Handle(n, again[1], OfferMsg("s@2", {2, kGiB}, 1'000'000, 3.5f), 2 * kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward).size(), 1u);
  EXPECT_NEAR(n.Charged("wf"), 3.5 * 1000 / 3600, 1e-6);
}

// The second round goes at once (the first round's answers said where room is), later ones
// back off, doubling.
TEST_F(NegotiatorTest, RoundsWithoutAnOfferGoAgainAtOnceThenBackOffAndMayShrink) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  int64_t now = 0;
  std::vector<int64_t> backoffs;
  for (uint32_t round = 1; round <= 4; ++round) {
    NegotiatorOutput out = Tick(n, now);
    const std::string rid = "s@" + std::to_string(round);
    bool may_shrink = false;
    for (const PlacementOutgoing& m : out.messages) {
      if (m.msg.has_bid_request()) may_shrink = m.msg.bid_request().may_shrink();
    }
    EXPECT_EQ(may_shrink, round >= 2) << round;
    for (const std::string& h : Probed(out, rid)) Handle(n, h, Refusal(rid), now);
    backoffs.push_back(*n.NextDeadline() - now);
    now = *n.NextDeadline();
  }
  EXPECT_EQ(backoffs, (std::vector<int64_t>{0, 5 * kMs, 10 * kMs, 20 * kMs}));
  EXPECT_EQ(n.stats().refusals, 8u);
}

TEST_F(NegotiatorTest, TheDeadlineDecidesWithWhatCame) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 10'000), kMs);
  NegotiatorOutput out = Tick(n, o_.offer_wait_ns);
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{hosts[1]});
  EXPECT_EQ(n.stats().no_answer, 1u);
  // The silent one answers late: its hold is declined at once.
  out = Handle(n, hosts[0], OfferMsg("s@1", {1, kGiB}, 5'000), o_.offer_wait_ns + kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline), std::multiset<std::string>{hosts[0]});
}

TEST_F(NegotiatorTest, DuplicatesAndStrayMessagesAreIdempotent) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[0], OfferMsg("s@1", {1, kGiB}, 10'000), kMs);
  EXPECT_TRUE(Handle(n, hosts[0], OfferMsg("s@1", {1, kGiB}, 10'000), kMs).messages.empty());
  NegotiatorOutput out = Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 20'000), kMs);
  ASSERT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{hosts[0]});
  // The loser's duplicate is declined again; the winner's is ignored.
  EXPECT_EQ(To(Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 20'000), kMs), wire::PlacementMessage::kDecline).size(), 1u);
  EXPECT_TRUE(Handle(n, hosts[0], OfferMsg("s@1", {1, kGiB}, 10'000), kMs).messages.empty());
  // Leased twice: placed once.
  EXPECT_EQ(Handle(n, hosts[0], LeasedMsg("s@1", {1, kGiB}), 2 * kMs).events.size(), 1u);
  EXPECT_TRUE(Handle(n, hosts[0], LeasedMsg("s@1", {1, kGiB}), 2 * kMs).events.empty());
  EXPECT_EQ(n.stats().awards, 1u);
  // A Leased from a host that holds nothing of ours is released; an offer we never asked
  // for is declined.
  EXPECT_EQ(To(Handle(n, "h9", LeasedMsg("x@1", {1, kGiB}), 3 * kMs), wire::PlacementMessage::kRelease).size(), 1u);
  EXPECT_EQ(To(Handle(n, "h9", OfferMsg("x@3", {1, kGiB}, 1), 3 * kMs), wire::PlacementMessage::kDecline).size(), 1u);
  // After Release, the late Leased of that lease is released again.
  NegotiatorOutput rel;
  ASSERT_TRUE(n.Release("s", 4 * kMs, &rel).ok());
  EXPECT_EQ(To(rel, wire::PlacementMessage::kRelease), std::multiset<std::string>{hosts[0]});
  EXPECT_EQ(To(Handle(n, hosts[0], LeasedMsg("s@1", {1, kGiB}), 5 * kMs), wire::PlacementMessage::kRelease).size(), 1u);
  EXPECT_TRUE(n.Release("s", 6 * kMs, &rel).IsNotFound());
  EXPECT_TRUE(n.Submit(Shard("t", {1, 0}, {2, 0}), 0).IsInvalidArgument());
  ASSERT_TRUE(n.Submit(Shard("t"), 0).ok());
  EXPECT_TRUE(n.Submit(Shard("t"), 0).IsInvalidArgument());
}

wire::PlacementMessage QueuedMsg(const std::string& rid) {
  wire::PlacementMessage m;
  m.mutable_offer()->set_request_id(rid);
  m.mutable_offer()->set_queued(true);
  return m;
}

TEST_F(NegotiatorTest, WhenEveryProbeIsQueuedTheFirstOfferWinsAndTheOtherQueueIsLeft) {
  for (PlacementPeer& p : peers_) p = Peer(p.name, {0.5, kGiB});  // the view shows no room
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  NegotiatorOutput out = Tick(n, 0);
  for (const PlacementOutgoing& m : out.messages) {
    EXPECT_EQ(m.msg.bid_request().queue_ms(), uint32_t(o_.queue_ns / kMs));
  }
  const std::vector<std::string> hosts = Probed(out, "s@1");
  EXPECT_TRUE(Handle(n, hosts[0], QueuedMsg("s@1"), kMs).messages.empty());
  EXPECT_TRUE(Handle(n, hosts[1], QueuedMsg("s@1"), kMs).messages.empty());
  // Nothing decided: the round now waits for the queues (not for offer_wait).
  EXPECT_EQ(n.NextDeadline(), o_.queue_ns + o_.offer_wait_ns);
  EXPECT_TRUE(Tick(n, o_.offer_wait_ns).messages.empty());
  out = Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 10'000), 700 * kMs);
  EXPECT_EQ(To(out, wire::PlacementMessage::kAward), std::multiset<std::string>{hosts[1]});
  EXPECT_EQ(To(out, wire::PlacementMessage::kDecline), std::multiset<std::string>{hosts[0]});
  EXPECT_EQ(n.stats().queued, 2u);
}

TEST_F(NegotiatorTest, QueuesThatRunOutWithoutRoomEndTheRound) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[0], QueuedMsg("s@1"), kMs);
  Handle(n, hosts[1], Refusal("s@1"), kMs);
  EXPECT_EQ(n.NextDeadline(), o_.queue_ns + o_.offer_wait_ns);
  NegotiatorOutput out = Handle(n, hosts[0], Refusal("s@1"), o_.queue_ns);
  EXPECT_TRUE(To(out, wire::PlacementMessage::kAward).empty());
  EXPECT_EQ(n.NextDeadline(), o_.queue_ns + o_.first_retry_ns);  // sampled again
}

TEST_F(NegotiatorTest, AnUnansweredAwardIsResentThenGivenUpAndTheShardSampledAgain) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[0], Refusal("s@1"), kMs);
  Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 10'000), kMs);
  int awards = 1;
  int64_t now = kMs;
  NegotiatorOutput out;
  while (To(out, wire::PlacementMessage::kRelease).empty()) {
    now = *n.NextDeadline();
    out = Tick(n, now);
    awards += int(To(out, wire::PlacementMessage::kAward).size());
  }
  EXPECT_EQ(awards, int(o_.award_attempts));
  EXPECT_EQ(To(out, wire::PlacementMessage::kRelease), std::multiset<std::string>{hosts[1]});
  EXPECT_EQ(Probed(out, "s@2").size(), 2u);  // sampled afresh at once
  EXPECT_EQ(n.stats().award_failures, 1u);
  EXPECT_EQ(n.Charged("wf"), 0);
}

TEST_F(NegotiatorTest, LeasesAreRenewedEveryQuarterOfTheirTtlAndLostWhenRenewalsGoUnanswered) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("s"), 0).ok());
  const std::vector<std::string> hosts = Probed(Tick(n, 0), "s@1");
  Handle(n, hosts[0], Refusal("s@1"), 0);
  Handle(n, hosts[1], OfferMsg("s@1", {1, kGiB}, 10'000), 0);
  Handle(n, hosts[1], LeasedMsg("s@1", {1, kGiB}), 0);
  const int64_t quarter = o_.lease_ttl_ns / 4;
  EXPECT_EQ(n.NextDeadline(), quarter);
  NegotiatorOutput out = Tick(n, quarter);
  EXPECT_EQ(To(out, wire::PlacementMessage::kRenew), std::multiset<std::string>{hosts[1]});
  // Answered with a smaller grant: the shard was shrunk there.
  out = Handle(n, hosts[1], LeasedMsg("s@1", {0.5, kGiB}), quarter + kMs);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, PlacementEvent::Kind::kChanged);
  EXPECT_EQ(out.events[0].grant.cpu, 0.5);
  // Then silence: renewals go on every quarter of the ttl, and the lease is lost exactly a ttl
  // after the last answer (when the candidate may have reclaimed it).
  int renews = 0;
  std::vector<PlacementEvent> events;
  for (int64_t now = quarter; events.empty();) {
    now = *n.NextDeadline();
    out = Tick(n, now);
    renews += int(To(out, wire::PlacementMessage::kRenew).size());
    events = out.events;
    if (!events.empty()) {
      EXPECT_EQ(now, quarter + kMs + o_.lease_ttl_ns);
      EXPECT_EQ(To(out, wire::PlacementMessage::kRelease).size(), 1u);
    }
  }
  EXPECT_EQ(renews, 4);  // at 2/4 .. 5/4 of the ttl from the award
  EXPECT_EQ(events[0].kind, PlacementEvent::Kind::kLost);
  EXPECT_EQ(n.leased(), 0u);
  EXPECT_EQ(n.NextDeadline(), std::nullopt);
}

TEST_F(NegotiatorTest, AReclaimedAwardIsRetriedAndAReclaimedLeaseIsLost) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("a"), 0).ok());
  ASSERT_TRUE(n.Submit(Shard("b"), 0).ok());
  NegotiatorOutput out = Tick(n, 0);
  for (const std::string id : {"a", "b"}) {
    const std::vector<std::string> hosts = Probed(out, id + std::string("@1"));
    Handle(n, hosts[0], Refusal(id + std::string("@1")), 0);
    Handle(n, hosts[1], OfferMsg(id + std::string("@1"), {1, kGiB}, 1), 0);
  }
  wire::PlacementMessage rec;
  rec.mutable_reclaimed()->set_request_id("a@1");
  rec.mutable_reclaimed()->set_reason("the hold ended before the award came");
  const std::string a_host = Probed(out, "a@1")[1], b_host = Probed(out, "b@1")[1];
  Handle(n, a_host, rec, kMs);
  EXPECT_EQ(Probed(Tick(n, kMs), "a@2").size(), 2u);
  Handle(n, b_host, LeasedMsg("b@1", {1, kGiB}), kMs);
  rec.mutable_reclaimed()->set_request_id("b@1");
  rec.mutable_reclaimed()->set_reason("lease expired: not renewed");
  out = Handle(n, b_host, rec, 2 * kMs);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, PlacementEvent::Kind::kLost);
  EXPECT_NE(out.events[0].reason.find("not renewed"), std::string::npos);
}

TEST_F(NegotiatorTest, AHostDownLosesItsLeasesAndCountsItsProbesRefused) {
  o_.probes_per_shard = 1;
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Submit(Shard("a"), 0).ok());
  ASSERT_TRUE(n.Submit(Shard("b"), 0).ok());
  NegotiatorOutput out = Tick(n, 0);
  const std::string a_host = Probed(out, "a@1")[0], b_host = Probed(out, "b@1")[0];
  Handle(n, a_host, OfferMsg("a@1", {1, kGiB}, 1), 0);
  Handle(n, a_host, LeasedMsg("a@1", {1, kGiB}), 0);
  NegotiatorOutput down;
  n.PeerDown(a_host, kMs, &down);
  ASSERT_EQ(down.events.size(), 1u);
  EXPECT_EQ(down.events[0].kind, PlacementEvent::Kind::kLost);
  EXPECT_EQ(down.events[0].shard, "a");
  n.PeerDown(b_host, kMs, &down);
  EXPECT_EQ(n.NextDeadline(), kMs + o_.first_retry_ns);  // b's round ended: retried
}

TEST_F(NegotiatorTest, SpreadPrefersTheZoneWhereTheWorkflowHasFewestShards) {
  for (int i = 0; i < 10; ++i) peers_[i].zone = i < 5 ? "za" : "zb";
  o_.probes_per_shard = 2;
  Negotiator n("owner", o_);
  std::map<std::string, std::string> zone_of;
  for (const PlacementPeer& p : peers_) zone_of[p.name] = p.zone;
  std::map<std::string, int> placed;
  for (int i = 0; i < 6; ++i) {
    ShardRequest s = Shard("s" + std::to_string(i));
    s.spread_zone = true;
    ASSERT_TRUE(n.Submit(s, i * kMs).ok());
    const std::string rid = s.shard + "@1";
    const std::vector<std::string> hosts = Probed(Tick(n, i * kMs), rid);
    ASSERT_EQ(hosts.size(), 2u);
    // Both offer; the one in zone za finishes sooner, so only spread can pick zb.
    NegotiatorOutput out;
    for (const std::string& h : hosts) {
      out = Handle(n, h, OfferMsg(rid, {1, kGiB}, zone_of[h] == "za" ? 1000 : 2000), i * kMs);
    }
    for (const PlacementOutgoing& m : out.messages) {
      if (m.msg.has_award()) {
        ++placed[zone_of[m.to]];
        Handle(n, m.to, LeasedMsg(rid, {1, kGiB}), i * kMs);
      }
    }
  }
  EXPECT_EQ(placed["za"] + placed["zb"], 6);
  EXPECT_GE(placed["zb"], 2);  // without spread, zb wins only when no za host was asked
  EXPECT_LE(std::abs(placed["za"] - placed["zb"]), 2);
}

}  // namespace
}  // namespace augur::mesh

// After the owner restarted (docs/MESH.md, "Running shards on other hosts", Restarts): a
// lease it held is taken up again, renewed at once and then every ttl/4, and lost as any
// lease when the host says it no longer holds it.
namespace augur::mesh {
namespace {

TEST_F(NegotiatorTest, AResumedLeaseIsRenewedAtOnceAndLostWhenTheHostNoLongerHoldsIt) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Resume(Shard("wf/s/0#1"), "h3", "wf/s/0#1@2", {1, kGiB}, 0).ok());
  EXPECT_FALSE(n.Resume(Shard("wf/s/0#1"), "h3", "wf/s/0#1@3", {1, kGiB}, 0).ok());  // known
  EXPECT_FALSE(n.Resume(Shard("wf/s/1#1"), "h3", "wf/s/0#1@2", {1, kGiB}, 0).ok());  // its request
  EXPECT_FALSE(n.Resume(Shard("wf/s/2#1"), "", "wf/s/2#1@1", {1, kGiB}, 0).ok());    // no host
  EXPECT_EQ(n.leased(), 1u);
  EXPECT_EQ(n.pending(), 0u);
  // Renewed at once: the host's ttl may have run since before the restart.
  NegotiatorOutput out = Tick(n, 0);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0].to, "h3");
  ASSERT_TRUE(out.messages[0].msg.has_renew());
  EXPECT_EQ(out.messages[0].msg.renew().request_id(), "wf/s/0#1@2");
  // The host holds it: its Leased is a renewal's answer, no event; the next renewal at ttl/4.
  out = Handle(n, "h3", LeasedMsg("wf/s/0#1@2", {1, kGiB}), kMs);
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(n.NextDeadline(), o_.lease_ttl_ns / 4);
  // A host that no longer holds it says so: lost, to be placed again.
  wire::PlacementMessage r;
  r.mutable_reclaimed()->set_request_id("wf/s/0#1@2");
  r.mutable_reclaimed()->set_reason("no such lease");
  out = Handle(n, "h3", r, 2 * kMs);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].kind, PlacementEvent::Kind::kLost);
  EXPECT_EQ(out.events[0].shard, "wf/s/0#1");
  EXPECT_EQ(out.events[0].lease_id, LeaseId("owner", "wf/s/0#1@2"));
  EXPECT_EQ(n.leased(), 0u);
}

TEST_F(NegotiatorTest, AResumedLeaseUnansweredForATtlIsLost) {
  Negotiator n("owner", o_);
  ASSERT_TRUE(n.Resume(Shard("a#1"), "h1", "a#1@1", {1, kGiB}, 0).ok());
  bool lost = false;
  for (int64_t now = 0; now <= o_.lease_ttl_ns && !lost; now += o_.lease_ttl_ns / 8) {
    for (const PlacementEvent& e : Tick(n, now).events) lost |= e.kind == PlacementEvent::Kind::kLost;
  }
  EXPECT_TRUE(lost);
  EXPECT_EQ(n.leased(), 0u);
}

}  // namespace
}  // namespace augur::mesh
