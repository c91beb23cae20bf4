// MakespanBound (src/workflow/makespan_bound.h): checked against the exact optimum of tiny
// DAGs found by exhaustive search, against every policy's replay of random DAGs (tasks that
// can be shrunk included), and on cases whose optimum is known by hand.
#include "workflow/makespan_bound.h"

#include <functional>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "workflow/replay.h"

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;

ReplayTask Rigid(double s, double cpu, std::vector<int> preds = {}, uint64_t mem = kGi) {
  ReplayTask t;
  t.actual_s = t.predicted_s = s;
  t.want = t.min = {cpu, mem};
  t.preds = std::move(preds);
  return t;
}

// The optimal makespan of rigid tasks (min == want) with integer durations and releases,
// by exhaustive search. A schedule can be shifted left until every task starts at a release
// or at another task's end (a semi-active schedule) without getting longer, so trying, at
// each such moment, every set of ready tasks that fits finds the optimum.
double BruteForceOptimum(const std::vector<ReplayTask>& tasks, const Resources& cap) {
  const int n = int(tasks.size());
  std::vector<double> end(n, -1);
  double best = std::numeric_limits<double>::infinity();
  std::function<void(double, int)> dfs = [&](double now, int started) {
    double makespan = 0;
    for (double e : end) makespan = std::max(makespan, e);
    if (started == n) {
      best = std::min(best, makespan);
      return;
    }
    if (makespan >= best) return;
    Resources used;
    for (int i = 0; i < n; ++i) {
      if (end[i] > now) used += tasks[i].want;
    }
    std::vector<int> ready;
    for (int i = 0; i < n; ++i) {
      if (end[i] >= 0 || tasks[i].submit_s > now) continue;
      bool ok = true;
      for (int p : tasks[i].preds) ok = ok && end[p] >= 0 && end[p] <= now;
      if (ok) ready.push_back(i);
    }
    // The next moment something can change: an end or a release after now.
    double next = std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      if (end[i] > now) next = std::min(next, end[i]);
      if (end[i] < 0 && tasks[i].submit_s > now) next = std::min(next, tasks[i].submit_s);
    }
    for (uint32_t mask = 0; mask < (1u << ready.size()); ++mask) {
      Resources total = used;
      for (size_t k = 0; k < ready.size(); ++k) {
        if (mask >> k & 1) total += tasks[ready[k]].want;
      }
      if (!total.FitsIn(cap)) continue;
      double next_here = next;
      for (size_t k = 0; k < ready.size(); ++k) {
        if (mask >> k & 1) {
          end[ready[k]] = now + tasks[ready[k]].actual_s;
          next_here = std::min(next_here, end[ready[k]]);
        }
      }
      if (std::isfinite(next_here)) dfs(next_here, started + std::popcount(mask));
      for (size_t k = 0; k < ready.size(); ++k) {
        if (mask >> k & 1) end[ready[k]] = -1;
      }
    }
  };
  dfs(0, 0);
  return best;
}

TEST(MakespanBoundTest, KnownOptimaThatTheSimpleBoundMisses) {
  // Three 2 s tasks of one core on two cores: one core runs two of them, 4 s; the simple
  // bound says max(2, 6 / 2) = 3.
  auto b = ComputeMakespanBound({Rigid(2, 1), Rigid(2, 1), Rigid(2, 1)}, {2, 8 * kGi});
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_DOUBLE_EQ(b->simple_s(), 3);
  EXPECT_NEAR(b->bound_s, 4, 1e-3);

  // Montage's shape: 21 tasks of 16 s and one core on 16 cores, then a 3 s step after all
  // of them. Optimum 16 + 16 + 3 = 35; the simple bound max(19, (21 x 16 + 3) / 16).
  std::vector<ReplayTask> m;
  std::vector<int> all;
  for (int i = 0; i < 21; ++i) {
    m.push_back(Rigid(16, 1));
    all.push_back(i);
  }
  m.push_back(Rigid(3, 1, all));
  b = ComputeMakespanBound(m, {16, 64 * kGi});
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_NEAR(b->simple_s(), 339.0 / 16, 1e-9);
  EXPECT_NEAR(b->bound_s, 35, 1e-2);

  // Ancestors' work delays a task: ten 10 s one-core tasks on two cores before a 10 s
  // task, and a second chain beside it. Nothing can start the last task before 50 s.
  std::vector<ReplayTask> h;
  std::vector<int> firsts;
  for (int i = 0; i < 10; ++i) {
    h.push_back(Rigid(10, 1));
    firsts.push_back(i);
  }
  h.push_back(Rigid(10, 1, firsts));
  b = ComputeMakespanBound(h, {2, 8 * kGi});
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_NEAR(b->head_tail_s, 60, 1e-9);
  EXPECT_NEAR(b->simple_s(), 55, 1e-9);
}

TEST(MakespanBoundTest, MemoryCountsLikeCpu) {
  // Two tasks that each need 3 of 4 GiB cannot overlap, though CPU would let them.
  auto b = ComputeMakespanBound({Rigid(5, 1, {}, 3 * kGi), Rigid(5, 1, {}, 3 * kGi)}, {8, 4 * kGi});
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_NEAR(b->bound_s, 10, 1e-3);
}

TEST(MakespanBoundTest, ShrinkableTasksAreNotBoundedAsIfRigid) {
  // Two tasks wanting 2 cores for 1 s, each accepting 1 core, on 3 cores: both at 1.5
  // cores end at 4/3 s. A bound that took their want as rigid would say 2 s.
  ReplayTask a = Rigid(1, 2);
  a.min.cpu = 1;
  const ReplayTask b2 = a;
  auto b = ComputeMakespanBound({a, b2}, {3, 8 * kGi});
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_LE(b->bound_s, 4.0 / 3 + 1e-9);
  EXPECT_NEAR(b->bound_s, 4.0 / 3, 1e-3);
}

TEST(MakespanBoundTest, NeverAboveTheOptimumOfTinyDags) {
  int tighter = 0, exact = 0, cases = 0;
  double sum_ratio_new = 0, sum_ratio_simple = 0;
  for (uint32_t seed = 1; seed <= 400; ++seed) {
    std::mt19937 rng(seed);
    const Resources cap{double(2 + rng() % 3), (2 + rng() % 3) * kGi};
    const int n = 3 + int(rng() % 5);
    std::vector<ReplayTask> tasks;
    for (int i = 0; i < n; ++i) {
      std::vector<int> preds;
      for (int j = 0; j < i; ++j) {
        if (rng() % 4 == 0) preds.push_back(j);
      }
      ReplayTask t = Rigid(double(1 + rng() % 4), double(1 + rng() % int(cap.cpu)),
                           std::move(preds), (1 + rng() % (cap.memory / kGi)) * kGi);
      if (seed % 3 == 0) t.submit_s = double(rng() % 3);
      tasks.push_back(t);
    }
    const double opt = BruteForceOptimum(tasks, cap);
    auto b = ComputeMakespanBound(tasks, cap);
    ASSERT_TRUE(b) << b.error().ToString();
    double first = 1e9;
    for (const ReplayTask& t : tasks) first = std::min(first, t.submit_s);
    const double opt_rel = opt - first;
    ASSERT_LE(b->bound_s, opt_rel + 1e-6) << "seed " << seed;
    ASSERT_GE(b->bound_s, b->simple_s() - 1e-9) << "seed " << seed;
    ++cases;
    tighter += b->bound_s > b->simple_s() + 1e-6;
    exact += b->bound_s > opt_rel - 1e-3;
    sum_ratio_new += opt_rel / b->bound_s;
    sum_ratio_simple += opt_rel / b->simple_s();
  }
  // It must also be worth having: tighter than max(critical path, work) on many of them.
  EXPECT_GT(tighter, cases / 4) << tighter << " of " << cases;
  EXPECT_GT(exact, cases / 2) << exact << " of " << cases;
  EXPECT_LT(sum_ratio_new, sum_ratio_simple);
  std::printf(
      "tiny DAGs: %d cases, new bound tighter on %d, exact on %d; mean optimum / "
      "bound %.3f (simple %.3f)\n",
      cases, tighter, exact, sum_ratio_new / cases, sum_ratio_simple / cases);
}

TEST(MakespanBoundTest, NeverAboveAnyReplayedScheduleOfRandomDags) {
  // Shrinkable tasks, several workflows arriving at different times, memory that binds:
  // every policy's schedule is a real schedule, so none may beat the bound.
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    std::mt19937 rng(seed);
    const Resources cap{double(1 + rng() % 8), (1 + rng() % 16) * kGi};
    std::vector<ReplayTask> tasks;
    const int workflows = 1 + rng() % 3;
    for (int w = 0; w < workflows; ++w) {
      const int base = int(tasks.size()), n = 1 + int(rng() % 20);
      const double submit = double(rng() % 50);
      for (int i = 0; i < n; ++i) {
        ReplayTask t;
        for (int j = 0; j < i; ++j) {
          if (rng() % 5 == 0) t.preds.push_back(base + j);
        }
        t.actual_s = 0.5 + rng() % 40;
        t.predicted_s = t.actual_s * (0.7 + 0.6 * (rng() % 1000) / 1000.0);
        t.want = {std::min(cap.cpu, 0.25 * (1 + rng() % 12)),
                  std::min<uint64_t>(cap.memory, (1 + rng() % 16) * (kGi / 4))};
        t.min = seed % 2 ? t.want : t.want.Scaled(0.25 * (1 + rng() % 4));
        t.workflow = w;
        t.submit_s = submit;
        tasks.push_back(t);
      }
    }
    auto b = ComputeMakespanBound(tasks, cap);
    ASSERT_TRUE(b) << b.error().ToString();
    for (ReplayPolicy p : {ReplayPolicy::kAugur, ReplayPolicy::kFifo, ReplayPolicy::kUpwardRank}) {
      ReplayOptions o;
      o.capacity = cap;
      o.policy = p;
      auto r = Replay(tasks, o);
      ASSERT_TRUE(r) << r.error().ToString();
      ASSERT_LE(b->bound_s, r->makespan_s + 1e-6)
          << "seed " << seed << " policy " << ReplayPolicyName(p) << " critical "
          << b->critical_path_s << " work " << b->work_s << " head/tail " << b->head_tail_s
          << " packing " << b->packing_s << " energetic " << b->energetic_s;
      ASSERT_GE(b->simple_s(), r->lower_bound_s - 1e-6 * r->lower_bound_s) << seed;
    }
  }
}

TEST(MakespanBoundTest, ACycleIsAnError) {
  auto b = ComputeMakespanBound({Rigid(1, 1, {1}), Rigid(1, 1, {0})}, {2, kGi});
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("0 -> 1 -> 0"), std::string::npos) << b.error().message();
}

}  // namespace
}  // namespace augur::workflow
