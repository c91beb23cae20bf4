// Replay: the decision core run in virtual time against a simulated executor.
//
// A set of tasks (a DAG with each task's actual and predicted run time and its soft
// reservation) is replayed on a host of fixed capacity: at every event (a start, an end) the
// chosen policy decides what starts, and tasks run at the rate their grant allows (a task
// granted half the CPU it wants runs at half speed, so shrinking a grant stretches it). No
// threads, no sleeping: a 10,000-task DAG replays in milliseconds, the same way every time.
//
// Policies, all through the same harness and Ledger:
//   kAugur      Schedule() (scheduler.h): scores, soft reservations, reservation for the
//               blocked, EASY backfill; each workflow planned when it arrives (plan.h), as
//               the engine does
//   kFifo       ready tasks in submission order, each started when its want fits
//   kUpwardRank ready tasks by HEFT's upward rank (critical path to the end), greedy
// The benchmark compares them with a lower bound (makespan_bound.h), and the property tests
// check the invariants on every decision.
//
// Thread safety: functions of their arguments.
#ifndef AUGUR_WORKFLOW_REPLAY_H_
#define AUGUR_WORKFLOW_REPLAY_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/resources.h"
#include "workflow/scheduler.h"

namespace augur::workflow {

struct ReplayTask {
  std::vector<int> preds;  // tasks this one waits for
  double actual_s = 1;     // how long it really runs at its full want
  double predicted_s = 1;  // what the scheduler is told
  Resources want;
  Resources min;
  int priority = 5;
  int workflow = 0;           // tasks of one workflow share a deadline
  double submit_s = 0;        // when its workflow arrives (virtual seconds)
  double deadline_s = 0;      // absolute; 0: none
};

enum class ReplayPolicy { kAugur, kFifo, kUpwardRank };
std::string_view ReplayPolicyName(ReplayPolicy p);

struct ReplayOptions {
  Resources capacity{16, 64ULL << 30};
  ReplayPolicy policy = ReplayPolicy::kAugur;
  SchedulerOptions scheduler;
  LedgerOptions ledger;
  // kAugur: plan each workflow when it arrives (plan.h), as the engine does, and let the
  // scheduler follow the plan. Off: the scheduler alone.
  bool plan = true;
  size_t plan_max_tasks = 2000;
  int plan_refinements = 0;  // PlanOptions::refinements and search_steps
  int plan_search_steps = 0;
  // kAugur: this plan instead (each task's place in it, smaller first, as one workflow);
  // for PlanWorkflow's own replays. Empty: as `plan` says.
  std::vector<double> given_plan_order;
};

struct ReplayTaskResult {
  double start_s = -1;
  double end_s = -1;
  Resources first_grant;
};

struct ReplayResult {
  double makespan_s = 0;
  double critical_path_s = 0;  // with actual durations
  double work_bound_s = 0;     // total want.cpu x actual_s / capacity.cpu (min.memory alike)
  double lower_bound_s = 0;    // max of the two
  uint64_t decisions = 0;      // scheduler calls
  uint64_t grant_changes = 0;  // shrinks, grows and pre-emptions applied
  std::string plan;            // which plan each workflow followed ("" without plans)
  std::vector<ReplayTaskResult> tasks;
};

// Called after every scheduling round with the ledger and the time, for property tests
// (e.g. "grants within [min, want] and within capacity").
using ReplayObserver = std::function<void(double now_s, const Ledger& ledger)>;

// InvalidArgument for a cyclic or malformed DAG, a task whose min does not fit the capacity
// (it could never run), or a given plan of the wrong size; Internal if the scheduler undid a
// start in the round that made it.
Result<ReplayResult> Replay(const std::vector<ReplayTask>& tasks, const ReplayOptions& options,
                            const ReplayObserver& observer = nullptr);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_REPLAY_H_
