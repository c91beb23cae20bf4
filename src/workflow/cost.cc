#include "workflow/cost.h"

#include <algorithm>
#include <tuple>

#include <fmt/format.h>

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

std::optional<ClassChoice> ChooseClass(const std::vector<CostClass>& classes,
                                       const Resources& want, double predicted_s,
                                       double slack_s, double budget_left,
                                       bool avoid_preemptible) {
  std::vector<const CostClass*> order;
  for (const CostClass& c : classes) {
    if (!(avoid_preemptible && c.preemptible)) order.push_back(&c);
  }
  if (order.empty()) {
    for (const CostClass& c : classes) order.push_back(&c);  // nothing else to run on
  }
  if (order.empty()) return std::nullopt;
  std::stable_sort(order.begin(), order.end(), [&](const CostClass* a, const CostClass* b) {
    return std::make_tuple(CostPerHour(*a, want), a->preemptible, a->name) <
           std::make_tuple(CostPerHour(*b, want), b->preemptible, b->name);
  });
  auto cost = [&](const CostClass& c) { return CostPerHour(c, want) * predicted_s / 3600.0; };
  auto pick = [&](const CostClass& c, std::string why) {
    return ClassChoice{c, CostPerHour(c, want), std::move(why)};
  };
  for (const CostClass* c : order) {
    if (cost(*c) > budget_left + 1e-12) continue;
    if (c->preemptible && !(slack_s >= predicted_s)) continue;
    return pick(*c, c->preemptible
                        ? fmt::format("{}: cheapest; the slack ({:.0f}s) absorbs losing it",
                                      c->name, slack_s)
                        : fmt::format("{}: cheapest that meets the deadline and budget", c->name));
  }
  for (const CostClass* c : order) {
    if (cost(*c) <= budget_left + 1e-12) {
      return pick(*c, fmt::format("{}: cheapest within the budget (the deadline is at risk)",
                                  c->name));
    }
  }
  return pick(*order.front(), fmt::format("{}: cheapest (over the budget)", order.front()->name));
}

}  // namespace augur::workflow
