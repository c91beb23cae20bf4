#include "workflow/prewarm.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "workflow/workflow_spec.h"

namespace augur::workflow {
namespace {

// One predicted shard: what a warm instance is matched to.
struct Unit {
  const UpcomingStart* p = nullptr;
  bool due = false;
};

// A total order on predictions, so that the plan does not depend on the input's order.
auto PredictionOrder(const UpcomingStart& a) {
  return std::tuple(a.Key(), a.backend, a.shape.memory, a.shape.cpu, a.at_ns, a.count);
}

}  // namespace

std::string UpcomingStart::Key() const {
  return workflow_id.empty() ? "name:" + workflow_name + "/" + stage : workflow_id + "/" + stage;
}

std::string_view ReleaseWhyName(ReleaseOrder::Why w) {
  switch (w) {
    case ReleaseOrder::Why::kIdle:
      return "idle";
    case ReleaseOrder::Why::kUnpredicted:
      return "unpredicted";
    case ReleaseOrder::Why::kOverCap:
      return "over cap";
  }
  return "?";
}

PrewarmPlan PlanPrewarm(std::span<const UpcomingStart> upcoming, std::span<const WarmInstance> pool,
                        int64_t now, const PrewarmOptions& o) {
  PrewarmPlan plan;
  // Live predictions, in a canonical order.
  std::vector<const UpcomingStart*> live;
  for (const UpcomingStart& u : upcoming) {
    if (u.count > 0 && now <= u.at_ns + o.idle_timeout_ns) live.push_back(&u);
  }
  std::sort(live.begin(), live.end(), [](const UpcomingStart* a, const UpcomingStart* b) {
    return PredictionOrder(*a) < PredictionOrder(*b);
  });
  std::vector<Unit> units;
  for (const UpcomingStart* p : live) {
    const bool due = now >= p->at_ns - o.lead_ns;
    if (due) plan.due.push_back(p->Key());
    // No more of one prediction can ever be warm at once.
    const uint32_t n = std::min(p->count, o.max_total);
    for (uint32_t k = 0; k < n; ++k) units.push_back({p, due});
  }
  std::sort(plan.due.begin(), plan.due.end());
  plan.due.erase(std::unique(plan.due.begin(), plan.due.end()), plan.due.end());
  // Due first; larger shapes first (each takes the smallest instance that holds it, so the
  // large ones are served before the small ones use up the large instances); then sooner.
  std::stable_sort(units.begin(), units.end(), [](const Unit& a, const Unit& b) {
    return std::tuple(!a.due, b.p->shape.memory, b.p->shape.cpu, a.p->at_ns) <
           std::tuple(!b.due, a.p->shape.memory, a.p->shape.cpu, b.p->at_ns);
  });

  // The pool, smallest first within a backend.
  std::vector<const WarmInstance*> inst;
  for (const WarmInstance& w : pool) inst.push_back(&w);
  std::sort(inst.begin(), inst.end(), [](const WarmInstance* a, const WarmInstance* b) {
    return std::tuple(a->backend, a->shape.memory, a->shape.cpu, a->name) <
           std::tuple(b->backend, b->shape.memory, b->shape.cpu, b->name);
  });
  const size_t n = inst.size();
  std::vector<bool> released(n, false);
  std::vector<long> matched(n, -1);  // the unit an instance is kept for
  for (size_t i = 0; i < n; ++i) {
    if (!inst[i]->probing && now - inst[i]->since_ns >= o.idle_timeout_ns) {
      released[i] = true;
      plan.release.push_back({inst[i]->name, ReleaseOrder::Why::kIdle});
    }
  }
  std::vector<const Unit*> to_warm;
  for (size_t k = 0; k < units.size(); ++k) {
    const Unit& u = units[k];
    bool found = false;
    for (size_t i = 0; i < n && !found; ++i) {
      if (released[i] || matched[i] >= 0 || inst[i]->backend != u.p->backend ||
          !u.p->shape.FitsIn(inst[i]->shape)) {
        continue;
      }
      matched[i] = long(k);
      found = true;
    }
    if (!found && u.due) to_warm.push_back(&u);
  }
  std::map<std::string, uint32_t> per_backend;
  uint32_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (released[i]) continue;
    if (matched[i] < 0) {
      released[i] = true;
      plan.release.push_back({inst[i]->name, ReleaseOrder::Why::kUnpredicted});
      continue;
    }
    ++per_backend[inst[i]->backend];
    ++total;
  }
  // A pool over a cap (the caps were lowered, or a restore found more) gives up the
  // instances kept for the least pressing units first.
  for (;;) {
    long worst = -1;
    for (size_t i = 0; i < n; ++i) {
      if (released[i]) continue;
      const bool over = total > o.max_total || per_backend[inst[i]->backend] > o.max_per_backend;
      if (over && (worst < 0 || matched[i] > matched[size_t(worst)])) worst = long(i);
    }
    if (worst < 0) break;
    released[size_t(worst)] = true;
    --per_backend[inst[size_t(worst)]->backend];
    --total;
    plan.release.push_back({inst[size_t(worst)]->name, ReleaseOrder::Why::kOverCap});
  }
  std::sort(plan.release.begin(), plan.release.end(),
            [](const ReleaseOrder& a, const ReleaseOrder& b) { return a.name < b.name; });

  // What is due and has no instance, as far as the caps allow.
  std::map<std::pair<std::string, std::string>, size_t> order_of;  // (backend, shape) -> index
  std::vector<std::set<std::string>> keys;
  std::vector<int64_t> first_at;
  for (const Unit* u : to_warm) {
    if (total >= o.max_total || per_backend[u->p->backend] >= o.max_per_backend) continue;
    ++total;
    ++per_backend[u->p->backend];
    const auto id =
        std::pair(u->p->backend, fmt::format("{}/{}", u->p->shape.cpu, u->p->shape.memory));
    auto [it, fresh] = order_of.emplace(id, plan.warm.size());
    if (fresh) {
      plan.warm.push_back({u->p->backend, u->p->shape, 0, ""});
      keys.emplace_back();
      first_at.push_back(u->p->at_ns);
    }
    WarmOrder& w = plan.warm[it->second];
    ++w.count;
    keys[it->second].insert(u->p->Key());
    first_at[it->second] = std::min(first_at[it->second], u->p->at_ns);
  }
  for (size_t k = 0; k < plan.warm.size(); ++k) {
    std::string who;
    size_t shown = 0;
    for (const std::string& key : keys[k]) {
      if (shown++ == 3) {
        who += fmt::format(" and {} more", keys[k].size() - 3);
        break;
      }
      who += (who.empty() ? "" : ", ") + key;
    }
    plan.warm[k].reason = fmt::format("for {}, predicted to start in {:.1f}s", who,
                                      double(std::max<int64_t>(0, first_at[k] - now)) / 1e9);
  }
  return plan;
}

Resources PredictedShape(const StageSpec& stage, const Resources& capacity) {
  Resources r = stage.want;
  if (capacity.cpu > 0) r.cpu = std::min(r.cpu, capacity.cpu);
  if (capacity.memory > 0) r.memory = std::min(r.memory, capacity.memory);
  return r;
}

uint32_t PredictedShardCount(const StageSpec& stage) {
  switch (stage.shards.kind) {
    case ShardsSpec::Kind::kSingle:
      return 1;
    case ShardsSpec::Kind::kRange:
      return std::max<uint32_t>(1, stage.shards.count);
    case ShardsSpec::Kind::kItems:
      return stage.shards.count != 0 ? stage.shards.count
                                     : std::max<uint32_t>(1, uint32_t(stage.shards.items.size()));
  }
  return 1;
}

std::vector<UpcomingStart> RootStarts(const WorkflowSpec& spec, const Resources& capacity,
                                      int64_t at_ns) {
  std::vector<UpcomingStart> out;
  for (const StageSpec& st : spec.stages) {
    if (!st.needs.empty()) continue;
    UpcomingStart u;
    u.backend = st.backend;
    u.shape = PredictedShape(st, capacity);
    u.count = PredictedShardCount(st);
    u.at_ns = at_ns;
    u.workflow_name = spec.name;
    u.stage = st.name;
    out.push_back(std::move(u));
  }
  return out;
}

std::vector<UpcomingStart> DemandStarts(std::vector<UpcomingStart> roots, double per_hour,
                                        const std::function<double(const std::string&)>& shard_s,
                                        double min_per_hour) {
  if (!(per_hour >= min_per_hour) || !(per_hour > 0)) return {};
  for (UpcomingStart& u : roots) {
    const double in_flight = per_hour / 3600.0 * std::max(0.0, shard_s(u.stage)) * u.count;
    const double most = std::ceil(per_hour) * u.count;
    u.count = static_cast<uint32_t>(std::clamp(std::ceil(in_flight), 1.0, std::max(1.0, most)));
  }
  return roots;
}

// ---- Across workflows -------------------------------------------------------------------

namespace {

// Submission times by name, sorted, only those at or before `now`.
std::map<std::string, std::vector<int64_t>> ByName(std::span<const Submission> history,
                                                   int64_t now) {
  std::map<std::string, std::vector<int64_t>> by;
  for (const Submission& s : history) {
    if (s.at_ns <= now) by[s.name].push_back(s.at_ns);
  }
  for (auto& [name, v] : by) std::sort(v.begin(), v.end());
  return by;
}

// The first time in `sorted` after `t`, if it is within `window`.
std::optional<int64_t> FirstWithin(const std::vector<int64_t>& sorted, int64_t t, int64_t window) {
  auto it = std::upper_bound(sorted.begin(), sorted.end(), t);
  if (it == sorted.end() || *it > t + window) return std::nullopt;
  return *it;
}

std::vector<FollowPair> Learn(const std::map<std::string, std::vector<int64_t>>& by, int64_t now,
                              const FollowOptions& o) {
  std::vector<FollowPair> out;
  for (const auto& [a, times] : by) {
    // A's last `last` submissions whose window has closed.
    std::vector<int64_t> judged;
    for (auto it = times.rbegin(); it != times.rend() && judged.size() < o.last; ++it) {
      if (*it + o.window_ns <= now) judged.push_back(*it);
    }
    if (judged.size() < std::max<uint32_t>(1, o.min_support)) continue;
    for (const auto& [b, btimes] : by) {
      std::vector<int64_t> delays;
      for (int64_t t : judged) {
        if (auto f = FirstWithin(btimes, t, o.window_ns)) delays.push_back(*f - t);
      }
      if (delays.size() < std::max<uint32_t>(1, o.min_support)) continue;
      std::sort(delays.begin(), delays.end());
      out.push_back({a, b, uint32_t(delays.size()), uint32_t(judged.size()),
                     delays[(delays.size() - 1) / 2]});
    }
  }
  return out;
}

}  // namespace

std::vector<FollowPair> LearnFollows(std::span<const Submission> history, int64_t now,
                                     const FollowOptions& o) {
  return Learn(ByName(history, now), now, o);
}

std::vector<Follower> PredictFollowers(std::span<const Submission> history, int64_t now,
                                       const FollowOptions& o) {
  const auto by = ByName(history, now);
  std::map<std::string, Follower> best;
  for (const FollowPair& p : Learn(by, now, o)) {
    const int64_t t0 = by.at(p.first).back();
    if (now - t0 >= o.window_ns) continue;  // A's latest window has closed
    // B came already.
    const std::vector<int64_t>& bt = by.at(p.then);
    if (std::upper_bound(bt.begin(), bt.end(), t0) != bt.end()) continue;
    Follower f{p.then, p.first, t0 + p.delay_ns, p.support, p.judged};
    auto [it, fresh] = best.emplace(p.then, f);
    if (!fresh && std::tuple(f.at_ns, f.after) < std::tuple(it->second.at_ns, it->second.after)) {
      it->second = f;
    }
  }
  std::vector<Follower> out;
  for (auto& [name, f] : best) out.push_back(std::move(f));
  return out;
}

}  // namespace augur::workflow
