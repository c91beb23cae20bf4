// Plan: when each shard of one workflow should start, decided when it is submitted, so that
// the scheduler can follow a good order instead of discovering one shard at a time.
//
// The workflow's DAG is replayed (replay.h) with its predicted durations on the host as if
// it were alone, through the cheap list schedules (submission order, upward rank) and the
// scheduler itself without a plan; each of their start times is then tried as the plan the
// scheduler follows (PendingShard::planned_start_ns: a workflow without a deadline measures
// slack against it, so a shard behind its planned start is urgent), and the plan whose
// replay ends first is kept, then refined by following its own result. The scheduler keeps
// every other rule (priorities, deadlines, aging, reservations); the plan only orders a
// workflow's own shards. With exact predictions the replay of the chosen plan is what the
// scheduler does when the workflow has the host to itself, so it is never worse than the
// best candidate; with wrong predictions it is an order, no more.
//
// Cost: a few replays of the workflow, O(rounds x tasks) each: meant for up to a few
// thousand tasks (PlanOptions::max_tasks); larger workflows get no plan.
// Errors: those of Replay (a cyclic DAG, a task that cannot fit). Thread safety: a function
// of its arguments.
#ifndef AUGUR_WORKFLOW_PLAN_H_
#define AUGUR_WORKFLOW_PLAN_H_

#include <optional>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/ledger.h"
#include "workflow/replay.h"
#include "workflow/scheduler.h"

namespace augur::workflow {

struct PlanOptions {
  Resources capacity;
  SchedulerOptions scheduler;
  LedgerOptions ledger;
  size_t max_tasks = 2000;  // above this, no plan (nullopt)
  // Refinements of the chosen order, each kept only if its replay ends no later: following
  // its own replay's start times (at most `refinements` times), and `search_steps` random
  // swaps (a local search). Both trust the predictions: with exact ones they shorten the
  // plan, with ±30 % errors they overfit it (bench/RESULTS.md), hence off by default.
  int refinements = 0;
  int search_steps = 0;
};

struct WorkflowPlan {
  // Per task: its place in the plan, smaller first. Empty: the scheduler alone (least slack
  // to the critical path) did best; follow no plan.
  std::vector<double> order;
  double makespan_s = 0;  // of its replay with predicted durations
  std::string chosen;     // the candidate it came from, for logs and benchmarks
};

// `tasks` are one workflow's (their submit_s, deadline_s and workflow are ignored; the plan
// is made with predicted_s as if it were exact). nullopt when there are more than
// max_tasks tasks or none.
Result<std::optional<WorkflowPlan>> PlanWorkflow(std::vector<ReplayTask> tasks,
                                                 const PlanOptions& options);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_PLAN_H_
