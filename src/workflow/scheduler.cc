#include "workflow/scheduler.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

namespace augur::workflow {
namespace {

constexpr double kNsPerSecond = 1e9;
// Below this remaining path, slack is judged against a minute: a short path with a minute
// to spare is not urgent.
constexpr double kMinUrgencyScaleS = 60;

double Fraction(double have, double want) { return want > 0 ? std::min(1.0, have / want) : 1.0; }

// Where room comes from for new grants: the ledger's free capacity, less what the forecast
// says the host's other load will take. Returned as what to keep out of the ledger's reach.
Resources ForecastReserve(const Ledger& ledger, const HostView& host) {
  if (!host.predicted_free) return {};
  const Resources free = ledger.Free();
  const Resources forecast_room = *host.predicted_free - ledger.Granted();
  return free - Resources::Min(free, forecast_room);
}

std::string Describe(const Resources& r) { return r.ToString(); }

// When enough of the running grants are predicted to end for `need` to fit in `room`.
// INT64_MAX when they never do.
int64_t ShadowTime(const Ledger& ledger, const HostView& host, Resources room,
                   const Resources& need) {
  std::vector<RunningShard> running = host.running;
  std::sort(running.begin(), running.end(), [](const RunningShard& a, const RunningShard& b) {
    return a.predicted_end_ns < b.predicted_end_ns;
  });
  for (const RunningShard& r : running) {
    if (need.FitsIn(room)) break;
    if (const Grant* g = ledger.Find(r.key)) {
      room += g->granted;
      if (need.FitsIn(room)) return r.predicted_end_ns;
    }
  }
  return need.FitsIn(room) ? 0 : INT64_MAX;
}

}  // namespace

ScoreParts ScoreShard(const PendingShard& shard, const Resources& room, int64_t now_ns,
                      const SchedulerOptions& o) {
  ScoreParts p;
  p.priority = shard.priority;
  p.boost = shard.boost;
  const int64_t due = shard.deadline_ns != 0 ? shard.deadline_ns : shard.ideal_finish_ns;
  if (due != 0) {
    p.slack_s = double(due - now_ns) / kNsPerSecond - shard.remaining_path_s;
    const double scale = std::max(shard.remaining_path_s, kMinUrgencyScaleS);
    p.urgency = o.urgency_weight * std::clamp(1.0 - p.slack_s / scale, 0.0, 1.0);
  }
  const double waited_s = double(std::max<int64_t>(0, now_ns - shard.ready_ns)) / kNsPerSecond;
  p.aging = o.aging_per_minute * std::max(0.0, waited_s - o.aging_after_s) / 60.0;
  p.fit = o.fit_weight * std::min(Fraction(room.cpu, shard.want.cpu),
                                  Fraction(double(room.memory), double(shard.want.memory)));
  p.predicted_cost = shard.cost_per_hour * shard.predicted_s / 3600.0;
  if (std::isfinite(shard.budget_left) && p.predicted_cost > 0) {
    p.cost = o.cost_weight *
             (shard.budget_left > 0 ? std::min(1.0, p.predicted_cost / shard.budget_left) : 1.0);
  }
  p.total = p.priority + p.boost + p.urgency + p.aging + p.fit - p.cost;
  return p;
}

ScheduleResult Schedule(const std::vector<PendingShard>& pending, Ledger& ledger,
                        const HostView& host, int64_t now_ns, const SchedulerOptions& o) {
  ScheduleResult out;
  const Resources forecast_reserve = ForecastReserve(ledger, host);
  const Resources room0 = ledger.Free() - forecast_reserve;

  struct Scored {
    const PendingShard* shard;
    ScoreParts score;
  };
  std::vector<Scored> order;
  order.reserve(pending.size());
  for (const PendingShard& s : pending) order.push_back({&s, ScoreShard(s, room0, now_ns, o)});
  std::sort(order.begin(), order.end(), [](const Scored& a, const Scored& b) {
    if (a.score.total != b.score.total) return a.score.total > b.score.total;
    if (a.score.slack_s != b.score.slack_s) return a.score.slack_s < b.score.slack_s;
    if (a.shard->ready_ns != b.shard->ready_ns) return a.shard->ready_ns < b.shard->ready_ns;
    if (a.shard->seq != b.shard->seq) return a.shard->seq < b.shard->seq;
    return a.shard->key < b.shard->key;
  });

  std::map<std::string, double> spent;  // per group, by the starts of this call
  Resources blocked_reserve;
  int64_t shadow_ns = INT64_MAX;
  for (const Scored& sc : order) {
    const PendingShard& s = *sc.shard;
    auto wait = [&](std::string reason) {
      out.waiting.push_back({s.key, sc.score, std::move(reason)});
    };
    if (o.max_starts != 0 && out.starts.size() >= o.max_starts) {
      wait("this round's batch of starts is full");
      continue;
    }
    const double left = s.budget_left - spent[s.group];
    if (std::isfinite(s.budget_left) && sc.score.predicted_cost > left + 1e-12) {
      wait(fmt::format("predicted cost {:.4f} is over the {:.4f} left of the budget",
                       sc.score.predicted_cost, std::max(0.0, left)));
      continue;
    }
    const ReservationRequest req{s.key, s.want, s.min, sc.score.total};
    auto plan = ledger.PlanAdmit(req, forecast_reserve + blocked_reserve);
    if (!plan) {
      wait(plan.error().message());
      continue;
    }
    // EASY backfill: a shard that ends before the blocked one could start may use its room.
    if (!*plan && !out.reserved_for.empty() && now_ns + int64_t(s.predicted_s * kNsPerSecond) <=
                                                   shadow_ns) {
      plan = ledger.PlanAdmit(req, forecast_reserve);
      if (!plan) {
        wait(plan.error().message());
        continue;
      }
    }
    if (!*plan) {
      const Resources room = ledger.Free() - forecast_reserve - blocked_reserve;
      std::string reason = fmt::format("needs at least {}; {} free for it", Describe(s.min),
                                       Describe(room));
      if (!out.reserved_for.empty()) reason += " (room is held for " + out.reserved_for + ")";
      wait(std::move(reason));
      if (o.reserve_for_blocked && out.reserved_for.empty() && s.min.FitsIn(ledger.capacity())) {
        out.reserved_for = s.key;
        const Resources free_now = ledger.Free() - forecast_reserve;
        blocked_reserve = Resources::Min(s.min, free_now);
        shadow_ns = ShadowTime(ledger, host, free_now, s.min);
      }
      continue;
    }
    if (Status st = ledger.ApplyAdmission(req, **plan); !st.ok()) {
      wait(st.message());
      continue;
    }
    spent[s.group] += sc.score.predicted_cost;
    out.starts.push_back({s.key, (*plan)->grant, sc.score, (*plan)->changes});
  }

  out.grow_back = ledger.PlanGrowBack(forecast_reserve + blocked_reserve);
  for (const GrantChange& c : out.grow_back) {
    // Planned from the ledger itself a moment ago; it cannot fail.
    (void)ledger.ApplyChange(c);
  }
  return out;
}

}  // namespace augur::workflow
