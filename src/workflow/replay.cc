#include "workflow/replay.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "workflow/dag.h"
#include "workflow/plan.h"

namespace augur::workflow {
namespace {

constexpr double kEps = 1e-9;

int64_t ToNs(double s) { return static_cast<int64_t>(std::llround(s * 1e9)); }
std::string KeyOf(int task) { return "t" + std::to_string(task); }

// A task's speed under its grant: CPU-bound work runs at the share of its CPU it has.
double Rate(const ReplayTask& t, const Grant& g) {
  if (t.want.cpu <= kEps) return 1.0;
  return std::clamp(g.granted.cpu / t.want.cpu, kEps, 1.0);
}

}  // namespace

std::string_view ReplayPolicyName(ReplayPolicy p) {
  switch (p) {
    case ReplayPolicy::kAugur: return "augur";
    case ReplayPolicy::kFifo: return "fifo";
    case ReplayPolicy::kUpwardRank: return "upward-rank";
  }
  return "?";
}

Result<ReplayResult> Replay(const std::vector<ReplayTask>& tasks, const ReplayOptions& o,
                            const ReplayObserver& observer) {
  const int n = static_cast<int>(tasks.size());
  std::vector<std::vector<int>> preds(n);
  for (int i = 0; i < n; ++i) preds[i] = tasks[i].preds;
  auto dag = Dag::FromPredecessors(preds);
  if (!dag) return Err(dag.error());
  for (int i = 0; i < n; ++i) {
    if (!tasks[i].min.FitsIn(o.capacity) || !tasks[i].min.FitsIn(tasks[i].want)) {
      return Err(Status::InvalidArgument(fmt::format(
          "task {}: min {} does not fit the capacity {} or is above want {}", i,
          tasks[i].min.ToString(), o.capacity.ToString(), tasks[i].want.ToString())));
    }
  }

  std::vector<double> predicted(n), actual(n);
  for (int i = 0; i < n; ++i) {
    predicted[i] = tasks[i].predicted_s;
    actual[i] = tasks[i].actual_s;
  }
  const CriticalPath cp_pred = ComputeCriticalPath(*dag, predicted);
  ReplayResult r;
  r.critical_path_s = ComputeCriticalPath(*dag, actual).length_s;
  double cpu_work = 0, mem_work = 0, first_submit = std::numeric_limits<double>::infinity();
  for (const ReplayTask& t : tasks) {
    cpu_work += t.want.cpu * t.actual_s;
    // A shrunk grant slows CPU-bound work but not memory: the least memory it can run in
    // is what the bound may count on.
    mem_work += double(t.min.memory) * t.actual_s;
    first_submit = std::min(first_submit, t.submit_s);
  }
  r.work_bound_s = std::max(o.capacity.cpu > 0 ? cpu_work / o.capacity.cpu : 0.0,
                            o.capacity.memory > 0 ? mem_work / double(o.capacity.memory) : 0.0);
  r.lower_bound_s = std::max(r.critical_path_s, r.work_bound_s);
  r.tasks.assign(n, {});
  if (n == 0) return r;

  // Each workflow's earliest finish, for the slack of workflows without a deadline or plan.
  std::map<int, double> ideal_finish, submitted;
  for (int i = 0; i < n; ++i) {
    double& f = ideal_finish[tasks[i].workflow];
    f = std::max(f, tasks[i].submit_s + cp_pred.remaining_s[i]);
    auto [it, fresh] = submitted.try_emplace(tasks[i].workflow, tasks[i].submit_s);
    if (!fresh) it->second = std::min(it->second, tasks[i].submit_s);
  }
  std::map<int, double> last_start;  // per workflow, for aging
  std::map<int, uint64_t> group_seq;  // workflows by submission
  {
    std::vector<std::pair<double, int>> by_submit;
    for (const auto& [w, at] : submitted) by_submit.push_back({at, w});
    std::sort(by_submit.begin(), by_submit.end());
    for (size_t k = 0; k < by_submit.size(); ++k) group_seq[by_submit[k].second] = k;
  }

  // Each task's place in its workflow's plan; only for kAugur.
  std::vector<std::optional<double>> planned(n);
  if (o.policy == ReplayPolicy::kAugur && !o.given_plan_order.empty()) {
    if (o.given_plan_order.size() != size_t(n)) {
      return Err(Status::InvalidArgument(fmt::format(
          "a plan of {} places for {} tasks", o.given_plan_order.size(), n)));
    }
    for (int i = 0; i < n; ++i) planned[i] = o.given_plan_order[i];
  } else if (o.policy == ReplayPolicy::kAugur && o.plan) {
    std::map<int, std::vector<int>> members;
    for (int i = 0; i < n; ++i) members[tasks[i].workflow].push_back(i);
    for (const auto& [w, ids] : members) {
      std::map<int, int> local;
      for (int i : ids) local[i] = int(local.size());
      std::vector<ReplayTask> sub;
      for (int i : ids) {
        ReplayTask t = tasks[i];
        t.preds.clear();
        for (int p : tasks[i].preds) {
          // Needs outside the workflow are met before it can run at all; the plan starts
          // from there.
          if (auto it = local.find(p); it != local.end()) t.preds.push_back(it->second);
        }
        sub.push_back(std::move(t));
      }
      PlanOptions po;
      po.capacity = o.capacity;
      po.scheduler = o.scheduler;
      po.ledger = o.ledger;
      po.max_tasks = o.plan_max_tasks;
      po.refinements = o.plan_refinements;
      po.search_steps = o.plan_search_steps;
      auto plan = PlanWorkflow(std::move(sub), po);
      if (!plan) return Err(plan.error());
      if (!*plan) continue;
      if (!(*plan)->order.empty()) {
        for (size_t k = 0; k < ids.size(); ++k) planned[ids[k]] = (*plan)->order[k];
      }
      r.plan += (r.plan.empty() ? "" : "; ") + (*plan)->chosen;
    }
  }

  Ledger ledger(o.capacity, o.ledger);
  std::vector<int> waiting_preds(n);
  std::vector<double> ready_at(n, -1), remaining(n, 0);
  std::vector<char> done(n, 0), running(n, 0);
  for (int i = 0; i < n; ++i) waiting_preds[i] = static_cast<int>(tasks[i].preds.size());
  int finished = 0;
  double now = std::max(0.0, first_submit);
  uint64_t seq_counter = 0;
  std::vector<uint64_t> seq(n);
  for (int i = 0; i < n; ++i) seq[i] = seq_counter++;

  auto start = [&](int i) -> Status {
    const Grant* g = ledger.Find(KeyOf(i));
    if (g == nullptr) {
      return Status::Internal(fmt::format(
          "task {} was started and lost its grant in the same round at {:.3f}s", i, now));
    }
    last_start[tasks[i].workflow] = now;
    running[i] = 1;
    remaining[i] = tasks[i].actual_s;
    r.tasks[i].start_s = now;
    r.tasks[i].first_grant = g->granted;
    return Status::OK();
  };

  while (finished < n) {
    std::vector<int> ready;
    for (int i = 0; i < n; ++i) {
      if (!done[i] && !running[i] && waiting_preds[i] == 0 && tasks[i].submit_s <= now + kEps) {
        if (ready_at[i] < 0) ready_at[i] = now;
        ready.push_back(i);
      }
    }
    ++r.decisions;
    if (o.policy == ReplayPolicy::kAugur) {
      std::vector<PendingShard> pending;
      pending.reserve(ready.size());
      for (int i : ready) {
        const ReplayTask& t = tasks[i];
        PendingShard p;
        p.key = KeyOf(i);
        p.group = std::to_string(t.workflow);
        p.priority = t.priority;
        p.ready_ns = ToNs(ready_at[i]);
        p.deadline_ns = t.deadline_s > 0 ? ToNs(t.deadline_s) : 0;
        p.ideal_finish_ns = ToNs(ideal_finish[t.workflow]);
        p.remaining_path_s = cp_pred.remaining_s[i];
        p.predicted_s = t.predicted_s;
        p.want = t.want;
        p.min = t.min;
        p.seq = seq[i];
        p.plan_order = planned[i];
        p.group_seq = group_seq[t.workflow];
        if (auto it = last_start.find(t.workflow); it != last_start.end()) {
          p.group_last_start_ns = ToNs(it->second);
        }
        pending.push_back(std::move(p));
      }
      HostView host;
      for (int i = 0; i < n; ++i) {
        if (running[i]) {
          host.running.push_back({KeyOf(i), ToNs(r.tasks[i].start_s + tasks[i].predicted_s)});
        }
      }
      ScheduleResult s = Schedule(pending, ledger, host, ToNs(now), o.scheduler);
      for (const StartDecision& d : s.starts) {
        for (const GrantChange& c : d.changes) {
          ++r.grant_changes;
          if (c.kind == GrantChange::Kind::kPreempt) {
            // Its work is lost; it waits again.
            const int v = std::stoi(c.holder.substr(1));
            running[v] = 0;
            remaining[v] = 0;
          }
        }
        if (Status st = start(std::stoi(d.key.substr(1))); !st.ok()) return Err(st);
      }
      r.grant_changes += s.grow_back.size();
    } else {
      if (o.policy == ReplayPolicy::kUpwardRank) {
        std::stable_sort(ready.begin(), ready.end(), [&](int a, int b) {
          return cp_pred.remaining_s[a] > cp_pred.remaining_s[b];
        });
      }
      for (int i : ready) {
        if (!tasks[i].want.FitsIn(ledger.Free())) continue;
        const ReservationRequest req{KeyOf(i), tasks[i].want, tasks[i].want, 0};
        if (!ledger.ApplyAdmission(req, Admission{tasks[i].want, {}}).ok()) continue;
        if (Status st = start(i); !st.ok()) return Err(st);
      }
    }
    if (observer) observer(now, ledger);

    // The next event: the first end at the current rates, or the next arrival.
    double next = std::numeric_limits<double>::infinity();
    for (int i = 0; i < n; ++i) {
      if (running[i]) {
        next = std::min(next, now + remaining[i] / Rate(tasks[i], *ledger.Find(KeyOf(i))));
      } else if (!done[i] && tasks[i].submit_s > now + kEps) {
        next = std::min(next, tasks[i].submit_s);
      }
    }
    if (!std::isfinite(next)) {
      return Err(Status::Internal(fmt::format(
          "replay stalled at {:.3f}s with {} of {} tasks done and nothing running", now,
          finished, n)));
    }
    const double dt = next - now;
    for (int i = 0; i < n; ++i) {
      if (!running[i]) continue;
      remaining[i] -= dt * Rate(tasks[i], *ledger.Find(KeyOf(i)));
    }
    now = next;
    for (int i = 0; i < n; ++i) {
      if (!running[i] || remaining[i] > kEps * std::max(1.0, tasks[i].actual_s)) continue;
      running[i] = 0;
      done[i] = 1;
      ++finished;
      r.tasks[i].end_s = now;
      (void)ledger.Release(KeyOf(i));
      for (int s : dag->succs(i)) --waiting_preds[s];
    }
  }
  for (const ReplayTaskResult& t : r.tasks) r.makespan_s = std::max(r.makespan_s, t.end_s);
  r.makespan_s -= std::max(0.0, first_submit);
  return r;
}

}  // namespace augur::workflow
