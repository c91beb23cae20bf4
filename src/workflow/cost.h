// Cost: what a grant costs per hour on a backend's cost class, and which class a shard uses.
//
// Backends report their cost classes through describe() (plugin.h augur_cost: a class name,
// a price per core-hour and per GiB-hour, whether instances of the class may be taken away);
// the executor hands them to the engine. A workflow's `budget:` is in the same unit. A
// backend that reports no class is free (cost 0), as the process backend is by default.
//
// The engine charges an attempt for the grant it holds over the time it holds it (a shrunk
// grant costs less from the moment it shrinks), and the scheduler weighs a shard's
// predicted cost against what is left of its workflow's budget (scheduler.h).
//
// Pure: functions of their arguments. Thread safety: value types.
#ifndef AUGUR_WORKFLOW_COST_H_
#define AUGUR_WORKFLOW_COST_H_

#include <optional>
#include <string>
#include <vector>

#include "workflow/resources.h"

namespace augur::workflow {

struct CostClass {
  std::string name;          // "local", "on-demand", "spot", ...
  double per_core_hour = 0;  // in the operator's unit
  double per_gib_hour = 0;
  bool preemptible = false;  // instances may be taken away (spot)
  friend bool operator==(const CostClass&, const CostClass&) = default;
};

// What `r` costs per hour on class `c`.
double CostPerHour(const CostClass& c, const Resources& r);

// The class a shard uses when nothing else decides: the cheapest class that cannot be taken
// away, else the cheapest of all; nullopt when the backend reports none (free).
std::optional<CostClass> DefaultClass(const std::vector<CostClass>& classes);

// Placement among a backend's classes (seed 004: "the most cost-effective resource types,
// e.g. spot instances, based on predicted execution duration and budget constraints"):
//   1. the cheapest class whose predicted cost (its rate for `want` times predicted_s) fits
//      `budget_left` and which meets the deadline: a class that may be taken away meets it
//      only when the shard's slack could absorb losing it and running again
//      (slack_s >= predicted_s); one that cannot be taken away always does;
//   2. else the cheapest class that fits the budget (the deadline is lost either way);
//   3. else the cheapest class (the scheduler then holds the shard back for its budget).
// Classes that may be taken away are skipped when `avoid_preemptible` (the shard was already
// taken away once). nullopt when the backend reports no class (free).
struct ClassChoice {
  CostClass cls;
  double cost_per_hour = 0;  // of `want`
  std::string why;           // for --explain and the log
};
std::optional<ClassChoice> ChooseClass(const std::vector<CostClass>& classes,
                                       const Resources& want, double predicted_s,
                                       double slack_s, double budget_left,
                                       bool avoid_preemptible);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_COST_H_
