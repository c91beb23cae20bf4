#include "workflow/shard_plan.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>

#include <fmt/format.h>

namespace augur::workflow {
namespace {

// Halvings at most: 2^20 pieces from one shard is past any real host's reason.
constexpr int kMaxSplitDepth = 20;

std::vector<ShardDef> CutRange(const StageSpec& st, uint32_t count) {
  std::vector<ShardDef> out;
  const uint64_t n = st.shards.end - st.shards.begin;
  for (uint32_t i = 0; i < count; ++i) {
    ShardDef d;
    d.index = i;
    d.id = std::to_string(i);
    // Equal as integers allow: the first n % count shards get one more.
    d.begin = st.shards.begin + n / count * i + std::min<uint64_t>(i, n % count);
    d.end = d.begin + n / count + (i < n % count ? 1 : 0);
    d.want = st.want;
    d.min = st.min;
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<ShardDef> CutItems(const StageSpec& st, uint32_t count) {
  std::vector<ShardDef> out;
  const size_t n = st.shards.items.size();
  count = std::max<uint32_t>(1, std::min<uint32_t>(count, static_cast<uint32_t>(n)));
  for (uint32_t i = 0; i < count; ++i) {
    ShardDef d;
    d.index = i;
    d.id = std::to_string(i);
    const size_t first = n / count * i + std::min<size_t>(i, n % count);
    const size_t len = n / count + (i < n % count ? 1 : 0);
    d.items.assign(st.shards.items.begin() + first, st.shards.items.begin() + first + len);
    d.want = st.want;
    d.min = st.min;
    out.push_back(std::move(d));
  }
  return out;
}

// How many shards of `want` fit at once in `free` (at least one: a shard that does not fit
// waits, which the scheduler handles).
uint32_t Parallel(const Resources& want, const Resources& free, uint32_t count) {
  double p = count;
  if (want.cpu > 0) p = std::min(p, std::floor(free.cpu / want.cpu + 1e-9));
  if (want.memory > 0) p = std::min(p, std::floor(double(free.memory) / double(want.memory)));
  return static_cast<uint32_t>(std::max(1.0, p));
}

}  // namespace

bool SplitShard(const ShardDef& shard, ShardDef* first, ShardDef* second) {
  double share = 0.5;
  *first = shard;
  *second = shard;
  if (!shard.items.empty()) {
    if (shard.items.size() < 2) return false;
    const size_t half = (shard.items.size() + 1) / 2;
    first->items.assign(shard.items.begin(), shard.items.begin() + half);
    second->items.assign(shard.items.begin() + half, shard.items.end());
    share = double(half) / double(shard.items.size());
  } else if (shard.end > shard.begin) {
    const uint64_t n = shard.end - shard.begin;
    if (n < 2) return false;
    const uint64_t half = (n + 1) / 2;
    first->end = shard.begin + half;
    second->begin = first->end;
    share = double(half) / double(n);
  } else {
    return false;
  }
  first->id = shard.id + ".0";
  second->id = shard.id + ".1";
  first->want = shard.want.Scaled(share);
  first->min = shard.min.Scaled(share);
  second->want = shard.want.Scaled(1 - share);
  second->min = shard.min.Scaled(1 - share);
  return true;
}

Result<ShardPlan> PlanShards(const StageSpec& st, const PlanInput& in) {
  ShardPlan plan;
  const ShardsSpec& sh = st.shards;
  std::vector<ShardDef> cut;
  switch (sh.kind) {
    case ShardsSpec::Kind::kSingle: {
      ShardDef d;
      d.id = "0";
      d.want = st.want;
      d.min = st.min;
      cut.push_back(std::move(d));
      break;
    }
    case ShardsSpec::Kind::kItems:
      cut = CutItems(st, sh.count == 0 ? static_cast<uint32_t>(sh.items.size())
                                       : std::min<uint32_t>(sh.count, sh.items.size()));
      break;
    case ShardsSpec::Kind::kRange: {
      uint32_t count = sh.count;
      if (count == 0) {
        // count: auto. Completion ~ waves x (start-up + work per shard), where a wave is as
        // many shards as fit at once; cost ~ k x (start-up + work per shard) at the shard's
        // rate. The fastest candidate within the budget wins (the cheapest when none is);
        // ties go to fewer shards (less start-up, less merging).
        const uint64_t units = sh.end - sh.begin;
        const uint32_t max = static_cast<uint32_t>(
            std::min<uint64_t>(units, sh.max != 0 ? sh.max : in.default_max));
        for (uint32_t k = 1; k <= std::max<uint32_t>(1, max); ++k) {
          const uint32_t p = Parallel(st.want, in.free, k);
          const double waves = std::ceil(double(k) / p);
          const double per_shard = in.startup_s + in.whole_stage_s / k;
          const double cost = in.cost_per_hour * k * per_shard / 3600.0;
          plan.candidates.push_back({k, p, waves * per_shard, cost, cost > in.budget_left + 1e-12});
        }
        const bool any_fits = std::any_of(plan.candidates.begin(), plan.candidates.end(),
                                          [](const CountCandidate& c) { return !c.over_budget; });
        const CountCandidate* best = nullptr;
        for (const CountCandidate& c : plan.candidates) {
          if (any_fits && c.over_budget) continue;
          const bool better = best == nullptr ||
                              (any_fits ? c.predicted_s < best->predicted_s - 1e-12
                                        : c.predicted_cost < best->predicted_cost - 1e-12);
          if (better) best = &c;
        }
        count = best->count;
        plan.note = fmt::format("count: auto chose {} of {} candidates (predicted {:.1f}s{}{})",
                                count, plan.candidates.size(), best->predicted_s,
                                in.cost_per_hour > 0
                                    ? fmt::format(", cost {:.4f}", best->predicted_cost)
                                    : "",
                                any_fits ? "" : "; none fits the budget: the cheapest");
      }
      cut = CutRange(st, count);
      break;
    }
  }

  // Split what cannot fit even alone, keeping order.
  std::vector<ShardDef> fitted;
  for (ShardDef& d : cut) {
    std::deque<std::pair<ShardDef, int>> work = {{std::move(d), 0}};
    while (!work.empty()) {
      auto [s, depth] = std::move(work.front());
      work.pop_front();
      if (s.min.FitsIn(in.capacity)) {
        fitted.push_back(std::move(s));
        continue;
      }
      ShardDef a, b;
      if (!sh.split_to_fit || depth >= kMaxSplitDepth || !SplitShard(s, &a, &b)) {
        return Err(Status::InvalidArgument(fmt::format(
            "stage {}: shard {} needs at least {}, more than the {} its backend can grant{}",
            st.name, s.id, s.min.ToString(), in.capacity.ToString(),
            sh.split_to_fit ? " (and it cannot be split further)" : " (split: false)")));
      }
      ++plan.splits;
      work.push_front({std::move(b), depth + 1});
      work.push_front({std::move(a), depth + 1});
    }
  }
  for (size_t i = 0; i < fitted.size(); ++i) fitted[i].index = static_cast<uint32_t>(i);
  if (plan.splits > 0) {
    plan.note += fmt::format("{}split {} times to fit {}", plan.note.empty() ? "" : "; ",
                             plan.splits, in.capacity.ToString());
  }
  plan.shards = std::move(fitted);
  return plan;
}

}  // namespace augur::workflow
