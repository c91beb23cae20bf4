// Pre-warming's pure decisions (src/workflow/prewarm.h): the planner by hand and as seeded
// properties (never over the caps, never warms what is not predicted, releases after the
// timeout, the same plan whatever the input order), the "B follows A" model, and the
// engine's predictions of upcoming stages (Engine::Upcoming).
#include "workflow/prewarm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "workflow/engine.h"
#include "workflow/workflow_spec.h"

namespace augur::workflow {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kMi = 1ULL << 20;

UpcomingStart At(const std::string& stage, int64_t at, uint32_t count = 1,
                 Resources shape = {1, 256 * kMi}, const std::string& backend = "process") {
  UpcomingStart u;
  u.backend = backend;
  u.shape = shape;
  u.count = count;
  u.at_ns = at;
  u.workflow_id = "wf-1";
  u.workflow_name = "wf";
  u.stage = stage;
  return u;
}

WarmInstance Inst(const std::string& name, int64_t since, Resources shape = {1, 256 * kMi},
                  bool probing = false, const std::string& backend = "process") {
  return {name, backend, shape, since, probing};
}

PrewarmOptions Opts() {
  PrewarmOptions o;
  o.lead_ns = 5 * kSec;
  o.idle_timeout_ns = 60 * kSec;
  o.max_per_backend = 8;
  o.max_total = 8;
  return o;
}

uint32_t Warmed(const PrewarmPlan& p) {
  uint32_t n = 0;
  for (const WarmOrder& w : p.warm) n += w.count;
  return n;
}

TEST(PrewarmPlanTest, WarmsAPredictedStageOnlyWithinTheLeadOfItsStart) {
  const int64_t now = 100 * kSec;
  const std::vector<UpcomingStart> up = {At("b", now + 10 * kSec, 3)};
  PrewarmPlan p = PlanPrewarm(up, {}, now, Opts());
  EXPECT_THAT(p.warm, IsEmpty()) << "10 s ahead, lead 5 s: not yet";
  EXPECT_THAT(p.due, IsEmpty());

  p = PlanPrewarm(up, {}, now + 5 * kSec, Opts());
  ASSERT_EQ(p.warm.size(), 1u);
  EXPECT_EQ(p.warm[0].backend, "process");
  EXPECT_EQ(p.warm[0].shape, (Resources{1, 256 * kMi}));
  EXPECT_EQ(p.warm[0].count, 3u);
  EXPECT_THAT(p.warm[0].reason, ::testing::HasSubstr("wf-1/b"));
  EXPECT_THAT(p.due, ElementsAre("wf-1/b"));
}

TEST(PrewarmPlanTest, AnInstanceThatCanHoldTheShapeServesItAndOnlyTheRestIsWarmed) {
  const int64_t now = 100 * kSec;
  const std::vector<UpcomingStart> up = {At("b", now, 3)};
  // One larger (serves), one smaller (cannot hold 256Mi: unpredicted), one probing.
  const std::vector<WarmInstance> pool = {Inst("big", now - kSec, {2, 512 * kMi}),
                                          Inst("small", now - kSec, {1, 128 * kMi}),
                                          Inst("probing", now - kSec, {1, 256 * kMi}, true)};
  PrewarmPlan p = PlanPrewarm(up, pool, now, Opts());
  EXPECT_EQ(Warmed(p), 1u) << "3 wanted, 2 held by the pool";
  ASSERT_EQ(p.release.size(), 1u);
  EXPECT_EQ(p.release[0].name, "small");
  EXPECT_EQ(p.release[0].why, ReleaseOrder::Why::kUnpredicted);
}

TEST(PrewarmPlanTest, OtherBackendsInstancesDoNotServe) {
  const int64_t now = 100 * kSec;
  const std::vector<UpcomingStart> up = {At("b", now, 1)};
  const std::vector<WarmInstance> pool = {Inst("vm", now, {4, 1024 * kMi}, false, "libvirt")};
  PrewarmPlan p = PlanPrewarm(up, pool, now, Opts());
  EXPECT_EQ(Warmed(p), 1u);
  ASSERT_EQ(p.release.size(), 1u);
  EXPECT_EQ(p.release[0].name, "vm");
}

TEST(PrewarmPlanTest, AnInstanceUnusedPastTheIdleTimeoutIsReleasedButNotWhileProbing) {
  const int64_t now = 1000 * kSec;
  const std::vector<UpcomingStart> up = {At("b", now + kSec, 2)};
  const std::vector<WarmInstance> pool = {Inst("old", now - 60 * kSec),
                                          Inst("young", now - 59 * kSec),
                                          Inst("probing", now - 600 * kSec, {1, 256 * kMi}, true)};
  PrewarmPlan p = PlanPrewarm(up, pool, now, Opts());
  ASSERT_EQ(p.release.size(), 1u);
  EXPECT_EQ(p.release[0].name, "old");
  EXPECT_EQ(p.release[0].why, ReleaseOrder::Why::kIdle);
  EXPECT_EQ(Warmed(p), 0u) << "young and probing hold the two predicted shards";
}

TEST(PrewarmPlanTest, APredictionPastItsTimeByMoreThanTheIdleTimeoutIsStale) {
  const int64_t now = 1000 * kSec;
  // Predicted 61 s ago and never started: wrong; its instance goes and nothing is warmed.
  const std::vector<UpcomingStart> up = {At("b", now - 61 * kSec, 2)};
  const std::vector<WarmInstance> pool = {Inst("w", now - 10 * kSec)};
  PrewarmPlan p = PlanPrewarm(up, pool, now, Opts());
  EXPECT_EQ(Warmed(p), 0u);
  ASSERT_EQ(p.release.size(), 1u);
  EXPECT_EQ(p.release[0].why, ReleaseOrder::Why::kUnpredicted);
  EXPECT_THAT(p.due, IsEmpty());
  // 59 s late: still live, still due.
  p = PlanPrewarm(std::vector<UpcomingStart>{At("b", now - 59 * kSec, 2)}, pool, now, Opts());
  EXPECT_EQ(Warmed(p), 1u);
  EXPECT_THAT(p.release, IsEmpty());
}

TEST(PrewarmPlanTest, TheCapsBoundWhatIsWarmedPerBackendAndInAll) {
  const int64_t now = 100 * kSec;
  PrewarmOptions o = Opts();
  o.max_per_backend = 3;
  o.max_total = 4;
  const std::vector<UpcomingStart> up = {At("a", now, 10), At("v", now, 10, {1, kMi}, "libvirt")};
  PrewarmPlan p = PlanPrewarm(up, std::vector<WarmInstance>{Inst("w", now)}, now, o);
  std::map<std::string, uint32_t> per;
  for (const WarmOrder& w : p.warm) per[w.backend] += w.count;
  EXPECT_EQ(per["process"], 2u) << "3 per backend, one already warm";
  EXPECT_EQ(per["libvirt"], 1u) << "4 in all";
  // A pool over the caps gives up the instances of the least pressing predictions.
  o.max_total = 1;
  const std::vector<UpcomingStart> two = {At("soon", now + kSec), At("later", now + 20 * kSec)};
  p = PlanPrewarm(two, std::vector<WarmInstance>{Inst("a", now), Inst("b", now)}, now, o);
  ASSERT_EQ(p.release.size(), 1u);
  EXPECT_EQ(p.release[0].why, ReleaseOrder::Why::kOverCap);
  EXPECT_EQ(Warmed(p), 0u);
}

TEST(PrewarmPlanTest, EachShardIsMatchedToTheSmallestInstanceThatHoldsIt) {
  const int64_t now = 100 * kSec;
  // The small one is due first; taking the large instance would leave the large one none.
  const std::vector<UpcomingStart> up = {At("small", now - kSec, 1, {1, 128 * kMi}),
                                         At("large", now, 1, {1, 512 * kMi})};
  const std::vector<WarmInstance> pool = {Inst("l", now, {1, 512 * kMi}),
                                          Inst("s", now, {1, 128 * kMi})};
  PrewarmPlan p = PlanPrewarm(up, pool, now, Opts());
  EXPECT_THAT(p.warm, IsEmpty());
  EXPECT_THAT(p.release, IsEmpty());
}

// ---- Properties ---------------------------------------------------------------------------

struct Case {
  std::vector<UpcomingStart> up;
  std::vector<WarmInstance> pool;
  int64_t now = 0;
  PrewarmOptions o;
};

Case RandomCase(std::mt19937_64& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::string> backends = {"process", "libvirt", "other"};
  const std::vector<Resources> shapes = {
      {0.5, 64 * kMi}, {1, 256 * kMi}, {2, 256 * kMi}, {2, 1024 * kMi}};
  Case c;
  c.now = 1000 * kSec;
  c.o.lead_ns = pick(0, 10) * kSec;
  c.o.idle_timeout_ns = pick(1, 120) * kSec;
  c.o.max_per_backend = uint32_t(pick(1, 6));
  c.o.max_total = uint32_t(pick(1, 10));
  for (int i = pick(0, 6); i > 0; --i) {
    UpcomingStart u =
        At("s" + std::to_string(pick(0, 4)), c.now + pick(-150, 30) * kSec, uint32_t(pick(0, 5)),
           shapes[size_t(pick(0, 3))], backends[size_t(pick(0, 2))]);
    u.workflow_id = pick(0, 1) ? "wf-" + std::to_string(pick(0, 2)) : "";
    c.up.push_back(u);
  }
  // A pool within the caps, as the executor keeps it.
  std::map<std::string, uint32_t> per;
  for (int i = pick(0, 8); i > 0 && c.pool.size() < c.o.max_total; --i) {
    const std::string& b = backends[size_t(pick(0, 2))];
    if (per[b] >= c.o.max_per_backend) continue;
    ++per[b];
    c.pool.push_back(Inst("w" + std::to_string(i), c.now - pick(0, 200) * kSec,
                          shapes[size_t(pick(0, 3))], pick(0, 3) == 0, b));
  }
  return c;
}

TEST(PrewarmPlanPropertyTest, HoldsItsRulesOnRandomInputs) {
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937_64 rng(seed);
    const Case c = RandomCase(rng);
    const PrewarmPlan p = PlanPrewarm(c.up, c.pool, c.now, c.o);
    SCOPED_TRACE("seed " + std::to_string(seed));

    // Releases are of pool instances, once each.
    std::set<std::string> released;
    for (const ReleaseOrder& r : p.release) {
      EXPECT_TRUE(released.insert(r.name).second) << r.name << " twice";
      EXPECT_TRUE(std::any_of(c.pool.begin(), c.pool.end(),
                              [&](const WarmInstance& w) { return w.name == r.name; }));
    }
    // Idle ones go; probing ones are never idle.
    for (const WarmInstance& w : c.pool) {
      if (!w.probing && c.now - w.since_ns >= c.o.idle_timeout_ns) {
        EXPECT_TRUE(released.contains(w.name)) << w.name << " idle, kept";
      }
    }
    for (const ReleaseOrder& r : p.release) {
      if (r.why != ReleaseOrder::Why::kIdle) continue;
      const auto& w = *std::find_if(c.pool.begin(), c.pool.end(),
                                    [&](const WarmInstance& x) { return x.name == r.name; });
      EXPECT_FALSE(w.probing);
      EXPECT_GE(c.now - w.since_ns, c.o.idle_timeout_ns);
    }
    // Never over the caps.
    std::map<std::string, uint32_t> per;
    uint32_t total = 0;
    for (const WarmInstance& w : c.pool) {
      if (!released.contains(w.name)) ++per[w.backend], ++total;
    }
    for (const WarmOrder& w : p.warm) per[w.backend] += w.count, total += w.count;
    EXPECT_LE(total, c.o.max_total);
    for (const auto& [b, n] : per) EXPECT_LE(n, c.o.max_per_backend) << b;
    // Never warms what is not predicted: each order's shape and backend has at least that
    // many shards due and live.
    for (const WarmOrder& w : p.warm) {
      EXPECT_GT(w.count, 0u);
      uint32_t due = 0;
      for (const UpcomingStart& u : c.up) {
        if (u.backend == w.backend && u.shape == w.shape && c.now >= u.at_ns - c.o.lead_ns &&
            c.now <= u.at_ns + c.o.idle_timeout_ns) {
          due += u.count;
        }
      }
      EXPECT_LE(w.count, due) << w.backend << " " << w.shape.ToString();
    }
    // Nothing predicted, nothing kept.
    if (c.up.empty()) {
      EXPECT_EQ(p.release.size(), c.pool.size());
      EXPECT_THAT(p.warm, IsEmpty());
    }
    // The same plan whatever the order of the input.
    Case shuffled = c;
    std::shuffle(shuffled.up.begin(), shuffled.up.end(), rng);
    std::shuffle(shuffled.pool.begin(), shuffled.pool.end(), rng);
    const PrewarmPlan q = PlanPrewarm(shuffled.up, shuffled.pool, c.now, c.o);
    ASSERT_EQ(q.warm.size(), p.warm.size());
    for (size_t k = 0; k < p.warm.size(); ++k) {
      EXPECT_EQ(q.warm[k].backend, p.warm[k].backend);
      EXPECT_EQ(q.warm[k].shape, p.warm[k].shape);
      EXPECT_EQ(q.warm[k].count, p.warm[k].count);
    }
    ASSERT_EQ(q.release.size(), p.release.size());
    for (size_t k = 0; k < p.release.size(); ++k) {
      EXPECT_EQ(q.release[k].name, p.release[k].name);
      EXPECT_EQ(q.release[k].why, p.release[k].why);
    }
    EXPECT_EQ(q.due, p.due);
  }
}

TEST(PrewarmPlanPropertyTest, WithoutCapsInTheWayEveryDueShardEndsWithAnInstance) {
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    std::mt19937_64 rng(seed);
    Case c = RandomCase(rng);
    c.o.max_per_backend = c.o.max_total = 1000;
    const PrewarmPlan p = PlanPrewarm(c.up, c.pool, c.now, c.o);
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::set<std::string> released;
    for (const ReleaseOrder& r : p.release) released.insert(r.name);
    // Per backend: due shards <= kept instances + warmed ones.
    std::map<std::string, uint32_t> due, have;
    for (const UpcomingStart& u : c.up) {
      if (c.now >= u.at_ns - c.o.lead_ns && c.now <= u.at_ns + c.o.idle_timeout_ns) {
        due[u.backend] += u.count;
      }
    }
    for (const WarmInstance& w : c.pool) {
      if (!released.contains(w.name)) ++have[w.backend];
    }
    for (const WarmOrder& w : p.warm) have[w.backend] += w.count;
    for (const auto& [b, n] : due) EXPECT_GE(have[b], n) << b;
  }
}

// ---- Shapes of predictions ----------------------------------------------------------------

TEST(PrewarmShapeTest, StagesPredictTheirResourcesWithinCapacityAndTheirShardCount) {
  auto spec = ParseWorkflow(R"(workflow: w
stages:
  - name: a
    resources: {cpu: 4, memory: 2Gi}
    shards: {range: [0, 100], count: 5}
    run: [true]
  - name: b
    shards: {items: [x, y, z]}
    run: [echo, "{shard.item}"]
  - name: c
    shards: {range: [0, 100]}
    run: [true]
  - name: d
    needs: [a]
    run: [true]
)");
  ASSERT_TRUE(spec) << spec.error().ToString();
  const Resources cap{2, 1ULL << 40};
  EXPECT_EQ(PredictedShape(spec->stages[0], cap), (Resources{2, 2ULL << 30}));
  EXPECT_EQ(PredictedShardCount(spec->stages[0]), 5u);
  EXPECT_EQ(PredictedShardCount(spec->stages[1]), 3u);
  EXPECT_EQ(PredictedShardCount(spec->stages[2]), 1u) << "count: auto";
  const std::vector<UpcomingStart> roots = RootStarts(*spec, cap, 7);
  ASSERT_EQ(roots.size(), 3u) << "d has needs";
  EXPECT_EQ(roots[0].Key(), "name:w/a");
  EXPECT_EQ(roots[0].at_ns, 7);
  EXPECT_EQ(roots[0].backend, "process");
}

// ---- B follows A ------------------------------------------------------------------------

constexpr int64_t kMin = 60 * kSec;

FollowOptions Follow() {
  FollowOptions o;
  o.window_ns = 10 * kMin;
  o.last = 5;
  o.min_support = 3;
  return o;
}

// A at each of `a_at` (minutes); B `delay_s` after those listed in `b_after`.
std::vector<Submission> History(const std::vector<int>& a_at, const std::vector<int>& b_after,
                                int delay_s) {
  std::vector<Submission> h;
  for (int t : a_at) h.push_back({"A", t * kMin});
  for (int t : b_after) h.push_back({"B", t * kMin + delay_s * kSec});
  return h;
}

TEST(FollowTest, APairNeedsTheMinimumSupportAmongTheLastSubmissions) {
  const int64_t now = 1000 * kMin;
  // B followed A 3 of the last 5 times (and not at all the 5 times before: not judged).
  auto h = History({0, 100, 200, 300, 400, 500, 600, 700, 800, 900}, {500, 700, 900}, 30);
  std::vector<FollowPair> pairs = LearnFollows(h, now, Follow());
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].first, "A");
  EXPECT_EQ(pairs[0].then, "B");
  EXPECT_EQ(pairs[0].support, 3u);
  EXPECT_EQ(pairs[0].judged, 5u);
  EXPECT_EQ(pairs[0].delay_ns, 30 * kSec);
  // 2 of 5: no pair.
  h = History({0, 100, 200, 300, 400, 500, 600, 700, 800, 900}, {100, 700, 900}, 30);
  EXPECT_THAT(LearnFollows(h, now, Follow()), IsEmpty());
  // Outside the window does not count.
  h = History({0, 100, 200, 300, 400}, {0, 100, 200}, 11 * 60);
  EXPECT_THAT(LearnFollows(h, now, Follow()), IsEmpty());
}

TEST(FollowTest, TheDelayIsTheMedianAndOpenWindowsAreNotJudged) {
  std::vector<Submission> h = {{"A", 0},          {"B", 10 * kSec},
                               {"A", 100 * kMin}, {"B", 100 * kMin + 20 * kSec},
                               {"A", 200 * kMin}, {"B", 200 * kMin + 90 * kSec}};
  // At 205 min the last A's window is open: two judged, below the support.
  EXPECT_THAT(LearnFollows(h, 205 * kMin, Follow()), IsEmpty());
  auto pairs = LearnFollows(h, 211 * kMin, Follow());
  ASSERT_EQ(pairs.size(), 1u);
  EXPECT_EQ(pairs[0].delay_ns, 20 * kSec);
  // Submissions in the future are not seen.
  EXPECT_THAT(LearnFollows(h, 150 * kMin, Follow()), IsEmpty());
}

TEST(FollowTest, ASubmissionOfAPredictsBUntilBComesOrTheWindowCloses) {
  auto h = History({0, 100, 200, 300}, {0, 100, 200}, 45);
  h.push_back({"A", 500 * kMin});
  std::vector<Follower> f = PredictFollowers(h, 500 * kMin + kSec, Follow());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "B");
  EXPECT_EQ(f[0].after, "A");
  EXPECT_EQ(f[0].at_ns, 500 * kMin + 45 * kSec);
  EXPECT_EQ(f[0].support, 3u);
  EXPECT_EQ(f[0].judged, 4u);
  // B came: nothing more to predict.
  auto came = h;
  came.push_back({"B", 500 * kMin + 40 * kSec});
  EXPECT_THAT(PredictFollowers(came, 500 * kMin + 41 * kSec, Follow()), IsEmpty());
  // The window closed.
  EXPECT_THAT(PredictFollowers(h, 510 * kMin, Follow()), IsEmpty());
}

TEST(FollowTest, AWorkflowSubmittedAgainAndAgainPredictsItself) {
  std::vector<Submission> h;
  for (int i = 0; i <= 6; ++i) h.push_back({"tick", i * 5 * kMin});
  std::vector<Follower> f = PredictFollowers(h, 30 * kMin + kSec, Follow());
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].name, "tick");
  EXPECT_EQ(f[0].at_ns, 35 * kMin);
}

TEST(FollowPropertyTest, PredictionsHaveSupportAndFallInTheWindow) {
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<Submission> h;
    const char* names[] = {"a", "b", "c"};
    for (int i = std::uniform_int_distribution<int>(0, 40)(rng); i > 0; --i) {
      h.push_back({names[rng() % 3], int64_t(rng() % 200) * kMin});
    }
    const int64_t now = int64_t(rng() % 220) * kMin;
    const FollowOptions o = Follow();
    SCOPED_TRACE("seed " + std::to_string(seed));
    for (const FollowPair& p : LearnFollows(h, now, o)) {
      EXPECT_GE(p.support, o.min_support);
      EXPECT_LE(p.support, p.judged);
      EXPECT_LE(p.judged, o.last);
      EXPECT_GT(p.delay_ns, 0);
      EXPECT_LE(p.delay_ns, o.window_ns);
    }
    std::set<std::string> seen;
    for (const Follower& f : PredictFollowers(h, now, o)) {
      EXPECT_TRUE(seen.insert(f.name).second);
      int64_t t0 = -1;
      for (const Submission& s : h) {
        if (s.name == f.after && s.at_ns <= now) t0 = std::max(t0, s.at_ns);
      }
      ASSERT_GE(t0, 0);
      EXPECT_LT(now - t0, o.window_ns);
      EXPECT_GT(f.at_ns, t0);
      EXPECT_LE(f.at_ns, t0 + o.window_ns);
      for (const Submission& s : h) {
        if (s.name == f.name) {
          EXPECT_FALSE(s.at_ns > t0 && s.at_ns <= now) << "already came";
        }
      }
    }
  }
}

// ---- The engine's predictions -----------------------------------------------------------

EngineOptions EngineOpts() {
  EngineOptions o;
  o.work_root = "/tmp/augur-prewarm-test";
  o.capacity = {2, 1024 * kMi};
  return o;
}

TEST(EngineUpcomingTest, AStageIsPredictedWhenItsNeedsArePredictedToFinish) {
  const char kChain[] = R"(workflow: chain
stages:
  - name: a
    resources: {cpu: 1, memory: 64Mi}
    shards: {range: [0, 4], count: 4}
    canary: false
    expected: 10s
    run: [true]
  - name: b
    needs: [a]
    backend: process
    resources: {cpu: 4, memory: 128Mi}
    shards: {items: [x, y]}
    run: [echo, "{shard.item}"]
  - name: c
    needs: [b]
    run: [true]
)";
  auto spec = ParseWorkflow(kChain);
  ASSERT_TRUE(spec) << spec.error().ToString();
  Engine e(EngineOpts());
  auto id = e.Submit(*spec, kChain, "chain.yaml", 0);
  ASSERT_TRUE(id);
  // Nothing runs yet: a's shards wait, predicted to end 10 s from now.
  std::vector<UpcomingStart> up = e.Upcoming(kSec);
  ASSERT_EQ(up.size(), 1u) << "b only: c's need is not planned";
  EXPECT_EQ(up[0].stage, "b");
  EXPECT_EQ(up[0].workflow_id, *id);
  EXPECT_EQ(up[0].workflow_name, "chain");
  EXPECT_EQ(up[0].at_ns, 11 * kSec);
  EXPECT_EQ(up[0].count, 2u);
  EXPECT_EQ(up[0].shape, (Resources{2, 128 * kMi})) << "4 cpu wanted, 2 can be granted";
  // Two of a's four shards start at 2 s (two cores); two wait: b is predicted at
  // now + 10 s for the waiting ones.
  std::vector<Action> a = e.Tick(2 * kSec, {});
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(e.Upcoming(3 * kSec)[0].at_ns, 13 * kSec);
  // All four run: b when the last started one ends.
  for (const Action& x : a) e.AttemptEnded(x.attempt.attempt_id, AttemptOutcome{}, 4 * kSec);
  ASSERT_EQ(e.Tick(5 * kSec, {}).size(), 2u);
  EXPECT_EQ(e.Upcoming(6 * kSec)[0].at_ns, 5 * kSec + 2 * kSec) << "learned: a's shards took 2 s";
  // An overrun leaves the prediction in the past (the planner lets it go stale).
  EXPECT_EQ(e.Upcoming(100 * kSec)[0].at_ns, 7 * kSec);
  // A cancelled workflow predicts nothing.
  ASSERT_TRUE(e.Cancel(*id, 101 * kSec).ok());
  EXPECT_THAT(e.Upcoming(102 * kSec), IsEmpty());
}


TEST(DemandStartsTest, APeakKeepsAsManyRootShardsWarmAsAreBusyAtOnce) {
  UpcomingStart root;
  root.backend = "process";
  root.shape = {1, 64ULL << 20};
  root.count = 4;  // shards per submission
  root.workflow_name = "render";
  root.stage = "frames";
  auto shard_s = [](const std::string& stage) { return stage == "frames" ? 90.0 : 0.0; };
  // 20 an hour, 4 shards of 90 s each: 20/3600 x 90 x 4 = 2 busy at once.
  std::vector<UpcomingStart> up = DemandStarts({root}, 20, shard_s, 6);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].count, 2u);
  EXPECT_EQ(up[0].Key(), root.Key());
  // Below the peak threshold: nothing.
  EXPECT_TRUE(DemandStarts({root}, 5, shard_s, 6).empty());
  // A trickle of long shards: at least one, at most ceil(rate) submissions' worth.
  EXPECT_EQ(DemandStarts({root}, 6, [](const std::string&) { return 36000.0; }, 6)[0].count,
            24u);
  EXPECT_EQ(DemandStarts({root}, 6, [](const std::string&) { return 0.1; }, 6)[0].count, 1u);
  EXPECT_EQ(DemandStarts({root}, 6, shard_s, 0).size(), 1u) << "the pool, not this, reads 0 as off";
}

}  // namespace
}  // namespace augur::workflow
