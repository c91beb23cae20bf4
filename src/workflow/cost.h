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

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_COST_H_
