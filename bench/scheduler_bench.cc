// The scheduler's own cost (src/workflow/scheduler.h): one Schedule() call as the pending set
// grows, a whole 10,000-shard DAG replayed in virtual time (decisions per second), and the
// plan the engine makes of a workflow at submission (plan.h).
//
//   build/bench/scheduler_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <random>

#include "workflow/plan.h"
#include "workflow/replay.h"
#include "workflow/scheduler.h"

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;

std::vector<PendingShard> Pending(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<PendingShard> out(n);
  for (size_t i = 0; i < n; ++i) {
    PendingShard& p = out[i];
    p.key = "wf" + std::to_string(i % 97) + "/s/" + std::to_string(i);
    p.group = "wf" + std::to_string(i % 97);
    p.priority = 1 + rng() % 10;
    p.ready_ns = int64_t(rng() % 600) * 1'000'000'000;
    p.deadline_ns = rng() % 2 ? int64_t(600 + rng() % 3600) * 1'000'000'000 : 0;
    p.remaining_path_s = 1 + rng() % 600;
    p.predicted_s = 1 + rng() % 60;
    p.want = {0.25 * (1 + rng() % 8), (1 + rng() % 8) * (kGi / 4)};
    p.min = p.want.Scaled(0.5);
    p.seq = i;
  }
  return out;
}

// One decision round over N pending shards on a 64-core host that is already full but for
// a few cores: the realistic case, where most of the pending set waits. Second argument:
// SchedulerOptions::max_blocked_scan (0: scan them all, as before it existed).
void BM_ScheduleRound(benchmark::State& state) {
  const std::vector<PendingShard> pending = Pending(size_t(state.range(0)), 7);
  Ledger base({64, 256 * kGi});
  for (int i = 0; i < 60; ++i) {
    const ReservationRequest r{"running" + std::to_string(i), {1, 4 * kGi}, {1, 4 * kGi}, 20};
    (void)base.ApplyAdmission(r, Admission{{1, 4 * kGi}, {}});
  }
  SchedulerOptions o;
  o.max_blocked_scan = size_t(state.range(1));
  size_t starts = 0;
  for (auto _ : state) {
    Ledger l = base;
    ScheduleResult r = Schedule(pending, l, {}, 700'000'000'000, o);
    starts = r.starts.size();
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["starts"] = double(starts);
  state.SetLabel("pending shards per second = items_per_second");
}
BENCHMARK(BM_ScheduleRound)
    ->ArgsProduct({{1000, 10000, 100000}, {0, 256}})
    ->Unit(benchmark::kMillisecond);

// A 10,000-shard random DAG (one workflow) replayed on 64 cores: every start, end and
// scheduling round of the real scheduler and ledger, in virtual time.
void BM_Replay10kShardDag(benchmark::State& state) {
  std::mt19937 rng(11);
  std::vector<ReplayTask> tasks(10000);
  for (int i = 0; i < int(tasks.size()); ++i) {
    ReplayTask& t = tasks[i];
    // Layered: each shard needs up to two of the previous 200.
    for (int k = 0; k < 2 && i > 0; ++k) {
      const int p = std::max(0, i - 1 - int(rng() % 200));
      if (std::find(t.preds.begin(), t.preds.end(), p) == t.preds.end()) t.preds.push_back(p);
    }
    t.actual_s = t.predicted_s = 1 + rng() % 30;
    t.want = {double(1 + rng() % 4), (1 + rng() % 8) * kGi / 2};
    t.min = t.want;
  }
  ReplayOptions o;
  o.capacity = {64, 256 * kGi};
  uint64_t decisions = 0;
  for (auto _ : state) {
    auto r = Replay(tasks, o);
    if (!r) state.SkipWithError(r.error().message().c_str());
    decisions += r->decisions;
  }
  state.counters["decisions_per_s"] =
      benchmark::Counter(double(decisions), benchmark::Counter::kIsRate);
  state.counters["shards_per_s"] = benchmark::Counter(
      double(state.iterations() * tasks.size()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Replay10kShardDag)->Unit(benchmark::kMillisecond);

// The plan of one workflow (plan.h) as the engine makes it at submission: N shards in
// layers of up to 50, each layer needing the one before, on 64 cores.
void BM_PlanWorkflow(benchmark::State& state) {
  std::mt19937 rng(5);
  std::vector<ReplayTask> tasks(size_t(state.range(0)));
  for (int i = 0; i < int(tasks.size()); ++i) {
    ReplayTask& t = tasks[i];
    const int layer = i / 50;
    for (int k = 0; k < 2 && layer > 0; ++k) {
      const int p = (layer - 1) * 50 + int(rng() % 50);
      if (std::find(t.preds.begin(), t.preds.end(), p) == t.preds.end()) t.preds.push_back(p);
    }
    t.actual_s = t.predicted_s = 1 + rng() % 30;
    t.want = {double(1 + rng() % 4), (1 + rng() % 8) * kGi / 2};
    t.min = t.want;
  }
  PlanOptions o;
  o.capacity = {64, 256 * kGi};
  o.max_tasks = tasks.size();
  for (auto _ : state) {
    auto p = PlanWorkflow(tasks, o);
    if (!p) state.SkipWithError(p.error().message().c_str());
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_PlanWorkflow)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace augur::workflow

BENCHMARK_MAIN();
