#include "workflow/cost.h"

#include <tuple>

namespace augur::workflow {

double CostPerHour(const CostClass& c, const Resources& r) {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  return c.per_core_hour * r.cpu + c.per_gib_hour * double(r.memory) / kGiB;
}

std::optional<CostClass> DefaultClass(const std::vector<CostClass>& classes) {
  const CostClass* best = nullptr;
  // Cheapest for a reference shard of one core and one GiB; on-demand before spot.
  auto key = [](const CostClass& c) {
    return std::make_tuple(c.preemptible, c.per_core_hour + c.per_gib_hour, c.name);
  };
  for (const CostClass& c : classes) {
    if (best == nullptr || key(c) < key(*best)) best = &c;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

}  // namespace augur::workflow
