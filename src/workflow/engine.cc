#include "workflow/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "workflow/placeholders.h"
#include "workflow/plan.h"
#include "workflow/shard_plan.h"

namespace augur::workflow {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

std::string ShortHash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return fmt::format("{:06x}", x & 0xffffff);
}

struct StageRun {
  int waiting_needs = 0;     // needed stages not done yet
  bool planned = false;
  bool merge_pending = false;  // every shard has a winner; the merge action is due
  bool merging = false;
  bool done = false;
  int64_t ready_ns = 0;
  std::string output;        // the merged output file once done
  std::string note;          // how the shards were planned
  std::vector<ShardRecord> shards;
  std::unique_ptr<MergeBook> book;
  // Per shard: attempts that do not count against its retries (pre-empted, or lost before
  // they ran).
  std::map<uint32_t, uint32_t> uncounted;
};

struct Run {
  WorkflowRecord rec;
  WorkflowSpec spec;
  std::optional<Dag> dag;
  std::vector<StageRun> stages;
  std::vector<double> remaining_s;  // critical path from each stage's start, predicted
  int64_t ideal_finish_ns = 0;
  // Each stage's place in the workflow's plan (empty: no plan), and which candidate it is.
  std::vector<double> plan_order;
  std::string plan;
  int64_t last_start_ns = 0;  // its latest shard start (aging counts from it)
  std::string workdir;
  uint64_t seq = 0;
  bool cancel_live = false;  // live attempts are to be cancelled at the next Tick
};

// An attempt that holds a grant; rec.workflow_id and rec.shard_index say whose.
struct Live {
  AttemptRecord rec;
  int stage = 0;              // index of rec.stage in its workflow
  int64_t timeout_at_ns = 0;  // 0: none
  bool cancelling = false;
  bool preempted = false;
  bool timed_out = false;
};

bool Terminal(WorkflowState s) { return s != WorkflowState::kRunning; }

}  // namespace

struct Engine::Impl {
  explicit Impl(EngineOptions opt) : o(std::move(opt)), ledger(o.capacity, o.ledger) {}

  EngineOptions o;
  Ledger ledger;
  std::map<std::string, Run> runs;
  std::map<std::string, Live> live;  // by attempt id
  Changes changes;
  uint64_t next_seq = 0;
  std::vector<WaitingShard> last_waiting;

  // Past shard durations by "workflow name/stage", newest last, at most kKeep, and their
  // median (kept up to date as they come: predictions are read for every pending shard of
  // every tick).
  static constexpr size_t kKeep = 32;
  struct Learned {
    std::deque<double> recent;
    double median = 0;
  };
  std::map<std::string, Learned> learned;

  double PredictedS(const std::string& workflow, const StageSpec& st) const {
    if (auto it = learned.find(workflow + "/" + st.name); it != learned.end()) {
      return it->second.median;
    }
    return st.expected ? double(st.expected->count()) / 1000.0 : o.default_expected_s;
  }
  double PredictedS(const Run& r, int stage) const {
    return PredictedS(r.spec.name, r.spec.stages[stage]);
  }

  void Recompute(Run& r) {
    std::vector<double> d(r.stages.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = r.stages[i].done ? 0 : PredictedS(r, int(i));
    r.remaining_s = ComputeCriticalPath(*r.dag, d).remaining_s;
  }

  void SaveWorkflow(const Run& r) { changes.workflows.push_back(r.rec); }
  void SaveShard(const ShardRecord& s) { changes.shards.push_back(s); }
  void SaveAttempt(const AttemptRecord& a) { changes.attempts.push_back(a); }

  // Ends a workflow that did not succeed (kFailed, kCancelled): its pending shards are
  // cancelled and its live attempts stopped at the next Tick.
  void Finish(Run& r, WorkflowState state, const std::string& why, int64_t now) {
    if (Terminal(r.rec.state)) return;
    r.rec.state = state;
    r.rec.error = why;
    r.rec.finished_ns = now;
    r.cancel_live = true;
    for (StageRun& st : r.stages) {
      for (ShardRecord& sh : st.shards) {
        if (sh.state == ShardState::kPending) {
          sh.state = ShardState::kCancelled;
          SaveShard(sh);
        }
      }
    }
    SaveWorkflow(r);
  }

  // Plans the shards of a stage whose needs are met.
  void Plan(Run& r, int si, int64_t now) {
    StageRun& st = r.stages[si];
    const StageSpec& spec = r.spec.stages[si];
    PlanInput in;
    in.capacity = o.capacity;
    in.free = ledger.Free();
    const double per = PredictedS(r, si);
    in.whole_stage_s = spec.shards.count == 0 ? per : per * std::max<uint32_t>(1, spec.shards.count);
    auto plan = PlanShards(spec, in);
    st.planned = true;
    st.ready_ns = now;
    if (!plan) {
      Finish(r, WorkflowState::kFailed, plan.error().message(), now);
      return;
    }
    st.note = plan->note;
    st.book = std::make_unique<MergeBook>(static_cast<uint32_t>(plan->shards.size()));
    for (const ShardDef& d : plan->shards) {
      ShardRecord s;
      s.workflow_id = r.rec.id;
      s.stage = spec.name;
      s.index = d.index;
      s.shard_id = d.id;
      s.begin = d.begin;
      s.end = d.end;
      s.items = d.items;
      s.want = d.want;
      s.min = d.min;
      st.shards.push_back(s);
      SaveShard(s);
    }
  }

  std::string AttemptId(const Run& r, int si, const ShardRecord& s, uint32_t n) const {
    return fmt::format("{}/{}/{}#{}", r.rec.id, r.spec.stages[si].name, s.shard_id, n);
  }

  PlaceholderValues Values(const Run& r, int si, const ShardRecord& s,
                           const std::string& output) const {
    const StageSpec& spec = r.spec.stages[si];
    PlaceholderValues v;
    v["shard.index"] = std::to_string(s.index);
    v["shard.count"] = std::to_string(r.stages[si].shards.size());
    v["shard.begin"] = std::to_string(s.begin);
    v["shard.end"] = std::to_string(s.end);
    std::string items;
    for (const std::string& it : s.items) items += (items.empty() ? "" : " ") + it;
    v["shard.item"] = items;
    v["workdir"] = r.workdir;
    v["output"] = output;
    for (const std::string& need : spec.needs) {
      const int ni = r.spec.StageIndex(need);
      if (ni >= 0) v["inputs." + need] = r.stages[ni].output;
    }
    if (spec.needs.size() == 1) {
      const int ni = r.spec.StageIndex(spec.needs[0]);
      if (ni >= 0) v["input"] = r.stages[ni].output;
    }
    return v;
  }

  // The DAG of a workflow's stages (needs as predecessors).
  static Result<Dag> DagOf(const WorkflowSpec& spec) {
    std::vector<std::vector<int>> preds(spec.stages.size());
    for (size_t i = 0; i < spec.stages.size(); ++i) {
      for (const std::string& n : spec.stages[i].needs) preds[i].push_back(spec.StageIndex(n));
    }
    return Dag::FromPredecessors(std::move(preds));
  }

  // Predictions for a new or restored run: remaining paths, and the earliest finish that
  // slack is measured against when there is no deadline.
  void Predict(Run& r) {
    Recompute(r);
    double cp = 0;
    for (double x : r.remaining_s) cp = std::max(cp, x);
    r.ideal_finish_ns = r.rec.submitted_ns + int64_t(cp * kNsPerSec);
    MakePlan(r);
  }

  // How many shards a stage will have, as declared (count: auto guesses as many as fit the
  // host side by side, within its max).
  uint32_t DeclaredShards(const StageSpec& st) const {
    switch (st.shards.kind) {
      case ShardsSpec::Kind::kSingle: return 1;
      case ShardsSpec::Kind::kItems:
        return std::max<uint32_t>(1, st.shards.count != 0 ? st.shards.count
                                                          : uint32_t(st.shards.items.size()));
      case ShardsSpec::Kind::kRange:
        if (st.shards.count != 0) return st.shards.count;
        break;
    }
    const double side_by_side = st.want.cpu > 0 ? o.capacity.cpu / st.want.cpu : 1;
    const uint32_t cap = st.shards.max != 0 ? st.shards.max : 64;
    return std::clamp<uint32_t>(uint32_t(side_by_side), 1, cap);
  }

  // The workflow's plan (plan.h), made on its stages' shards as declared, each stage's
  // shards after a zero-length barrier task for each stage it needs. Stages already done
  // count as nothing. No plan when it is off, too large, or cannot be made.
  void MakePlan(Run& r) {
    r.plan_order.clear();
    r.plan.clear();
    if (!o.plan) return;
    const size_t n = r.spec.stages.size();
    std::vector<ReplayTask> tasks;
    std::vector<std::vector<int>> of_stage(n);
    std::vector<int> barrier(n, -1);
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      total += r.stages[i].done ? 0 : DeclaredShards(r.spec.stages[i]);
    }
    if (total == 0 || total > o.plan_max_shards) return;
    for (int i : r.dag->topological_order()) {
      const StageSpec& st = r.spec.stages[i];
      std::vector<int> needs;
      for (int p : r.dag->preds(i)) {
        if (barrier[p] >= 0) needs.push_back(barrier[p]);
      }
      if (!r.stages[i].done) {
        const double per = PredictedS(r, i);
        const uint32_t k = DeclaredShards(st);
        for (uint32_t j = 0; j < k; ++j) {
          ReplayTask t;
          t.preds = needs;
          t.actual_s = t.predicted_s = per;
          t.want = Resources::Min(st.want, o.capacity);
          t.min = Resources::Min(st.min, t.want);
          of_stage[i].push_back(int(tasks.size()));
          tasks.push_back(std::move(t));
        }
      }
      // The barrier: what stages that need this one wait for.
      ReplayTask b;
      b.preds = of_stage[i].empty() ? needs : of_stage[i];
      b.actual_s = b.predicted_s = 0;
      barrier[i] = int(tasks.size());
      tasks.push_back(std::move(b));
    }
    PlanOptions po;
    po.capacity = o.capacity;
    po.scheduler = o.scheduler;
    po.ledger = o.ledger;
    po.max_tasks = tasks.size();
    auto plan = PlanWorkflow(std::move(tasks), po);
    if (!plan || !*plan) return;  // the scheduler alone orders it
    r.plan = (*plan)->chosen;
    if ((*plan)->order.empty()) return;
    r.plan_order.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
      const int first = of_stage[i].empty() ? barrier[i] : of_stage[i].front();
      r.plan_order[i] = (*plan)->order[size_t(first)];
      for (int t : of_stage[i]) {
        r.plan_order[i] = std::min(r.plan_order[i], (*plan)->order[size_t(t)]);
      }
    }
  }

  // Where a stage's merged output goes.
  static std::string StageOutputPath(const Run& r, const std::string& stage) {
    return r.workdir + "/" + stage + ".out";
  }

  // The merge of a stage whose shards all have a winner: concat, or its merge command with
  // {inputs} filled.
  Action MergeAction(Run& r, int si) {
    StageRun& st = r.stages[si];
    st.merging = true;
    st.merge_pending = false;
    Action a;
    a.kind = Action::Kind::kMerge;
    a.workflow_id = r.rec.id;
    a.stage = r.spec.stages[si].name;
    a.workdir = r.workdir;
    for (uint32_t k = 0; k < st.book->shards(); ++k) a.inputs.push_back(st.shards[k].output_path);
    a.output = StageOutputPath(r, a.stage);
    const MergeSpec& ms = r.spec.stages[si].merge;
    if (ms.kind != MergeSpec::Kind::kCommand) return a;
    std::string inputs;
    for (const std::string& in : a.inputs) inputs += (inputs.empty() ? "" : " ") + in;
    const PlaceholderValues v = {{"workdir", r.workdir}, {"output", a.output}, {"inputs", inputs}};
    for (const std::string& arg : ms.command) {
      // {inputs} alone as an argument stands for one argument per input file.
      if (arg == "{inputs}") {
        a.argv.insert(a.argv.end(), a.inputs.begin(), a.inputs.end());
      } else {
        a.argv.push_back(ExpandPlaceholders(arg, v));
      }
    }
    return a;
  }

  // A new attempt of shard `s` of stage `si` with the scheduler's grant: recorded, live, and
  // the task to start (placeholders filled).
  Action StartAttempt(Run& r, int si, ShardRecord& s, const StartDecision& d, int64_t now) {
    const StageSpec& spec = r.spec.stages[si];
    s.attempts += 1;
    s.state = ShardState::kRunning;
    SaveShard(s);
    r.last_start_ns = now;
    Live l;
    l.stage = si;
    l.rec.attempt_id = d.key;
    l.rec.workflow_id = r.rec.id;
    l.rec.stage = spec.name;
    l.rec.shard_index = s.index;
    l.rec.attempt = s.attempts;
    l.rec.backend = spec.backend;
    l.rec.grant = d.grant;
    l.rec.state = AttemptState::kStarting;
    l.rec.started_ns = now;
    l.rec.output_path =
        fmt::format("{}/{}/{}.{}.out", r.workdir, spec.name, s.shard_id, s.attempts);
    l.timeout_at_ns = spec.timeout.count() > 0 ? now + spec.timeout.count() * 1'000'000 : 0;
    SaveAttempt(l.rec);
    Action a;
    a.kind = Action::Kind::kStart;
    a.attempt = l.rec;
    const PlaceholderValues v = Values(r, si, s, l.rec.output_path);
    for (const std::string& arg : spec.run) a.argv.push_back(ExpandPlaceholders(arg, v));
    for (const auto& [k, val] : spec.env) a.env.push_back(k + "=" + val);
    a.workdir = r.workdir;
    a.priority = r.spec.PriorityOf(spec);
    a.range_begin = s.begin;
    a.range_end = s.end;
    live.emplace(d.key, std::move(l));
    return a;
  }

  // A grant change the scheduler decided for a live attempt: a resize, or a pre-emption
  // (a cancel whose end re-queues the shard). nullopt for a holder that is gone.
  std::optional<Action> ChangeAction(const GrantChange& c) {
    auto it = live.find(c.holder);
    if (it == live.end()) return std::nullopt;
    Action a;
    a.attempt = it->second.rec;
    a.reason = c.reason;
    if (c.kind == GrantChange::Kind::kPreempt) {
      a.kind = Action::Kind::kCancel;
      a.reason = "pre-empted: " + c.reason;
      it->second.cancelling = true;
      it->second.preempted = true;
    } else {
      a.kind = Action::Kind::kResize;
      a.resize_to = c.to;
      it->second.rec.grant = c.to;
      SaveAttempt(it->second.rec);
    }
    return a;
  }

  Run* Find(const std::string& id) {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }
};

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Engine::~Engine() = default;

const Ledger& Engine::ledger() const { return impl_->ledger; }
size_t Engine::running_attempts() const { return impl_->live.size(); }

bool Engine::idle() const {
  if (!impl_->live.empty()) return false;
  for (const auto& [id, r] : impl_->runs) {
    if (!Terminal(r.rec.state)) return false;
  }
  return true;
}

Changes Engine::DrainChanges() {
  Changes c = std::move(impl_->changes);
  impl_->changes = {};
  return c;
}

Result<std::string> Engine::Submit(const WorkflowSpec& spec, std::string yaml, std::string origin,
                                   int64_t now_ns) {
  Impl& m = *impl_;
  auto dag = Impl::DagOf(spec);
  if (!dag) return Err(dag.error().Annotate("workflow " + spec.name));
  Run r;
  r.seq = m.next_seq++;
  r.spec = spec;
  r.dag = std::move(*dag);
  r.rec.id = spec.name + "-" + ShortHash(uint64_t(now_ns) ^ (r.seq << 40));
  while (m.runs.contains(r.rec.id)) r.rec.id += "x";
  r.rec.name = spec.name;
  r.rec.spec_yaml = std::move(yaml);
  r.rec.origin = std::move(origin);
  r.rec.submitted_ns = now_ns;
  r.rec.deadline_ns = spec.deadline.At(now_ns);
  r.workdir = m.o.work_root + "/" + r.rec.id;
  r.stages.resize(spec.stages.size());
  for (size_t i = 0; i < spec.stages.size(); ++i) {
    r.stages[i].waiting_needs = static_cast<int>(spec.stages[i].needs.size());
  }
  m.Predict(r);
  const std::string id = r.rec.id;
  m.SaveWorkflow(r);
  auto [it, inserted] = m.runs.emplace(id, std::move(r));
  for (size_t i = 0; i < it->second.stages.size(); ++i) {
    if (it->second.stages[i].waiting_needs == 0) m.Plan(it->second, int(i), now_ns);
  }
  return id;
}

std::vector<Action> Engine::Tick(int64_t now, const HostView& host_in) {
  Impl& m = *impl_;
  std::vector<Action> actions;
  // Cancellations: timeouts, and every live attempt of a cancelled or failed workflow.
  for (auto& [id, l] : m.live) {
    if (l.cancelling) continue;
    Run* r = m.Find(l.rec.workflow_id);
    const bool stop_all = r != nullptr && r->cancel_live;
    const bool timeout = l.timeout_at_ns != 0 && now >= l.timeout_at_ns;
    if (!stop_all && !timeout) continue;
    l.cancelling = true;
    l.timed_out = timeout && !stop_all;
    Action a;
    a.kind = Action::Kind::kCancel;
    a.attempt = l.rec;
    a.reason = l.timed_out ? "timed out" : "workflow " + std::string(WorkflowStateName(
                                                              r->rec.state));
    actions.push_back(std::move(a));
  }
  for (auto& [id, r] : m.runs) r.cancel_live = false;

  // Merges that are due, and pending shards.
  std::vector<PendingShard> pending;
  struct Ref {
    Run* run;
    int stage;
    uint32_t shard;
  };
  std::map<std::string, Ref> refs;
  for (auto& [id, r] : m.runs) {
    if (Terminal(r.rec.state)) continue;
    for (size_t si = 0; si < r.stages.size(); ++si) {
      StageRun& st = r.stages[si];
      if (st.merge_pending && !st.merging) actions.push_back(m.MergeAction(r, int(si)));
      if (!st.planned || st.done) continue;
      const StageSpec& spec = r.spec.stages[si];
      for (ShardRecord& s : st.shards) {
        if (s.state != ShardState::kPending || s.not_before_ns > now) continue;
        PendingShard p;
        p.key = m.AttemptId(r, int(si), s, s.attempts + 1);
        p.group = r.rec.id;
        p.priority = r.spec.PriorityOf(spec);
        p.boost = (r.rec.boost_until_ns == 0 || r.rec.boost_until_ns > now) ? r.rec.boost : 0;
        p.ready_ns = std::max(st.ready_ns, s.not_before_ns);
        p.deadline_ns = r.rec.deadline_ns;
        p.ideal_finish_ns = r.ideal_finish_ns;
        p.remaining_path_s = r.remaining_s[si];
        p.predicted_s = m.PredictedS(r, int(si));
        p.want = s.want;
        p.min = s.min;
        p.seq = r.seq;
        if (!r.plan_order.empty()) p.plan_order = r.plan_order[si];
        p.group_seq = r.seq;
        p.group_last_start_ns = r.last_start_ns;
        refs[p.key] = {&r, int(si), s.index};
        pending.push_back(std::move(p));
      }
    }
  }

  HostView host = host_in;
  for (const auto& [id, l] : m.live) {
    const Run* r = m.Find(l.rec.workflow_id);
    const double pred = r ? m.PredictedS(*r, l.stage) : m.o.default_expected_s;
    host.running.push_back({id, l.rec.started_ns + int64_t(pred * kNsPerSec)});
  }
  ScheduleResult sched = Schedule(pending, m.ledger, host, now, m.o.scheduler);
  m.last_waiting = sched.waiting;

  for (const StartDecision& d : sched.starts) {
    for (const GrantChange& c : d.changes) {
      if (auto a = m.ChangeAction(c)) actions.push_back(std::move(*a));
    }
    const Ref ref = refs.at(d.key);
    Run& r = *ref.run;
    actions.push_back(m.StartAttempt(r, ref.stage, r.stages[ref.stage].shards[ref.shard], d, now));
  }
  for (const GrantChange& c : sched.grow_back) {
    if (auto a = m.ChangeAction(c)) actions.push_back(std::move(*a));
  }
  return actions;
}

MergeOutcome Engine::AttemptEnded(const std::string& attempt_id, const AttemptOutcome& out,
                                  int64_t now) {
  Impl& m = *impl_;
  auto it = m.live.find(attempt_id);
  if (it == m.live.end()) return MergeOutcome::kUnknown;
  Live l = std::move(it->second);
  m.live.erase(it);
  (void)m.ledger.Release(attempt_id);
  l.rec.state = l.timed_out ? AttemptState::kTimedOut : out.state;
  if (l.preempted) l.rec.state = AttemptState::kCancelled;
  l.rec.finished_ns = now;
  l.rec.exit_code = out.exit_code;
  l.rec.term_signal = out.term_signal;
  l.rec.cpu_seconds = out.cpu_seconds;
  l.rec.peak_memory_bytes = out.peak_memory_bytes;
  l.rec.bytes_read = out.bytes_read;
  l.rec.bytes_written = out.bytes_written;
  l.rec.error = l.timed_out ? "timed out" : out.error;
  m.SaveAttempt(l.rec);
  Run* r = m.Find(l.rec.workflow_id);
  if (r == nullptr) return MergeOutcome::kUnknown;
  StageRun& st = r->stages[l.stage];
  ShardRecord& s = st.shards[l.rec.shard_index];
  {
    HistoryRecord h;
    h.attempt_id = attempt_id;
    h.workflow_id = r->rec.id;
    h.workflow_name = r->rec.name;
    h.stage = l.rec.stage;
    h.shard_index = s.index;
    h.range_begin = s.begin;
    h.range_end = s.end;
    h.items = static_cast<uint32_t>(s.items.size());
    h.state = l.rec.state;
    h.exit_code = out.exit_code;
    h.started_ns = l.rec.started_ns;
    h.wall_seconds = double(now - l.rec.started_ns) / kNsPerSec;
    h.cpu_seconds = out.cpu_seconds;
    h.peak_memory_bytes = out.peak_memory_bytes;
    h.bytes_read = out.bytes_read;
    h.bytes_written = out.bytes_written;
    h.grant = l.rec.grant;
    m.changes.history.push_back(std::move(h));
  }
  const bool ok = l.rec.state == AttemptState::kSucceeded;
  const MergeOutcome mo = st.book->Offer(s.index, attempt_id, ok);
  if (mo == MergeOutcome::kDuplicate || Terminal(r->rec.state)) return mo;
  if (mo == MergeOutcome::kAccepted) {
    LearnDuration(r->spec.name, l.rec.stage, double(now - l.rec.started_ns) / kNsPerSec);
    s.state = ShardState::kSucceeded;
    s.winner = attempt_id;
    s.output_path = l.rec.output_path;
    m.SaveShard(s);
    if (st.book->Complete()) st.merge_pending = true;
    return mo;
  }
  if (st.book->winner(s.index)) return mo;  // a failed straggler of a shard already won
  // Pre-empted, or lost before it ran (the backend could not provision it: its capacity
  // is shared with merges and other users, or its host was restarting): the shard goes back
  // to the queue without spending a retry, a bounded number of times.
  constexpr uint32_t kMaxLost = 20;
  if (l.preempted || (l.rec.state == AttemptState::kLost && st.uncounted[s.index] < kMaxLost)) {
    ++st.uncounted[s.index];
    s.state = ShardState::kPending;
    if (!l.preempted) s.not_before_ns = now + 500'000'000;
    m.SaveShard(s);
    return mo;
  }
  const StageSpec& spec = r->spec.stages[l.stage];
  const uint32_t failures = s.attempts - st.uncounted[s.index];
  if (failures <= spec.retries.count) {
    s.state = ShardState::kPending;
    const double backoff_ms = double(spec.retries.backoff.count()) * std::pow(2.0, failures - 1);
    s.not_before_ns = now + int64_t(backoff_ms * 1e6);
    // More memory or CPU for the next attempt, within what a backend can grant at all.
    s.want = Resources::Min({s.want.cpu * spec.retries.grow_cpu,
                             uint64_t(std::ceil(double(s.want.memory) * spec.retries.grow_memory))},
                            Resources::Max(m.o.capacity, s.want));
    s.min = Resources::Min({s.min.cpu * spec.retries.grow_cpu,
                            uint64_t(std::ceil(double(s.min.memory) * spec.retries.grow_memory))},
                           m.o.capacity);
    s.min = Resources::Min(s.min, s.want);
    m.SaveShard(s);
    return mo;
  }
  s.state = ShardState::kFailed;
  m.SaveShard(s);
  const std::string why =
      l.rec.state == AttemptState::kOom ? "killed for running out of memory"
      : l.rec.state == AttemptState::kTimedOut
          ? fmt::format("timed out after {}s", double(spec.timeout.count()) / 1000)
      : out.term_signal != 0 ? fmt::format("killed by signal {}", out.term_signal)
      : !out.error.empty()   ? out.error
                             : fmt::format("exited with status {}", out.exit_code);
  m.Finish(*r, WorkflowState::kFailed,
         fmt::format("stage {} shard {} failed after {} attempt{}: {}", spec.name, s.shard_id,
                     failures, failures == 1 ? "" : "s", why),
         now);
  return mo;
}

void Engine::MergeDone(const std::string& workflow_id, const std::string& stage, bool ok,
                       const std::string& error, int64_t now) {
  Impl& m = *impl_;
  Run* r = m.Find(workflow_id);
  if (r == nullptr || Terminal(r->rec.state)) return;
  const int si = r->spec.StageIndex(stage);
  if (si < 0) return;
  StageRun& st = r->stages[si];
  st.merging = false;
  if (!ok) {
    m.Finish(*r, WorkflowState::kFailed, fmt::format("stage {}: merge failed: {}", stage, error), now);
    return;
  }
  st.done = true;
  st.output = Impl::StageOutputPath(*r, stage);
  m.changes.stage_outputs.push_back({workflow_id + "/" + stage, st.output});
  m.Recompute(*r);
  for (int next : r->dag->succs(si)) {
    if (--r->stages[next].waiting_needs == 0) m.Plan(*r, next, now);
  }
  if (std::all_of(r->stages.begin(), r->stages.end(), [](const StageRun& s) { return s.done; })) {
    r->rec.state = WorkflowState::kSucceeded;
    r->rec.finished_ns = now;
  }
  m.SaveWorkflow(*r);
}

Result<std::string> Engine::Resolve(const std::string& workflow) const {
  if (impl_->runs.contains(workflow)) return workflow;
  const Run* best = nullptr;
  for (const auto& [id, r] : impl_->runs) {
    if (r.rec.name == workflow && (best == nullptr || r.rec.submitted_ns >= best->rec.submitted_ns)) {
      best = &r;
    }
  }
  if (best == nullptr) {
    return Err(Status::NotFound(fmt::format("no workflow '{}' (augurctl status lists them)", workflow)));
  }
  return best->rec.id;
}

Result<std::string> Engine::StageOf(const std::string& id, const std::string& stage) const {
  const WorkflowSpec& spec = impl_->runs.at(id).spec;
  if (stage.empty()) return spec.stages.back().name;
  if (spec.StageIndex(stage) < 0) {
    return Err(Status::NotFound(fmt::format("workflow {} has no stage '{}'", id, stage)));
  }
  return stage;
}

std::string_view Engine::StateOf(const std::string& id) const {
  return WorkflowStateName(impl_->runs.at(id).rec.state);
}

void Engine::LearnDuration(const std::string& workflow_name, const std::string& stage,
                           double wall_s) {
  if (!(wall_s >= 0)) return;
  Impl::Learned& l = impl_->learned[workflow_name + "/" + stage];
  l.recent.push_back(wall_s);
  while (l.recent.size() > Impl::kKeep) l.recent.pop_front();
  std::vector<double> v(l.recent.begin(), l.recent.end());
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  l.median = v[v.size() / 2];
}

Status Engine::Cancel(const std::string& workflow, int64_t now) {
  auto id = Resolve(workflow);
  if (!id) return id.error();
  Run& r = impl_->runs.at(*id);
  if (Terminal(r.rec.state)) {
    return Status::FailedPrecondition(
        fmt::format("workflow {} is already {}", *id, WorkflowStateName(r.rec.state)));
  }
  impl_->Finish(r, WorkflowState::kCancelled, "cancelled", now);
  return Status::OK();
}

Status Engine::Boost(const std::string& workflow, double points, int64_t until_ns) {
  auto id = Resolve(workflow);
  if (!id) return id.error();
  Run& r = impl_->runs.at(*id);
  r.rec.boost = points;
  r.rec.boost_until_ns = until_ns;
  impl_->SaveWorkflow(r);
  return Status::OK();
}

Status Engine::Restore(const WorkflowRecord& w, const std::vector<ShardRecord>& shards,
                       const std::vector<AttemptRecord>& attempts,
                       const std::map<std::string, std::string>& stage_outputs,
                       std::vector<AttemptRecord>* reattach) {
  Impl& m = *impl_;
  auto spec = ParseWorkflow(w.spec_yaml, w.origin.empty() ? w.id : w.origin);
  if (!spec) return spec.error().Annotate("restoring workflow " + w.id);
  auto dag = Impl::DagOf(*spec);
  if (!dag) return dag.error();
  Run r;
  r.seq = m.next_seq++;
  r.rec = w;
  r.spec = std::move(*spec);
  r.dag = std::move(*dag);
  r.workdir = m.o.work_root + "/" + w.id;
  r.stages.resize(r.spec.stages.size());
  for (size_t i = 0; i < r.spec.stages.size(); ++i) {
    StageRun& st = r.stages[i];
    const std::string& name = r.spec.stages[i].name;
    for (const ShardRecord& s : shards) {
      if (s.stage == name) st.shards.push_back(s);
    }
    std::sort(st.shards.begin(), st.shards.end(),
              [](const ShardRecord& a, const ShardRecord& b) { return a.index < b.index; });
    if (!st.shards.empty()) {
      st.planned = true;
      st.ready_ns = w.submitted_ns;
      st.book = std::make_unique<MergeBook>(static_cast<uint32_t>(st.shards.size()));
      for (const ShardRecord& s : st.shards) {
        if (s.state == ShardState::kSucceeded) (void)st.book->Offer(s.index, s.winner, true);
      }
    }
    if (auto it = stage_outputs.find(name); it != stage_outputs.end()) {
      st.done = true;
      st.output = it->second;
    } else if (st.book && st.book->Complete()) {
      st.merge_pending = true;  // the merge had not been recorded: do it again
    }
  }
  for (size_t i = 0; i < r.spec.stages.size(); ++i) {
    int waiting = 0;
    for (const std::string& n : r.spec.stages[i].needs) {
      if (!r.stages[r.spec.StageIndex(n)].done) ++waiting;
    }
    r.stages[i].waiting_needs = waiting;
  }
  m.Predict(r);
  const std::string id = w.id;
  auto [it, inserted] = m.runs.emplace(id, std::move(r));
  Run& run = it->second;
  if (Terminal(run.rec.state)) return Status::OK();
  for (size_t i = 0; i < run.stages.size(); ++i) {
    if (!run.stages[i].planned && run.stages[i].waiting_needs == 0) m.Plan(run, int(i), w.submitted_ns);
  }
  // Attempts that were starting or running: the executor re-attaches them or reports them
  // lost; their shards stay running meanwhile, their grants held.
  std::set<const ShardRecord*> reattached;
  for (const AttemptRecord& a : attempts) {
    if (a.state != AttemptState::kStarting && a.state != AttemptState::kRunning) continue;
    const int si = run.spec.StageIndex(a.stage);
    if (si < 0 || a.shard_index >= run.stages[si].shards.size()) continue;
    ShardRecord& s = run.stages[si].shards[a.shard_index];
    if (s.state == ShardState::kSucceeded) continue;
    s.state = ShardState::kRunning;
    reattached.insert(&s);
    Live l;
    l.rec = a;
    l.stage = si;
    const StageSpec& spec = run.spec.stages[si];
    l.timeout_at_ns = spec.timeout.count() > 0 ? a.started_ns + spec.timeout.count() * 1'000'000 : 0;
    // The grant as recorded, or what still fits of it if the capacity shrank meanwhile.
    (void)m.ledger.Restore({a.attempt_id, s.want, s.min, Resources::Min(a.grant, m.ledger.Free()),
                            double(run.spec.PriorityOf(spec))});
    m.live.emplace(a.attempt_id, std::move(l));
    reattach->push_back(a);
  }
  // Shards marked running without a live attempt (the attempt record was not written
  // before the crash) start again.
  for (StageRun& st : run.stages) {
    for (ShardRecord& s : st.shards) {
      if (s.state == ShardState::kRunning && !reattached.contains(&s)) s.state = ShardState::kPending;
    }
  }
  return Status::OK();
}

Result<std::string> Engine::StatusJson(const std::string& workflow, bool explain) const {
  const Impl& m = *impl_;
  std::vector<const Run*> which;
  if (!workflow.empty()) {
    auto id = Resolve(workflow);
    if (!id) return Err(id.error());
    which.push_back(&m.runs.at(*id));
  } else {
    for (const auto& [id, r] : m.runs) which.push_back(&r);
    std::sort(which.begin(), which.end(), [](const Run* a, const Run* b) {
      return a->rec.submitted_ns > b->rec.submitted_ns;
    });
  }
  nlohmann::json out = nlohmann::json::array();
  for (const Run* r : which) {
    nlohmann::json w = {{"id", r->rec.id},
                        {"name", r->rec.name},
                        {"state", WorkflowStateName(r->rec.state)},
                        {"submitted_ns", r->rec.submitted_ns},
                        {"finished_ns", r->rec.finished_ns},
                        {"deadline_ns", r->rec.deadline_ns},
                        {"priority", r->spec.priority},
                        {"boost", r->rec.boost},
                        {"plan", r->plan},
                        {"error", r->rec.error}};
    double eta = 0;
    nlohmann::json stages = nlohmann::json::array();
    for (size_t si = 0; si < r->stages.size(); ++si) {
      const StageRun& st = r->stages[si];
      std::map<std::string, int> counts = {
          {"pending", 0}, {"running", 0}, {"succeeded", 0}, {"failed", 0}, {"cancelled", 0}};
      for (const ShardRecord& s : st.shards) counts[std::string(ShardStateName(s.state))]++;
      const char* state = st.done ? "done" : st.merging || st.merge_pending ? "merging"
                          : st.planned ? "running" : "waiting";
      if (!st.done) eta = std::max(eta, r->remaining_s[si]);
      stages.push_back({{"name", r->spec.stages[si].name},
                        {"state", state},
                        {"shards", st.shards.size()},
                        {"counts", counts},
                        {"note", st.note},
                        {"output", st.output}});
    }
    w["stages"] = std::move(stages);
    w["eta_s"] = Terminal(r->rec.state) ? 0.0 : eta;
    if (explain) {
      nlohmann::json waiting = nlohmann::json::array();
      for (const WaitingShard& ws : m.last_waiting) {
        if (ws.key.rfind(r->rec.id + "/", 0) != 0) continue;
        const ScoreParts& p = ws.score;
        waiting.push_back({{"attempt", ws.key},
                           {"reason", ws.reason},
                           {"score",
                            {{"total", p.total},
                             {"priority", p.priority},
                             {"boost", p.boost},
                             {"urgency", p.urgency},
                             {"aging", p.aging},
                             {"fit", p.fit},
                             {"cost", p.cost},
                             {"slack_s", std::isfinite(p.slack_s) ? nlohmann::json(p.slack_s)
                                                                  : nlohmann::json(nullptr)}}}});
      }
      w["waiting"] = std::move(waiting);
      nlohmann::json grants = nlohmann::json::array();
      for (const auto& [holder, g] : m.ledger.grants()) {
        if (holder.rfind(r->rec.id + "/", 0) != 0) continue;
        grants.push_back({{"attempt", holder},
                          {"granted", g.granted.ToString()},
                          {"want", g.want.ToString()},
                          {"min", g.min.ToString()}});
      }
      w["grants"] = std::move(grants);
    }
    out.push_back(std::move(w));
  }
  return out.dump(2);
}

}  // namespace augur::workflow
