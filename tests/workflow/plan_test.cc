// Plans (src/workflow/plan.h): the chosen order is the candidate whose replay ends first, the
// scheduler following it does what the plan's replay did, and with exact predictions augur
// is no worse than either baseline of the benchmark.
#include "workflow/plan.h"

#include <random>

#include <gtest/gtest.h>

#include "workflow/replay.h"

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;

// Layers of alike tasks (like scientific workflows), each layer needing the one before
// through a random pattern; rigid tasks (min == want) of 0.1 to 1.5 cores.
std::vector<ReplayTask> LayeredDag(std::mt19937& rng, const Resources& cap) {
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  std::vector<ReplayTask> tasks;
  std::vector<int> prev;
  for (int l = 0, layers = 2 + int(rng() % 4); l < layers; ++l) {
    const int width = 1 + int(rng() % 12);
    const double base_s = uni(1, 100), base_cpu = uni(0.1, 1.5);
    std::vector<int> layer;
    for (int k = 0; k < width; ++k) {
      ReplayTask t;
      t.actual_s = t.predicted_s = base_s * uni(0.6, 1.4);
      t.want = t.min = {std::min(cap.cpu, base_cpu * uni(0.8, 1.2)), kGi / 4};
      for (int j = 0; !prev.empty() && j < 1 + int(rng() % 3); ++j) {
        const int p = prev[rng() % prev.size()];
        if (std::find(t.preds.begin(), t.preds.end(), p) == t.preds.end()) t.preds.push_back(p);
      }
      layer.push_back(int(tasks.size()));
      tasks.push_back(std::move(t));
    }
    prev = std::move(layer);
  }
  return tasks;
}

double Makespan(const std::vector<ReplayTask>& tasks, const Resources& cap, ReplayPolicy p,
                bool plan = true) {
  ReplayOptions o;
  o.capacity = cap;
  o.policy = p;
  o.plan = plan;
  auto r = Replay(tasks, o);
  EXPECT_TRUE(r) << r.error().ToString();
  return r ? r->makespan_s : 0;
}

TEST(PlanTest, TheSchedulerFollowingThePlanDoesWhatThePlansReplayDid) {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    std::mt19937 rng(seed);
    const Resources cap{double(2 + rng() % 10), 64 * kGi};
    const std::vector<ReplayTask> tasks = LayeredDag(rng, cap);
    PlanOptions po;
    po.capacity = cap;
    auto plan = PlanWorkflow(tasks, po);
    ASSERT_TRUE(plan) << plan.error().ToString();
    ASSERT_TRUE(*plan);
    ReplayOptions o;
    o.capacity = cap;
    auto r = Replay(tasks, o);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_NEAR(r->makespan_s, (*plan)->makespan_s, 1e-6) << "seed " << seed;
    EXPECT_EQ(r->plan, (*plan)->chosen);
    // Never worse than the scheduler alone, which is one of the candidates.
    EXPECT_LE(r->makespan_s, Makespan(tasks, cap, ReplayPolicy::kAugur, false) + 1e-6) << seed;
  }
}

TEST(PlanTest, WithExactPredictionsAugurIsNoWorseThanEitherBaseline) {
  int strictly_better = 0, cases = 0;
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    std::mt19937 rng(seed);
    const Resources cap{double(2 + rng() % 14), 64 * kGi};
    const std::vector<ReplayTask> tasks = LayeredDag(rng, cap);
    const double augur = Makespan(tasks, cap, ReplayPolicy::kAugur);
    const double fifo = Makespan(tasks, cap, ReplayPolicy::kFifo);
    const double rank = Makespan(tasks, cap, ReplayPolicy::kUpwardRank);
    ASSERT_LE(augur, std::min(fifo, rank) * (1 + 1e-9) + 1e-9)
        << "seed " << seed << ": fifo " << fifo << ", upward rank " << rank;
    ++cases;
    strictly_better += augur < std::min(fifo, rank) * (1 - 1e-6);
  }
  std::printf("augur strictly better than both baselines on %d of %d DAGs\n", strictly_better,
              cases);
}

TEST(PlanTest, OrdersAreRankSubmissionOrderOrTheSchedulerAlone) {
  // A chain beside a fan: upward rank starts the chain's head first; the plan records which
  // candidate won, and an empty order means the scheduler alone did best.
  std::vector<ReplayTask> tasks(4);
  for (ReplayTask& t : tasks) t.want = t.min = {1, kGi};
  tasks[0].actual_s = tasks[0].predicted_s = 10;
  tasks[1].actual_s = tasks[1].predicted_s = 10;
  tasks[1].preds = {0};
  tasks[2].actual_s = tasks[2].predicted_s = 5;
  tasks[3].actual_s = tasks[3].predicted_s = 5;
  PlanOptions po;
  po.capacity = {1, 8 * kGi};
  auto plan = PlanWorkflow(tasks, po);
  ASSERT_TRUE(plan && *plan);
  EXPECT_DOUBLE_EQ((*plan)->makespan_s, 30) << "one core: the total, whatever the order";
  EXPECT_EQ((*plan)->chosen, "least slack") << "ties keep the first candidate";
  EXPECT_TRUE((*plan)->order.empty());
  po.max_tasks = 3;
  plan = PlanWorkflow(tasks, po);
  ASSERT_TRUE(plan);
  EXPECT_FALSE(*plan) << "more tasks than max_tasks: no plan";
  // A plan of the wrong size is refused by the replay.
  ReplayOptions o;
  o.capacity = {1, 8 * kGi};
  o.given_plan_order = {1, 2};
  auto r = Replay(tasks, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("2 places for 4 tasks"), std::string::npos);
}

}  // namespace
}  // namespace augur::workflow
