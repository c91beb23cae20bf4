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
  host.forecast = {{60, Resources{2, 16 * kGi}}};  // other load will take 6 of the 8 cores
  ScheduleResult r = Schedule({Shard("a", 5, {4, kGi}, {1, kGi}), Shard("b", 5, {4, kGi},
                                                                          {3, kGi})},
                              l, host, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].grant.cpu, 2);
  EXPECT_EQ(r.waiting.size(), 1u);
}

// A spike of other load forecast ten minutes out: a shard predicted to end before it
// starts now, one that would run into it waits, and says why.
TEST(SchedulerTest, AShardIsAdmittedAgainstTheForecastOverItsOwnRunTime) {
  Ledger l({8, 16 * kGi});
  HostView host;
  host.forecast = {{60, Resources{8, 16 * kGi}}, {300, Resources{8, 16 * kGi}},
                   {900, Resources{1, 16 * kGi}}};
  PendingShard quick = Shard("quick", 5, {4, kGi}, {4, kGi});
  quick.predicted_s = 120;
  PendingShard slow = Shard("slow", 5, {4, kGi}, {4, kGi});
  slow.predicted_s = 1800;
  ScheduleResult r = Schedule({quick, slow}, l, host, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "quick");
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].key, "slow");
  EXPECT_THAT(r.waiting[0].reason, ::testing::HasSubstr("needs at least"));
  // Past the last horizon the last one counts; short of the first, the first.
  EXPECT_EQ(host.FreeOver(5000)->cpu, 1);
  EXPECT_EQ(host.FreeOver(0)->cpu, 8);
  EXPECT_EQ(host.FreeOver(300)->cpu, 8);
  EXPECT_EQ(host.FreeOver(301)->cpu, 1);
  EXPECT_FALSE(HostView{}.FreeOver(10));
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

TEST(SchedulerTest, FitIsMeasuredAgainstTheRoomLeftAtItsTurn) {
  // Two cores. After a (1.5 cores) starts, b (1 core) no longer fits but c (0.5) does: c
  // goes before b, though both fitted the room at the start of the round. (Scored against
  // that room, b would have been the blocked shard room is held for, and c, too long to end
  // before b could start, would have waited.)
  Ledger l({2, 8 * kGi});
  PendingShard a = Shard("a", 5, {1.5, kGi}, {1.5, kGi});
  PendingShard b = Shard("b", 5, {1, kGi}, {1, kGi});
  PendingShard c = Shard("c", 5, {0.5, kGi}, {0.5, kGi});
  a.plan_order = 0;
  b.plan_order = 1;
  c.plan_order = 2;
  c.predicted_s = 1000;
  for (PendingShard* p : {&a, &b, &c}) p->group = "wf";
  ScheduleResult r = Schedule({a, b, c}, l, {}, 0);
  ASSERT_EQ(r.starts.size(), 2u);
  EXPECT_EQ(r.starts[0].key, "a");
  EXPECT_EQ(r.starts[1].key, "c");
  EXPECT_DOUBLE_EQ(r.starts[1].score.fit, 0.5);
  ASSERT_EQ(r.waiting.size(), 1u);
  EXPECT_EQ(r.waiting[0].key, "b");
  EXPECT_DOUBLE_EQ(r.waiting[0].score.fit, 0) << "nothing was left when its turn came";
  EXPECT_EQ(r.reserved_for, "b");
}

TEST(SchedulerTest, APlannedWorkflowFollowsItsPlanAndWorkflowsGoInSubmissionOrder) {
  // One core. Without a deadline a planned workflow has no urgency: its shards go in plan
  // order whatever their paths; an older workflow's shards before a newer one's.
  Ledger l({1, 8 * kGi});
  std::vector<PendingShard> p;
  for (int i = 0; i < 3; ++i) {
    PendingShard s = Shard("old/" + std::to_string(i), 5, {1, kGi}, {1, kGi});
    s.group = "old";
    s.group_seq = 1;
    s.plan_order = 2 - i;  // old/2 first, though old/0 has the longest path
    s.remaining_path_s = 100 * (3 - i);
    s.ideal_finish_ns = 10 * kSec;
    p.push_back(s);
  }
  PendingShard fresh = Shard("new/0", 5, {1, kGi}, {1, kGi});
  fresh.group = "new";
  fresh.group_seq = 2;
  fresh.plan_order = -1;  // first in its own plan, but its workflow came later
  p.push_back(fresh);
  ScheduleResult r = Schedule(p, l, {}, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "old/2");
  EXPECT_EQ(r.starts[0].score.urgency, 0);
  ASSERT_EQ(r.waiting.size(), 3u);
  EXPECT_EQ(r.waiting[0].key, "old/1");
  EXPECT_EQ(r.waiting[1].key, "old/0");
  EXPECT_EQ(r.waiting[2].key, "new/0");
  // A deadline still makes a shard urgent, plan or not.
  Ledger l2({1, 8 * kGi});
  p[3].deadline_ns = 30 * kSec;
  p[3].remaining_path_s = 30;
  r = Schedule(p, l2, {}, 0);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "new/0");
  EXPECT_GT(r.starts[0].score.urgency, 4.9);
}

TEST(SchedulerTest, AgingCountsFromTheWorkflowsLastStart) {
  SchedulerOptions o;
  const int64_t now = 30 * 60 * kSec;
  PendingShard s = Shard("s", 1, {1, kGi}, {1, kGi}, 0);  // ready for 30 minutes
  const double full = ScoreShard(s, {}, now, o).aging;
  EXPECT_NEAR(full, (30 * 60 - o.aging_after_s) / 60 * o.aging_per_minute, 1e-9);
  s.group_last_start_ns = now - 60 * kSec;  // its workflow started a shard a minute ago
  EXPECT_EQ(ScoreShard(s, {}, now, o).aging, 0) << "a workflow making progress is not starving";
  s.group_last_start_ns = now - 10 * 60 * kSec;
  EXPECT_NEAR(ScoreShard(s, {}, now, o).aging, (10 * 60 - o.aging_after_s) / 60, 1e-9);
}

TEST(SchedulerTest, ARoundStopsAfterMaxBlockedScanShardsThatCannotStart) {
  // The host is full but for one core; ten shards want two cores; the eleventh, which
  // would fit, ranks last: with max_blocked_scan 4 it is not reached this round, and it is
  // listed with why.
  Ledger full({4, 16 * kGi});
  ASSERT_EQ(Schedule({Shard("running", 9, {3, kGi}, {3, kGi})}, full, {}, 0).starts.size(), 1u);
  Ledger l = full;
  std::vector<PendingShard> p;
  for (int i = 0; i < 10; ++i) {
    p.push_back(Shard("big" + std::to_string(i), 5, {2, kGi}, {2, kGi}));
  }
  p.push_back(Shard("small", 2, {1, kGi}, {1, kGi}));
  SchedulerOptions o;
  o.max_blocked_scan = 4;
  o.reserve_for_blocked = false;
  ScheduleResult r = Schedule(p, l, {}, kSec, o);
  EXPECT_TRUE(r.starts.empty());
  ASSERT_EQ(r.waiting.size(), 11u);
  int not_considered = 0;
  for (const WaitingShard& w : r.waiting) {
    if (w.reason.find("not considered this round (4 ahead of it cannot start)") !=
        std::string::npos) {
      ++not_considered;
      EXPECT_NE(w.score.total, 0) << w.key << ": scored all the same, for --explain";
    }
  }
  EXPECT_EQ(not_considered, 7);
  // Without the bound the small one starts, as before.
  o.max_blocked_scan = 0;
  l = full;
  r = Schedule(p, l, {}, kSec, o);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "small");
  // An aged shard ranks first, so the bound does not keep it from starting.
  o.max_blocked_scan = 4;
  p.back().ready_ns = -3600 * kSec;
  l = full;
  r = Schedule(p, l, {}, kSec, o);
  ASSERT_EQ(r.starts.size(), 1u);
  EXPECT_EQ(r.starts[0].key, "small");
}

TEST(SchedulerPropertyTest, ScoresTakenInARoundNeverRiseAndNoStartIsUndoneInIt) {
  // Random pending sets against random running grants, pre-emption on: the scores of a
  // round's starts never rise (fits fall as room is used), so a start never shrinks or
  // pre-empts one made earlier in the same round.
  for (uint32_t seed = 1; seed <= 300; ++seed) {
    std::mt19937 rng(seed);
    const Resources cap{double(2 + rng() % 14), (4 + rng() % 60) * kGi};
    Ledger l(cap, LedgerOptions{true});
    for (int i = 0, n = int(rng() % 6); i < n; ++i) {
      const Resources want{0.5 * double(1 + rng() % 4), (1 + rng() % 8) * kGi / 2};
      const ReservationRequest req{"g" + std::to_string(i), want, want.Scaled(0.5),
                                   double(rng() % 12)};
      if (auto plan = l.PlanAdmit(req); plan && *plan) {
        ASSERT_TRUE(l.ApplyAdmission(req, **plan).ok());
      }
    }
    std::vector<PendingShard> p;
    for (int i = 0, n = 1 + int(rng() % 40); i < n; ++i) {
      PendingShard s = Shard("p" + std::to_string(i), 1 + int(rng() % 10),
                             {0.25 * double(1 + rng() % 16), (1 + rng() % 16) * kGi / 4}, {});
      s.want = Resources::Min(s.want, cap);
      s.min = s.want.Scaled(0.25 * double(1 + rng() % 4));
      if (rng() % 2) s.plan_order = double(rng() % 10);
      s.ready_ns = -int64_t(rng() % 900) * kSec;
      p.push_back(s);
    }
    SchedulerOptions o;
    o.max_blocked_scan = rng() % 2 ? 0 : 1 + rng() % 8;
    ScheduleResult r = Schedule(p, l, {}, 0, o);
    std::set<std::string> started;
    for (size_t i = 0; i < r.starts.size(); ++i) {
      if (i > 0) {
        ASSERT_LE(r.starts[i].score.total, r.starts[i - 1].score.total + 1e-12) << seed;
      }
      for (const GrantChange& c : r.starts[i].changes) {
        ASSERT_FALSE(started.contains(c.holder)) << "seed " << seed << ": " << r.starts[i].key
                                                 << " took room from " << c.holder;
      }
      started.insert(r.starts[i].key);
      ASSERT_NE(l.Find(r.starts[i].key), nullptr) << seed;
    }
    ASSERT_EQ(r.starts.size() + r.waiting.size(), p.size()) << seed;
    ASSERT_TRUE(l.Granted().FitsIn(cap)) << seed;
  }
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
