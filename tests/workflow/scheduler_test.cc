// The scheduler (src/workflow/scheduler.h) alone and, through Replay (replay.h), over
// thousands of random DAGs: grants within [min, want] and capacity, dependencies respected,
// no starvation, graceful shrinking for higher priorities.
#include "workflow/scheduler.h"

#include <random>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "workflow/replay.h"

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;
constexpr int64_t kSec = 1'000'000'000;

PendingShard Shard(std::string key, int priority, Resources want, Resources min,
                   int64_t ready_ns = 0) {
  PendingShard p;
  p.key = std::move(key);
  p.group = p.key;
  p.priority = priority;
  p.want = want;
  p.min = min;
  p.ready_ns = ready_ns;
  p.predicted_s = 10;
  p.remaining_path_s = 10;
  return p;
}

TEST(SchedulerTest, HigherPriorityFirstAndLeastSlackBreaksTies) {
  Ledger l({1, 8 * kGi});
  PendingShard a = Shard("a", 5, {1, kGi}, {1, kGi});
  PendingShard b = Shard("b", 5, {1, kGi}, {1, kGi});
  b.deadline_ns = 100 * kSec;  // b has a deadline; a has none
  b.remaining_path_s = 99;
  PendingShard c = Shard("c", 3, {1, kGi}, {1, kGi});
  ScheduleResult r = Schedule({c, a, b}, l, {}, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "b") << "urgent at equal priority";
  ASSERT_EQ(r.waiting.size(), 2u);
  EXPECT_EQ(r.waiting[0].key, "a");
  EXPECT_EQ(r.waiting[1].key, "c");
  EXPECT_GT(r.starts[0].score.urgency, 4.9);
  EXPECT_THAT(r.waiting[0].reason, ::testing::HasSubstr("needs at least 1 cpu, 1Gi"));
}

TEST(SchedulerTest, AHighPriorityArrivalShrinksARunningLowPriorityGrant) {
  Ledger l({4, 8 * kGi});
  ScheduleResult r = Schedule({Shard("low", 1, {4, 8 * kGi}, {1, 2 * kGi})}, l, {}, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(l.Find("low")->granted, Resources({4, 8 * kGi}));
  r = Schedule({Shard("high", 9, {3, 6 * kGi}, {2, 4 * kGi})}, l, {}, kSec);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].grant, Resources({3, 6 * kGi}));
  ASSERT_EQ(r.starts[0].changes.size(), 1u);
  EXPECT_EQ(r.starts[0].changes[0].holder, "low");
  EXPECT_EQ(l.Find("low")->granted, Resources({1, 2 * kGi}));
  // The high one ends: low grows back.
  ASSERT_TRUE(l.Release("high").ok());
  r = Schedule({}, l, {}, 2 * kSec);
  ASSERT_EQ(r.grow_back.size(), 1u);
  EXPECT_EQ(l.Find("low")->granted, Resources({4, 8 * kGi}));
}

TEST(SchedulerTest, TheForecastOfOtherLoadLimitsWhatIsGranted) {
  Ledger l({8, 16 * kGi});
  HostView host;
  host.predicted_free = Resources{2, 16 * kGi};  // other load will take 6 of the 8 cores
  ScheduleResult r = Schedule({Shard("a", 5, {4, kGi}, {1, kGi}), Shard("b", 5, {4, kGi},
                                                                          {3, kGi})},
                              l, host, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].grant.cpu, 2);
  EXPECT_EQ(r.waiting.size(), 1u);
}

TEST(SchedulerTest, ABudgetHoldsWhatWouldOverspendIt) {
  Ledger l({8, 16 * kGi});
  PendingShard a = Shard("a", 5, {1, kGi}, {1, kGi});
  a.group = "wf";
  a.cost_per_hour = 3.6;  // 0.01 per 10 s
  a.budget_left = 0.015;
  PendingShard b = a;
  b.key = "b";
  ScheduleResult r = Schedule({a, b}, l, {}, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_THAT(r.waiting[0].reason, ::testing::HasSubstr("over the"));
}

TEST(SchedulerTest, RoomIsHeldForABlockedShardButShortShardsBackfillIt) {
  Ledger l({4, 8 * kGi});
  ASSERT_TRUE(Schedule({Shard("running", 5, {2, kGi}, {2, kGi})}, l, {}, 0).starts.size() == 1);
  HostView host;
  host.running = {{"running", 100 * kSec}};
  PendingShard big = Shard("big", 9, {4, kGi}, {4, kGi});
  PendingShard longsmall = Shard("long", 1, {2, kGi}, {2, kGi});
  longsmall.predicted_s = 500;  // would end after big could start (at 100 s)
  PendingShard shortsmall = Shard("short", 1, {2, kGi}, {2, kGi});
  shortsmall.predicted_s = 50;
  ScheduleResult r = Schedule({big, longsmall, shortsmall}, l, host, 0);
  EXPECT_EQ(r.reserved_for, "big");
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "short");
}

TEST(SchedulerTest, AgingLiftsALongWaitingLowPriorityShardAboveNewcomers) {
  SchedulerOptions o;
  const PendingShard old = Shard("old", 1, {1, kGi}, {1, kGi}, 0);
  const int64_t now = int64_t(o.aging_after_s * kSec) + 10 * 60 * kSec;
  const PendingShard fresh = Shard("fresh", 10, {1, kGi}, {1, kGi}, now);
  Ledger l({1, kGi});
  ScheduleResult r = Schedule({fresh, old}, l, {}, now, o);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "old");
}

// ---- Property tests through the virtual-time replay --------------------------------------

std::vector<ReplayTask> RandomWorkload(std::mt19937& rng, const Resources& cap) {
  const int workflows = 1 + rng() % 4;
  std::vector<ReplayTask> tasks;
  for (int w = 0; w < workflows; ++w) {
    const int n = 1 + rng() % 30;
    const int base = static_cast<int>(tasks.size());
    const double submit = double(rng() % 100);
    const int priority = 1 + rng() % 10;
    const double deadline = rng() % 2 ? submit + 50 + rng() % 500 : 0;
    for (int i = 0; i < n; ++i) {
      ReplayTask t;
      for (int j = 0; j < i; ++j) {
        if (rng() % 6 == 0) t.preds.push_back(base + j);
      }
      t.actual_s = 0.5 + rng() % 60;
      t.predicted_s = t.actual_s * (0.7 + 0.6 * (rng() % 1000) / 1000.0);
      t.want = {std::min(cap.cpu, 0.25 * (1 + rng() % 16)),
                std::min<uint64_t>(cap.memory, (1 + rng() % 32) * (kGi / 4))};
      t.min = t.want.Scaled(0.25 * (1 + rng() % 4));
      t.priority = priority;
      t.workflow = w;
      t.submit_s = submit;
      t.deadline_s = deadline;
      tasks.push_back(std::move(t));
    }
  }
  return tasks;
}

TEST(SchedulerPropertyTest, RandomDagsKeepEveryInvariant) {
  uint64_t total_tasks = 0, total_changes = 0;
  for (uint32_t seed = 1; seed <= 1000; ++seed) {
    std::mt19937 rng(seed);
    ReplayOptions o;
    o.capacity = {double(1 + rng() % 16), (1 + rng() % 64) * kGi};
    o.ledger.allow_preemption = seed % 5 == 0;
    const std::vector<ReplayTask> tasks = RandomWorkload(rng, o.capacity);
    bool ok = true;
    std::string why;
    auto observe = [&](double now, const Ledger& l) {
      if (!l.Granted().FitsIn(l.capacity())) {
        ok = false;
        why = "over capacity at " + std::to_string(now);
      }
      for (const auto& [h, g] : l.grants()) {
        if (!g.min.FitsIn(g.granted) || !g.granted.FitsIn(g.want)) {
          ok = false;
          why = h + " granted " + g.granted.ToString() + " outside [" + g.min.ToString() +
                ", " + g.want.ToString() + "]";
        }
      }
    };
    auto r = Replay(tasks, o, observe);
    ASSERT_TRUE(r) << "seed " << seed << ": " << r.error().ToString();
    ASSERT_TRUE(ok) << "seed " << seed << ": " << why;
    total_tasks += tasks.size();
    total_changes += r->grant_changes;
    for (size_t i = 0; i < tasks.size(); ++i) {
      const ReplayTaskResult& t = r->tasks[i];
      // Every task ran (no starvation: the replay ends only when all have), once, after its
      // workflow arrived and after everything it needs ended.
      ASSERT_GE(t.start_s, tasks[i].submit_s - 1e-9) << seed;
      ASSERT_GT(t.end_s, t.start_s - 1e-9) << seed;
      for (int p : tasks[i].preds) {
        ASSERT_LE(r->tasks[p].end_s, t.start_s + 1e-9) << "seed " << seed << " task " << i;
      }
    }
    ASSERT_GE(r->makespan_s, r->lower_bound_s - 1e-6) << seed;
  }
  // The runs did exercise shrinking and growing, not just plain starts.
  EXPECT_GT(total_changes, total_tasks / 100);
}

TEST(SchedulerPropertyTest, ALowPriorityShardIsNeverStarvedByAStreamOfHighOnes) {
  // One priority-1 task that needs the whole host, and priority-10 tasks arriving every
  // 10 s forever (for a long replay) that each need a quarter of it.
  std::vector<ReplayTask> tasks;
  ReplayTask low;
  low.want = low.min = {4, 4 * kGi};
  low.actual_s = low.predicted_s = 30;
  low.priority = 1;
  low.workflow = 0;
  tasks.push_back(low);
  for (int i = 0; i < 400; ++i) {
    ReplayTask hi;
    hi.want = hi.min = {1, kGi};
    hi.actual_s = hi.predicted_s = 35;
    hi.priority = 10;
    hi.workflow = 1 + i;
    hi.submit_s = 10.0 * i;
    tasks.push_back(hi);
  }
  ReplayOptions o;
  o.capacity = {4, 4 * kGi};
  auto r = Replay(tasks, o);
  ASSERT_TRUE(r) << r.error().ToString();
  // It starts within the aging grace plus the time aging takes to outrank newcomers (nine
  // priority points, and their better fit), plus the time running shards take to drain
  // (one shard's length).
  const double outrank_s =
      (9 + o.scheduler.fit_weight) / o.scheduler.aging_per_minute * 60;
  EXPECT_LT(r->tasks[0].start_s, o.scheduler.aging_after_s + outrank_s + 35 + 1);
  EXPECT_GT(r->tasks[0].start_s, o.scheduler.aging_after_s) << "not before it has aged";
}

}  // namespace
}  // namespace augur::workflow
