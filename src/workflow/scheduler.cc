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
// says the host's other load will take while a shard of `run_s` seconds runs. Returned as
// what to keep out of the ledger's reach.
Resources ForecastReserve(const Ledger& ledger, const HostView& host, double run_s) {
  const std::optional<Resources> predicted = host.FreeOver(run_s);
  if (!predicted) return {};
  const Resources free = ledger.Free();
  const Resources forecast_room = *predicted - ledger.Granted();
  return free - Resources::Min(free, forecast_room);
}

std::string Describe(const Resources& r) { return r.ToString(); }

// The fit part of the score: the share of its want that fits in `room` (the bottleneck
// dimension).
double FitPart(const PendingShard& s, const Resources& room, const SchedulerOptions& o) {
  return o.fit_weight * std::min(Fraction(room.cpu, s.want.cpu),
                                 Fraction(double(room.memory), double(s.want.memory)));
}

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

// The tie-breaks after the score: least slack; then planned shards, their workflows in
// submission order and each in its plan's order; then the older ready time, submission
// order, and the key.
bool Precedes(const PendingShard& a, const ScoreParts& as, const PendingShard& b,
              const ScoreParts& bs) {
  if (as.slack_s != bs.slack_s) return as.slack_s < bs.slack_s;
  const bool pa = a.plan_order.has_value(), pb = b.plan_order.has_value();
  if (pa != pb) return pa;
  if (pa) {
    if (a.group_seq != b.group_seq) return a.group_seq < b.group_seq;
    if (a.group != b.group) return a.group < b.group;
    if (*a.plan_order != *b.plan_order) return *a.plan_order < *b.plan_order;
  }
  if (a.ready_ns != b.ready_ns) return a.ready_ns < b.ready_ns;
  if (a.seq != b.seq) return a.seq < b.seq;
  return a.key < b.key;
}

}  // namespace

ScoreParts ScoreShard(const PendingShard& shard, const Resources& room, int64_t now_ns,
                      const SchedulerOptions& o) {
  ScoreParts p;
  p.priority = shard.priority;
  p.boost = shard.boost;
  const int64_t due = shard.deadline_ns != 0 ? shard.deadline_ns
                     : shard.plan_order     ? 0
                                            : shard.ideal_finish_ns;
  if (due != 0) {
    p.slack_s = double(due - now_ns) / kNsPerSecond - shard.remaining_path_s;
    const double scale = std::max(shard.remaining_path_s, kMinUrgencyScaleS);
    p.urgency = o.urgency_weight * std::clamp(1.0 - p.slack_s / scale, 0.0, 1.0);
  }
  const int64_t waiting_since = shard.group_last_start_ns != 0
                                    ? std::max(shard.ready_ns, shard.group_last_start_ns)
                                    : shard.ready_ns;
  const double waited_s = double(std::max<int64_t>(0, now_ns - waiting_since)) / kNsPerSecond;
  p.aging = o.aging_per_minute * std::max(0.0, waited_s - o.aging_after_s) / 60.0;
  p.fit = FitPart(shard, room, o);
  p.predicted_cost = shard.cost_per_hour * shard.predicted_s / 3600.0;
  if (std::isfinite(shard.budget_left) && p.predicted_cost > 0) {
    p.cost = o.cost_weight *
             (shard.budget_left > 0 ? std::min(1.0, p.predicted_cost / shard.budget_left) : 1.0);
  }
  p.total = p.priority + p.boost + p.urgency + p.aging + p.fit - p.cost;
  return p;
}

std::optional<Resources> HostView::FreeOver(double run_s) const {
  std::optional<Resources> least;
  for (const HorizonFree& h : forecast) {
    least = least ? Resources::Min(*least, h.free) : h.free;
    if (h.ahead_s >= run_s) break;  // this one covers the shard's end
  }
  return least;
}

void HostView::Cap(const Resources& cap) {
  if (forecast.empty()) forecast.push_back({0, cap});
  for (HorizonFree& h : forecast) h.free = Resources::Min(h.free, cap);
}

ScheduleResult Schedule(const std::vector<PendingShard>& pending, Ledger& ledger,
                        const HostView& host, int64_t now_ns, const SchedulerOptions& o) {
  ScheduleResult out;
  // Scores, room and grow-back use the nearest horizon; each admission uses the horizons
  // over the shard's own predicted run time.
  const Resources forecast_reserve = ForecastReserve(ledger, host, 0);
  const Resources room0 = ledger.Free() - forecast_reserve;

  struct Scored {
    const PendingShard* shard;
    ScoreParts score;
    double rest = 0;  // the score without its fit, which depends on the room at its turn
  };
  std::vector<Scored> order;
  order.reserve(pending.size());
  out.waiting.reserve(pending.size());
  for (const PendingShard& s : pending) {
    Scored sc{&s, ScoreShard(s, room0, now_ns, o)};
    sc.rest = sc.score.total - sc.score.fit;
    order.push_back(sc);
  }
  // Best first by the score without its fit, then by the tie-breaks of the header.
  auto before = [](const Scored& a, const Scored& b) {
    if (a.rest != b.rest) return a.rest > b.rest;
    return Precedes(*a.shard, a.score, *b.shard, b.score);
  };
  // The order is needed only as far as the scan goes: it is sorted in chunks, each the best
  // of what is left (nth_element, then sort), so that a round that stops after
  // max_blocked_scan shards that cannot start costs O(n) rather than O(n log n).
  size_t sorted_to = 0;
  size_t chunk = std::max<size_t>(4 * o.max_blocked_scan, 1024);  // doubles: O(n log n) in all
  auto sort_through = [&](size_t i) {
    if (i < sorted_to) return;
    const auto first = order.begin() + long(sorted_to);
    const auto last =
        order.begin() + long(std::min(order.size(), std::max(i + 1, sorted_to + chunk)));
    if (last != order.end()) std::nth_element(first, last, order.end(), before);
    std::sort(first, last, before);
    sorted_to = size_t(last - order.begin());
    chunk *= 2;
  };

  std::map<std::string, double> spent;  // per group, by the starts of this call
  Resources blocked_reserve;
  int64_t shadow_ns = INT64_MAX;
  size_t blocked_run = 0;  // shards in a row that could not start
  // The fit part is measured against the room left when a shard's turn comes. The room only
  // shrinks during a round (see `room` below), so fits only fall, and a shard whose score
  // without fit is fit_weight or more below the best score found cannot beat it. So each
  // turn takes the best of a `band`: a heap of the shards not yet taken whose rest could
  // still win, each scored against the room of some earlier turn (an upper bound of its
  // score now, since fits only fall). The top is re-scored until it is scored against the
  // current room (then it beats every other's upper bound), and the band is widened down
  // the sorted order while the next shard could beat it. The scores taken never rise during
  // a round, so a start never shrinks one made earlier in it.
  std::vector<size_t> band;             // indices into `order`: a heap, best on top
  std::vector<uint32_t> scored_in(order.size(), 0);  // the room epoch of each score
  uint32_t epoch = 1;                   // bumped when the room changes
  size_t next = 0;                      // order[next..] not yet in the band
  auto rescore = [&](size_t i, const Resources& room) {
    Scored& c = order[i];
    c.score.fit = FitPart(*c.shard, room, o);
    c.score.total = c.rest + c.score.fit;
    scored_in[i] = epoch;
  };
  auto worse = [&](size_t a, size_t b) {  // heap order: a below b
    if (order[a].score.total != order[b].score.total) {
      return order[a].score.total < order[b].score.total;
    }
    return a > b;  // equal scores: the order of `before`
  };
  // (A start that pre-empts may free more than it takes; fits are measured against the
  // least room seen in the round all the same, so that they only fall.)
  Resources room = room0;
  uint32_t room_epoch = 0;
  while (o.max_blocked_scan == 0 || blocked_run < o.max_blocked_scan) {
    if (room_epoch != epoch) {
      room = Resources::Min(room, ledger.Free() - forecast_reserve - blocked_reserve);
      room_epoch = epoch;
    }
    while (true) {
      if (!band.empty() && scored_in[band.front()] != epoch) {
        std::pop_heap(band.begin(), band.end(), worse);
        rescore(band.back(), room);
        std::push_heap(band.begin(), band.end(), worse);
        continue;
      }
      if (next >= order.size()) break;
      sort_through(next);
      if (!band.empty() && order[next].rest + o.fit_weight <= order[band.front()].score.total) {
        break;
      }
      rescore(next, room);
      band.push_back(next++);
      std::push_heap(band.begin(), band.end(), worse);
    }
    if (band.empty()) break;
    std::pop_heap(band.begin(), band.end(), worse);
    const size_t pick = band.back();
    band.pop_back();
    const Scored& sc = order[pick];
    const PendingShard& s = *sc.shard;
    const size_t starts_before = out.starts.size();
    const Resources reserve_before = blocked_reserve;
    auto wait = [&](std::string reason) {
      out.waiting.push_back({s.key, sc.score, std::move(reason)});
    };
    const double left = s.budget_left - spent[s.group];
    if (o.max_starts != 0 && out.starts.size() >= o.max_starts) {
      wait("this round's batch of starts is full");
    } else if (std::isfinite(s.budget_left) && sc.score.predicted_cost > left + 1e-12) {
      wait(fmt::format("predicted cost {:.4f} is over the {:.4f} left of the budget",
                       sc.score.predicted_cost, std::max(0.0, left)));
    } else {
      const ReservationRequest req{s.key, s.want, s.min, sc.score.total};
      const Resources run_reserve = ForecastReserve(ledger, host, s.predicted_s);
      auto plan = ledger.PlanAdmit(req, run_reserve + blocked_reserve);
      if (plan && !*plan && !out.reserved_for.empty() &&
          now_ns + int64_t(s.predicted_s * kNsPerSecond) <= shadow_ns) {
        // EASY backfill: a shard that ends before the blocked one could start may use its
        // room.
        plan = ledger.PlanAdmit(req, run_reserve);
      }
      if (!plan) {
        wait(plan.error().message());
      } else if (!*plan) {
        const Resources room_for_it = ledger.Free() - run_reserve - blocked_reserve;
        std::string reason = fmt::format("needs at least {}; {} free for it", Describe(s.min),
                                         Describe(room_for_it));
        if (!out.reserved_for.empty()) reason += " (room is held for " + out.reserved_for + ")";
        wait(std::move(reason));
        if (o.reserve_for_blocked && out.reserved_for.empty() &&
            s.min.FitsIn(ledger.capacity())) {
          out.reserved_for = s.key;
          const Resources free_now = ledger.Free() - forecast_reserve;
          blocked_reserve = Resources::Min(s.min, free_now);
          shadow_ns = ShadowTime(ledger, host, free_now, s.min);
        }
      } else if (Status st = ledger.ApplyAdmission(req, **plan); !st.ok()) {
        wait(st.message());
      } else {
        spent[s.group] += sc.score.predicted_cost;
        out.starts.push_back({s.key, (*plan)->grant, sc.score, (*plan)->changes});
      }
    }
    const bool started = out.starts.size() > starts_before;
    blocked_run = started ? 0 : blocked_run + 1;
    if (started || blocked_reserve != reserve_before) ++epoch;
  }
  // Not reached: max_blocked_scan shards in a row ahead of them could not start. Their
  // scores are as at the start of the round (in the band: against the room when last
  // scored); they are listed in no particular order.
  if (!band.empty() || next < order.size()) {
    const std::string why =
        fmt::format("not considered this round ({} ahead of it cannot start)", blocked_run);
    auto unreached = [&](size_t i) {
      out.waiting.push_back({order[i].shard->key, order[i].score, why});
    };
    for (size_t i : band) unreached(i);
    for (size_t i = next; i < order.size(); ++i) unreached(i);
  }

  out.grow_back = ledger.PlanGrowBack(forecast_reserve + blocked_reserve);
  for (const GrantChange& c : out.grow_back) {
    // Planned from the ledger itself a moment ago; it cannot fail.
    (void)ledger.ApplyChange(c);
  }
  return out;
}

}  // namespace augur::workflow
