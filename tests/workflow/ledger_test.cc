// The ledger of soft reservations (src/workflow/ledger.h): grants within [min, want] and
// capacity, shrinking lower scores for higher, pre-emption only when allowed, growing back.
#include "workflow/ledger.h"

#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;

ReservationRequest Req(std::string holder, Resources want, Resources min, double score) {
  return {std::move(holder), want, min, score};
}

void Admit(Ledger& l, const ReservationRequest& r) {
  auto plan = l.PlanAdmit(r);
  ASSERT_TRUE(plan) << plan.error().ToString();
  ASSERT_TRUE(*plan) << r.holder << " does not fit";
  ASSERT_TRUE(l.ApplyAdmission(r, **plan).ok());
}

TEST(LedgerTest, GrantsTheMostOfWantThatFits) {
  Ledger l({4, 8 * kGi});
  Admit(l, Req("a", {3, 4 * kGi}, {1, 1 * kGi}, 5));
  EXPECT_EQ(l.Find("a")->granted, Resources({3, 4 * kGi}));
  Admit(l, Req("b", {3, 6 * kGi}, {1, 2 * kGi}, 5));  // equal score: no shrinking of a
  EXPECT_EQ(l.Find("b")->granted, Resources({1, 4 * kGi}));
  EXPECT_EQ(l.Free(), Resources({0, 0}));
  auto c = l.PlanAdmit(Req("c", {1, kGi}, {1, kGi}, 5));
  ASSERT_TRUE(c);
  EXPECT_FALSE(*c) << "nothing free and nothing of lower score";
}

TEST(LedgerTest, AHigherScoreShrinksLowerScoresTowardTheirMinimumsLowestFirst) {
  Ledger l({4, 8 * kGi});
  Admit(l, Req("low", {2, 4 * kGi}, {0.5, 1 * kGi}, 1));
  Admit(l, Req("mid", {2, 4 * kGi}, {1, 2 * kGi}, 3));
  auto plan = l.PlanAdmit(Req("high", {2, 2 * kGi}, {2, 2 * kGi}, 9));
  ASSERT_TRUE(plan && *plan);
  const Admission& a = **plan;
  EXPECT_EQ(a.grant, Resources({2, 2 * kGi}));
  ASSERT_EQ(a.changes.size(), 2u);
  // "low" gives what it can of what is needed (1.5 of the 2 cpu, 2 of its 3 spare Gi),
  // then "mid" the rest.
  EXPECT_EQ(a.changes[0].holder, "low");
  EXPECT_EQ(a.changes[0].kind, GrantChange::Kind::kShrink);
  EXPECT_EQ(a.changes[0].to, Resources({0.5, 2 * kGi}));
  EXPECT_EQ(a.changes[1].holder, "mid");
  EXPECT_EQ(a.changes[1].to, Resources({1.5, 4 * kGi}));
  ASSERT_TRUE(l.ApplyAdmission(Req("high", {2, 2 * kGi}, {2, 2 * kGi}, 9), a).ok());
  EXPECT_TRUE(l.Granted().FitsIn(l.capacity()));
  // When "high" leaves, the shrunk grants grow back, highest score first.
  ASSERT_TRUE(l.Release("high").ok());
  const auto grow = l.PlanGrowBack();
  ASSERT_EQ(grow.size(), 2u);
  EXPECT_EQ(grow[0].holder, "mid");
  EXPECT_EQ(grow[0].to, Resources({2, 4 * kGi}));
  EXPECT_EQ(grow[1].holder, "low");
  EXPECT_EQ(grow[1].to, Resources({2, 4 * kGi}));
}

TEST(LedgerTest, MinimumsArePreemptedOnlyWhenAllowed) {
  for (bool allow : {false, true}) {
    Ledger l({2, 4 * kGi}, LedgerOptions{allow});
    Admit(l, Req("low", {2, 4 * kGi}, {2, 4 * kGi}, 1));
    auto plan = l.PlanAdmit(Req("high", {1, kGi}, {1, kGi}, 9));
    ASSERT_TRUE(plan);
    if (!allow) {
      EXPECT_FALSE(*plan) << "its minimum is all it has";
      continue;
    }
    ASSERT_TRUE(*plan);
    ASSERT_EQ((*plan)->changes.size(), 1u);
    EXPECT_EQ((*plan)->changes[0].kind, GrantChange::Kind::kPreempt);
  }
}

TEST(LedgerTest, ReservedRoomIsOutOfReachAndBadRequestsAreRefused) {
  Ledger l({4, 8 * kGi});
  auto plan = l.PlanAdmit(Req("a", {4, 8 * kGi}, {1, kGi}, 5), Resources{3, 4 * kGi});
  ASSERT_TRUE(plan && *plan);
  EXPECT_EQ((*plan)->grant, Resources({1, 4 * kGi}));
  EXPECT_FALSE(l.PlanAdmit(Req("b", {1, kGi}, {2, kGi}, 5)).has_value()) << "min above want";
  Admit(l, Req("c", {1, kGi}, {1, kGi}, 5));
  EXPECT_FALSE(l.PlanAdmit(Req("c", {1, kGi}, {1, kGi}, 5)).has_value()) << "twice";
  EXPECT_TRUE(l.Release("nobody").IsNotFound());
}

TEST(LedgerTest, ACapacityThatShrinksShrinksThenPreemptsTheLowest) {
  Ledger l({4, 8 * kGi});
  Admit(l, Req("a", {2, 4 * kGi}, {1, 2 * kGi}, 1));
  Admit(l, Req("b", {2, 4 * kGi}, {2, 4 * kGi}, 5));
  l.SetCapacity({3, 8 * kGi});
  auto changes = l.PlanShrinkToCapacity();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, GrantChange::Kind::kShrink);
  EXPECT_EQ(changes[0].to, Resources({1, 4 * kGi}));
  l.SetCapacity({2, 8 * kGi});
  changes = l.PlanShrinkToCapacity();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, GrantChange::Kind::kPreempt);
  EXPECT_EQ(changes[0].holder, "a");
}

// Seeded property test: whatever arrives and leaves, every grant stays within its [min,
// want] and all of them within the capacity, and a request that is refused really could not
// fit its minimum even by shrinking every lower score.
TEST(LedgerPropertyTest, GrantsStayWithinMinWantAndCapacity) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    const bool preempt = seed % 2 == 0;
    Ledger l({double(1 + rng() % 16), (1 + rng() % 64) * kGi}, LedgerOptions{preempt});
    std::vector<std::string> live;
    for (int step = 0; step < 200; ++step) {
      if (!live.empty() && rng() % 3 == 0) {
        const size_t k = rng() % live.size();
        ASSERT_TRUE(l.Release(live[k]).ok());
        live.erase(live.begin() + k);
        for (const GrantChange& c : l.PlanGrowBack()) ASSERT_TRUE(l.ApplyChange(c).ok());
      } else {
        const Resources want{0.25 * (1 + rng() % 16), (1 + rng() % 16) * (kGi / 4)};
        const Resources min{want.cpu * (rng() % 5) / 4, want.memory * (rng() % 5) / 4};
        const auto req = Req("r" + std::to_string(step), want, min, double(rng() % 10));
        auto plan = l.PlanAdmit(req);
        ASSERT_TRUE(plan) << plan.error().ToString();
        if (*plan) {
          for (const GrantChange& c : (*plan)->changes) {
            if (c.kind == GrantChange::Kind::kPreempt) {
              ASSERT_TRUE(preempt);
              live.erase(std::find(live.begin(), live.end(), c.holder));
            }
            ASSERT_LT(l.Find(c.holder)->score, req.score) << "only lower scores give way";
          }
          ASSERT_TRUE(l.ApplyAdmission(req, **plan).ok());
          live.push_back(req.holder);
        } else if (!preempt) {
          // Refused: even every lower score at its minimum leaves no room for req.min.
          Resources could = l.Free();
          for (const auto& [h, g] : l.grants()) {
            if (g.score < req.score) could += g.granted - g.min;
          }
          ASSERT_FALSE(req.min.FitsIn(could)) << "seed " << seed << " step " << step;
        }
      }
      ASSERT_TRUE(l.Granted().FitsIn(l.capacity())) << "seed " << seed << " step " << step;
      for (const auto& [h, g] : l.grants()) {
        ASSERT_TRUE(g.min.FitsIn(g.granted) && g.granted.FitsIn(g.want))
            << h << ": " << g.granted.ToString() << " not in [" << g.min.ToString() << ", "
            << g.want.ToString() << "] seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace augur::workflow
