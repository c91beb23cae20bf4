// MakespanBound: lower bounds on the makespan of a DAG of tasks on one host, for judging
// schedules (bench/workflow, the replay property tests); no schedule can finish sooner.
//
// The model is replay.h's: task i needs want.cpu cores for actual_s seconds at full speed;
// granted g cores (min.cpu <= g <= want.cpu) it runs at g / want.cpu of that speed, so the
// CPU it consumes, want.cpu x actual_s, is the same however it is granted, and it cannot
// finish in less than actual_s. Once started it holds at least its min (CPU and memory)
// until it ends. It starts after all of its predecessors end and not before its submit_s.
// The host has `capacity`; grants never add up to more.
//
// Each part is valid on its own (the proofs are beside the code in makespan_bound.cc):
//   critical_path_s  the longest chain of actual_s (plus its submission offset)
//   work_s           total CPU work / cores (and min.memory x time / memory)
//   head_tail_s      work around heads and tails: every task has a head r (no schedule
//                    starts it sooner), strengthened by the work of its ancestors, and a
//                    tail q (no schedule ends less than q after it ends), strengthened by
//                    its descendants' work; then for any set S of tasks
//                    min r(S) + work(S) / cores + min q(S)
//   packing_s        when no k + 1 tasks of a set S fit side by side (by their minimums), S
//                    runs as on k machines, and one of them runs ceil(|S| / k) tasks of S
//                    one after the other
//   energetic_s      energetic reasoning (Lopez, Erschler and Esquirol; Baptiste, Le Pape
//                    and Nuijten): for a makespan T each task must run within [r, T - q];
//                    T is impossible when the part of the tasks that must fall in some
//                    window [t1, t2] exceeds what the host can give in it. The largest
//                    impossible T found by bisection.
// bound_s is the largest. The first three hold for any task; packing and energetic reasoning
// count a task's non-preemptive minimum, so tasks whose min equals their want (rigid, as in
// the WfCommons replays) are bounded tightest.
//
// Cost: O(n^2 log n) for heads and tails, O(n^3) for packing and each energetic check: for
// benchmarks and tests of up to a few thousand tasks, not for the engine's hot path.
// Errors: InvalidArgument for a cyclic or malformed DAG, or a task whose min does not fit
// the capacity. Thread safety: a function of its arguments.
#ifndef AUGUR_WORKFLOW_MAKESPAN_BOUND_H_
#define AUGUR_WORKFLOW_MAKESPAN_BOUND_H_

#include <vector>

#include "augur/status.h"
#include "workflow/replay.h"
#include "workflow/resources.h"

namespace augur::workflow {

struct MakespanBound {
  double critical_path_s = 0;
  double work_s = 0;
  double head_tail_s = 0;
  double packing_s = 0;
  double energetic_s = 0;
  double bound_s = 0;  // the largest of the above
  // max(critical path, work): the bound the first benchmarks used, for comparison.
  double simple_s() const { return critical_path_s > work_s ? critical_path_s : work_s; }
};

// Measured from the earliest submit_s, like ReplayResult::makespan_s. Only preds, actual_s,
// want, min and submit_s of the tasks count.
Result<MakespanBound> ComputeMakespanBound(const std::vector<ReplayTask>& tasks,
                                           const Resources& capacity);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_MAKESPAN_BOUND_H_
