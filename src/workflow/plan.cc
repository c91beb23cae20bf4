#include "workflow/plan.h"

#include <cmath>
#include <random>
#include <utility>

#include "workflow/dag.h"

namespace augur::workflow {

Result<std::optional<WorkflowPlan>> PlanWorkflow(std::vector<ReplayTask> tasks,
                                                 const PlanOptions& o) {
  const size_t n = tasks.size();
  if (n == 0 || n > o.max_tasks) return std::optional<WorkflowPlan>();
  std::vector<std::vector<int>> preds(n);
  std::vector<double> predicted(n);
  for (size_t i = 0; i < n; ++i) {
    ReplayTask& t = tasks[i];
    t.actual_s = t.predicted_s;
    t.submit_s = 0;
    t.deadline_s = 0;
    t.workflow = 0;
    preds[i] = t.preds;
    predicted[i] = t.predicted_s;
  }
  auto dag = Dag::FromPredecessors(std::move(preds));
  if (!dag) return Err(dag.error());
  const CriticalPath cp = ComputeCriticalPath(*dag, predicted);

  ReplayOptions base;
  base.capacity = o.capacity;
  base.scheduler = o.scheduler;
  base.ledger = o.ledger;
  base.plan = false;
  auto starts = [](const ReplayResult& r) {
    std::vector<double> s(r.tasks.size());
    for (size_t i = 0; i < s.size(); ++i) s[i] = r.tasks[i].start_s;
    return s;
  };
  // The scheduler follows an order (empty: none, least slack alone) in a replay with the
  // predicted durations; the order whose replay ends first is kept.
  std::optional<WorkflowPlan> best;
  std::vector<double> best_starts;
  auto attempt = [&](std::string name, std::vector<double> order) -> Status {
    ReplayOptions ro = base;
    ro.given_plan_order = order;
    auto r = Replay(tasks, ro);
    if (!r) return r.error();
    if (!best || r->makespan_s < best->makespan_s - 1e-9 * best->makespan_s) {
      best = WorkflowPlan{std::move(order), r->makespan_s, std::move(name)};
      best_starts = starts(*r);
    }
    return Status::OK();
  };
  {
    std::vector<double> rank(n), fifo(n);
    for (size_t i = 0; i < n; ++i) {
      rank[i] = -cp.remaining_s[i];
      fifo[i] = double(i);
    }
    for (auto& [name, order] :
         {std::pair{"least slack", std::vector<double>()}, std::pair{"upward rank", rank},
          std::pair{"submission order", fifo}}) {
      if (Status s = attempt(name, order); !s.ok()) return Err(s);
    }
  }
  // Refinement: follow the chosen order's own start times, and small changes to the order
  // (a task swapped with, or moved next to, another), keeping what ends no later.
  for (int i = 0; i < o.refinements && !best->order.empty(); ++i) {
    const double before = best->makespan_s;
    if (Status s = attempt(best->chosen + ", refined", best_starts); !s.ok()) return Err(s);
    if (best->makespan_s >= before) break;
  }
  if (o.search_steps <= 0) return best;
  // The search walks from the chosen order (the scheduler alone: its replay's start times),
  // keeping any step that ends no later than where it stands.
  std::vector<double> cur = best->order.empty() ? best_starts : best->order;
  double cur_makespan = best->makespan_s;
  if (best->order.empty()) {
    ReplayOptions ro = base;
    ro.given_plan_order = cur;
    auto r = Replay(tasks, ro);
    if (!r) return Err(r.error());
    cur_makespan = r->makespan_s;
  }
  const std::string searched = best->chosen + ", searched";
  std::mt19937 rng{static_cast<uint32_t>(n)};
  for (int k = 0; k < o.search_steps; ++k) {
    std::vector<double> order = cur;
    const size_t a = rng() % n, b = rng() % n;
    if (rng() % 2) {
      std::swap(order[a], order[b]);
    } else {
      order[a] = order[b] + (rng() % 2 ? 1e-6 : -1e-6) * (1 + std::abs(order[b]));
    }
    ReplayOptions ro = base;
    ro.given_plan_order = order;
    auto r = Replay(tasks, ro);
    if (!r) return Err(r.error());
    if (r->makespan_s > cur_makespan) continue;
    cur = std::move(order);
    cur_makespan = r->makespan_s;
    if (cur_makespan < best->makespan_s - 1e-9 * best->makespan_s) {
      best = WorkflowPlan{cur, cur_makespan, searched};
    }
  }
  return best;
}

}  // namespace augur::workflow
