#include "workflow/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <set>
#include <utility>

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
  // The canary: the one shard run alone first when the stage has no history, or -1.
  int canary = -1;
  // Speculative pieces (indices into `shards`, after the planned ones) by the merge index of
  // the shard they re-run, in range order; and each piece's shard.
  std::map<uint32_t, std::vector<uint32_t>> pieces;
  std::map<uint32_t, uint32_t> parent_of;
  // Shards that were taken away from a class that may do that: they run on another now.
  std::set<uint32_t> avoid_preemptible;
  std::vector<CountCandidate> candidates;  // what count: auto considered, for --explain
  std::string sizing = "declared";          // where the shards' wants came from, for status
  // The merge index a shard's output counts for: its own, or its parent's for a piece.
  uint32_t MergeIndex(const ShardRecord& s) const {
    auto it = parent_of.find(s.index);
    return it == parent_of.end() ? s.index : it->second;
  }
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
  std::deque<std::string> events;  // the newest anomaly events, for status
};

// An attempt that holds a grant; rec.workflow_id and rec.shard_index say whose.
struct Live {
  AttemptRecord rec;
  int stage = 0;              // index of rec.stage in its workflow
  int64_t timeout_at_ns = 0;  // 0: none
  bool cancelling = false;
  bool preempted = false;
  bool timed_out = false;
  bool superseded = false;  // its shard was won by another attempt (or by its pieces)
  bool host_down = false;   // lost with its host (AttemptOutcome::host_down): no back-off
  bool remote = false;      // placed on another host (kPlace): no grant in this ledger
  // Usage as the backend reports it (ReportUsage): the cores used over the last window of
  // at least a second, and the feedback resizes it led to.
  Usage usage;
  bool usage_known = false;
  double window_cpu_s = 0;
  int64_t window_start_ns = 0;
  int64_t last_feedback_ns = 0;
  // Cost: the rate of its grant on its backend's class, and what it has cost up to
  // charged_to_ns (a resize charges the old rate up to its time).
  std::optional<CostClass> cls;  // the backend's cost class it runs on; none: free
  double rate_per_hour = 0;
  double cost = 0;
  int64_t charged_to_ns = 0;
};

bool Terminal(WorkflowState s) { return s != WorkflowState::kRunning; }

// A lost attempt's shard waits this long before it is started or placed again (a backend
// that could not provision it may need a moment), unless its host was declared dead.
constexpr int64_t kLostBackoffNs = 500'000'000;

// A speculative piece of shard P re-runs part of P's range or items; its id is "P~k".
constexpr char kPieceMark = '~';
bool IsPiece(const ShardRecord& s) { return s.shard_id.find(kPieceMark) != std::string::npos; }
std::string ParentIdOf(const std::string& piece_id) {
  return piece_id.substr(0, piece_id.rfind(kPieceMark));
}
// How many values or items a shard covers (0: not ranged, not items).
uint64_t UnitsOf(const ShardRecord& s) {
  return s.items.empty() ? s.end - s.begin : s.items.size();
}
// The winner of a shard whose pieces all succeeded before it did.
constexpr std::string_view kSplitWinner = "split:";

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
  int64_t last_tick_ns = 0;  // the clock of the last Tick, for status
  int64_t caution_until_ns = 0;  // host anomaly: cautious admission until then
  std::vector<std::pair<std::string, std::string>> notes;  // (workflow, what was decided)
  std::map<std::string, std::vector<CostClass>> cost_classes;  // by backend; absent: free
  std::vector<Resources> remote_room;  // what live peers show free (SetRemoteRoom)
  std::vector<GrantChange> foreign;    // applied to grants not ours (DrainForeignChanges)

  // What `r` costs an hour on the class an attempt runs on (free without one).
  static double RateOf(const Live& l, const Resources& r) {
    return l.cls ? CostPerHour(*l.cls, r) : 0.0;
  }
  // The class a shard of `backend` runs on (cost.h ChooseClass).
  std::optional<ClassChoice> ChooseClassFor(const std::string& backend, const Resources& want,
                                            double predicted_s, double slack_s,
                                            double budget_left, bool avoid_preemptible) const {
    auto it = cost_classes.find(backend);
    if (it == cost_classes.end()) return std::nullopt;
    return ChooseClass(it->second, want, predicted_s, slack_s, budget_left, avoid_preemptible);
  }
  // Charges a live attempt for its grant up to `now`.
  static void Charge(Live& l, int64_t now) {
    if (now > l.charged_to_ns) {
      l.cost += l.rate_per_hour * double(now - l.charged_to_ns) / (3600.0 * kNsPerSec);
      l.charged_to_ns = now;
    }
  }
  // What a workflow has spent, with what its live attempts have cost so far.
  double SpentWithLive(const Run& r, int64_t now) const {
    double total = r.rec.spent;
    for (const auto& [id, l] : live) {
      if (l.rec.workflow_id != r.rec.id) continue;
      total += l.cost + l.rate_per_hour * double(std::max<int64_t>(0, now - l.charged_to_ns)) /
                            (3600.0 * kNsPerSec);
    }
    return total;
  }
  // What is left of a workflow's budget for new shards: the budget less what it spent and
  // what its running attempts are predicted to cost in all. Infinite without a budget.
  double BudgetLeft(const Run& r, int64_t now) const {
    if (!r.spec.budget) return std::numeric_limits<double>::infinity();
    double committed = r.rec.spent;
    for (const auto& [id, l] : live) {
      if (l.rec.workflow_id != r.rec.id) continue;
      const double elapsed_s = double(std::max<int64_t>(0, now - l.rec.started_ns)) / kNsPerSec;
      committed += l.rate_per_hour * std::max(elapsed_s, PredictedS(r, l.stage)) / 3600.0;
    }
    return *r.spec.budget - committed;
  }

  // Past shard durations by "workflow name/stage", newest last, at most kKeep, and their
  // median (kept up to date as they come: predictions are read for every pending shard of
  // every tick).
  static constexpr size_t kKeep = 32;
  struct Learned {
    std::deque<double> recent;
    double median = 0;
  };
  std::map<std::string, Learned> learned;
  void LearnDuration(const std::string& workflow_name, const std::string& stage, double wall_s);

  ProfileBook profiles{o.profile};

  // A shard's predicted run time: its stage's profile at `units` (0: a typical shard), else
  // the median of the stage's recent run times, else `expected:`, else the default.
  double PredictedS(const std::string& workflow, const StageSpec& st, double units = 0) const {
    if (auto e = profiles.Predict(workflow, st.name, Quantity::kWall, units)) return e->value;
    if (auto it = learned.find(workflow + "/" + st.name); it != learned.end()) {
      return it->second.median;
    }
    return st.expected ? double(st.expected->count()) / 1000.0 : o.default_expected_s;
  }
  double PredictedS(const Run& r, int stage, double units = 0) const {
    return PredictedS(r.spec.name, r.spec.stages[stage], units);
  }
  bool HasHistory(const Run& r, int stage) const {
    return learned.contains(r.spec.name + "/" + r.spec.stages[stage].name);
  }

  // After a canary: the stage's waiting shards want what the canary used (peak memory x 1.5,
  // its cores x 1.25), within the file's bounds, unless the profile already knows better.
  void SizeFromCanary(Run& r, int si, const ShardRecord& canary, const AttemptOutcome& out,
                      double wall_s) {
    StageRun& st = r.stages[si];
    const StageSpec& spec = r.spec.stages[si];
    if (!spec.right_size) return;
    if (out.peak_memory_bytes == 0 && out.cpu_seconds <= 0) return;  // nothing measured
    for (ShardRecord& s : st.shards) {
      if (s.state != ShardState::kPending || s.index == canary.index) continue;
      if (SizedWant(r, si, ShardUnits(s), s.want, s.min)) continue;
      Resources w = s.want;
      if (out.peak_memory_bytes > 0) {
        w.memory = std::clamp<uint64_t>(uint64_t(double(out.peak_memory_bytes) * 1.5), s.min.memory,
                                        s.want.memory);
      }
      if (out.cpu_seconds > 0 && wall_s > 0) {
        w.cpu = std::clamp(out.cpu_seconds / wall_s * o.size_cpu_margin, s.min.cpu, s.want.cpu);
      }
      s.want = w;
      SaveShard(s);
    }
    st.sizing = fmt::format("canary: used {:.2f} cores, peak {}; the rest want {} (declared {})",
                            wall_s > 0 ? out.cpu_seconds / wall_s : 0.0,
                            FormatMemory(out.peak_memory_bytes),
                            st.shards.size() > 1 ? st.shards[canary.index == 0 ? 1 : 0].want.ToString()
                                                 : spec.want.ToString(),
                            spec.want.ToString());
  }

  // Right-sizing (issue 11): the want of a shard of `units` from its stage's profile: the
  // learned upper edges of peak memory (and any OOM floor) and of the cores it uses, times
  // margins, within the file's min and want. nullopt without a profile.
  std::optional<Resources> SizedWant(const Run& r, int si, double units, const Resources& want,
                                     const Resources& min) const {
    const std::string& stage = r.spec.stages[si].name;
    ShardEstimate e = profiles.Predict(r.spec.name, stage, units);
    if (!e.memory() && !e.cpu()) return std::nullopt;
    Resources sized = want;
    if (e.memory()) {
      double mem = e.memory()->hi * o.size_memory_margin;
      if (e.memory()->floor) mem = std::max(mem, *e.memory()->floor * 1.2);
      sized.memory = std::clamp<uint64_t>(uint64_t(std::ceil(mem)), min.memory, want.memory);
    }
    if (e.cpu() && e.wall() && e.wall()->value > 0) {
      const double cores = e.cpu()->hi / e.wall()->value * o.size_cpu_margin;
      sized.cpu = std::clamp(cores, min.cpu, want.cpu);
    }
    return sized;
  }

  // The least a right-sized shard accepts: the file's min, its memory raised to the stage's
  // learned typical peak (at least any OOM floor), so that a shrink for a higher-priority
  // shard cannot push it into an OOM kill; never above its want.
  Resources SizedMin(const Run& r, int si, double units, const Resources& want,
                     const Resources& min) const {
    Resources out = min;
    if (auto m = profiles.Predict(r.spec.name, r.spec.stages[si].name, Quantity::kMemory, units)) {
      double peak = m->value;
      if (m->floor) peak = std::max(peak, *m->floor);
      out.memory = std::max<uint64_t>(out.memory, uint64_t(std::ceil(peak)));
    }
    return Resources::Min(out, want);
  }

  // What the stage's shards are predicted to use at most, for feedback.
  UsagePrediction PredictUsage(const Run& r, int si, const ShardRecord& s) const {
    UsagePrediction p;
    ShardEstimate e = profiles.Predict(r.spec.name, r.spec.stages[si].name, ShardUnits(s));
    if (e.memory()) p.peak_memory_hi = uint64_t(e.memory()->hi);
    if (e.cpu() && e.wall() && e.wall()->value > 0) p.cores_hi = e.cpu()->hi / e.wall()->value;
    return p;
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
    if (spec.shards.kind == ShardsSpec::Kind::kRange) {
      // The profile knows how run time grows with a shard's size: ask for the whole range.
      if (auto e = profiles.Predict(r.spec.name, spec.name, Quantity::kWall,
                                    double(spec.shards.end - spec.shards.begin))) {
        in.whole_stage_s = e->value;
      }
    }
    if (auto e = profiles.PredictStartup(spec.backend)) in.startup_s = e->value;
    in.budget_left = BudgetLeft(r, now);
    if (auto cls = ChooseClassFor(spec.backend, spec.want, per, std::numeric_limits<double>::infinity(),
                                  in.budget_left, false)) {
      in.cost_per_hour = cls->cost_per_hour;
    }
    auto plan = PlanShards(spec, in);
    st.planned = true;
    st.ready_ns = now;
    if (!plan) {
      Finish(r, WorkflowState::kFailed, plan.error().message(), now);
      return;
    }
    st.note = plan->note;
    st.candidates = plan->candidates;
    if (plan->shards.size() >= 2 && !HasHistory(r, si) &&
        spec.canary.value_or(plan->shards.size() >= 3)) {
      st.canary = 0;
      st.note += std::string(st.note.empty() ? "" : "; ") +
                 "canary: shard 0 runs first (no history for this stage)";
    }
    st.book = std::make_unique<MergeBook>(static_cast<uint32_t>(plan->shards.size()));
    size_t sized = 0;
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
      if (auto w = spec.right_size ? SizedWant(r, si, ShardUnits(s), d.want, d.min)
                                   : std::nullopt) {
        s.want = *w;
        s.min = SizedMin(r, si, ShardUnits(s), s.want, d.min);
        ++sized;
      }
      st.shards.push_back(s);
      SaveShard(s);
    }
    if (sized > 0) {
      const std::optional<ProfileView> v = profiles.View(r.spec.name, spec.name);
      st.sizing = fmt::format("history ({} samples): shard 0 wants {} (declared {})",
                              v ? v->samples : 0, st.shards[0].want.ToString(),
                              spec.want.ToString());
    }
  }

  std::string AttemptId(const Run& r, int si, const ShardRecord& s, uint32_t n) const {
    return fmt::format("{}/{}/{}#{}", r.rec.id, r.spec.stages[si].name, s.shard_id, n);
  }

  PlaceholderValues Values(const Run& r, int si, const ShardRecord& s,
                           const std::string& output) const {
    const StageSpec& spec = r.spec.stages[si];
    PlaceholderValues v;
    v["shard.index"] = std::to_string(r.stages[si].MergeIndex(s));
    v["shard.count"] = std::to_string(r.stages[si].book->shards());
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
    for (uint32_t k = 0; k < st.book->shards(); ++k) {
      if (!st.shards[k].winner.starts_with(kSplitWinner)) {
        a.inputs.push_back(st.shards[k].output_path);
        continue;
      }
      // Won by its pieces: their outputs, in range order, stand for it.
      for (uint32_t p : st.pieces.at(k)) a.inputs.push_back(st.shards[p].output_path);
    }
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
  Action StartAttempt(Run& r, int si, ShardRecord& s, const StartDecision& d,
                      const std::optional<ClassChoice>& cls, int64_t now) {
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
    l.rec.host = o.host_name;
    l.rec.output_path =
        fmt::format("{}/{}/{}.{}.out", r.workdir, spec.name, s.shard_id, s.attempts);
    l.timeout_at_ns = spec.timeout.count() > 0 ? now + spec.timeout.count() * 1'000'000 : 0;
    if (cls) {
      l.cls = cls->cls;
      l.rec.resource_class = cls->cls.name;
    }
    l.rate_per_hour = RateOf(l, d.grant);
    l.charged_to_ns = now;
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
    if (cls) a.resource_class = cls->cls.name;
    live.emplace(d.key, std::move(l));
    return a;
  }

  // A grant change the scheduler decided for a live attempt: a resize, or a pre-emption
  // (a cancel whose end re-queues the shard). nullopt for a holder that is gone.
  std::optional<Action> ChangeAction(const GrantChange& c, int64_t now) {
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
      Charge(it->second, now);
      it->second.rate_per_hour = RateOf(it->second, c.to);
      it->second.rec.grant = c.to;
      SaveAttempt(it->second.rec);
    }
    return a;
  }

  // Marks the live attempts of shard `index` of stage `si` to be cancelled at the next Tick
  // because the shard no longer needs them.
  void Supersede(const Run& r, int si, uint32_t index) {
    for (auto& [id, l] : live) {
      if (l.rec.workflow_id == r.rec.id && l.stage == si && l.rec.shard_index == index &&
          !l.cancelling) {
        l.superseded = true;
      }
    }
  }

  // Gives up the pieces of shard `parent` (it finished first, or a piece failed): pending
  // ones are cancelled, running ones stopped. The shard is not split again.
  void AbandonPieces(Run& r, int si, uint32_t parent) {
    StageRun& st = r.stages[si];
    auto it = st.pieces.find(parent);
    if (it == st.pieces.end()) return;
    for (uint32_t p : it->second) {
      ShardRecord& piece = st.shards[p];
      if (piece.state == ShardState::kPending || piece.state == ShardState::kRunning) {
        if (piece.state == ShardState::kRunning) Supersede(r, si, p);
        piece.state = ShardState::kCancelled;
        SaveShard(piece);
      }
    }
  }

  // The end of an attempt of a speculative piece. Its shard wins when every piece has
  // succeeded before the shard's own attempt did.
  MergeOutcome PieceEnded(Run& r, int si, ShardRecord& piece, const Live& l, bool ok,
                          int64_t now) {
    StageRun& st = r.stages[si];
    const uint32_t parent = st.parent_of.at(piece.index);
    if (piece.state != ShardState::kRunning || st.book->winner(parent)) {
      return ok ? MergeOutcome::kDuplicate : MergeOutcome::kFailed;  // abandoned meanwhile
    }
    if (!ok) {
      if (l.preempted || l.rec.state == AttemptState::kLost) {
        piece.state = ShardState::kPending;
        piece.not_before_ns = now + (l.preempted || l.host_down ? 0 : kLostBackoffNs);
        SaveShard(piece);
      } else {
        piece.state = ShardState::kFailed;
        SaveShard(piece);
        AbandonPieces(r, si, parent);  // the shard's own attempt carries on
      }
      return MergeOutcome::kFailed;
    }
    piece.state = ShardState::kSucceeded;
    piece.winner = l.rec.attempt_id;
    piece.output_path = l.rec.output_path;
    SaveShard(piece);
    std::string winner(kSplitWinner);
    for (uint32_t p : st.pieces.at(parent)) {
      if (st.shards[p].state != ShardState::kSucceeded) return MergeOutcome::kAccepted;
      winner += (winner.size() == kSplitWinner.size() ? "" : ",") + st.shards[p].shard_id;
    }
    (void)st.book->Offer(parent, winner, true);
    ShardRecord& shard = st.shards[parent];
    shard.state = ShardState::kSucceeded;
    shard.winner = winner;
    shard.output_path.clear();
    SaveShard(shard);
    Supersede(r, si, parent);
    if (st.book->Complete()) st.merge_pending = true;
    return MergeOutcome::kAccepted;
  }

  // Straggler speculation (seeds 001, 004: dynamic re-sharding). A running shard of a
  // ranged or item stage that has run `straggler_factor` times its prediction has its range
  // re-run split into k pieces in parallel, when that pays:
  //   remaining  = elapsed (it has shown it is slow; assume it needs as long again)
  //   piece time = max(predicted, elapsed) / k + start-up
  //   saving     = remaining - piece time, at least max(min_saving_s, remaining / 4)
  //   work redone: the whole range again, so the pieces start only in room that is free now
  //   (their minimums fit without shrinking or pre-empting anyone).
  // The first to finish wins: the shard's own attempt (the pieces are cancelled) or all its
  // pieces (the attempt is cancelled and their outputs, in order, stand for the shard's).
  void Speculate(int64_t now, const HostView& host) {
    const SpeculationOptions& so = o.speculation;
    if (so.max_pieces < 2) return;
    Resources room = ledger.Free();
    if (auto f = host.FreeOver(0)) room = Resources::Min(room, *f - ledger.Granted());
    std::vector<std::string> stragglers;
    for (const auto& [id, l] : live) {
      if (l.cancelling || l.superseded || l.remote) continue;
      Run* r = Find(l.rec.workflow_id);
      if (r == nullptr || Terminal(r->rec.state)) continue;
      StageRun& st = r->stages[l.stage];
      const StageSpec& spec = r->spec.stages[l.stage];
      const ShardRecord& s = st.shards[l.rec.shard_index];
      if (!spec.speculate || !Splittable(st, s)) continue;
      const double pred = PredictedS(*r, l.stage, ShardUnits(s));
      const double elapsed = double(now - l.rec.started_ns) / kNsPerSec;
      // Past twice its prediction, and past the upper edge of its interval where known.
      double threshold = so.straggler_factor * pred;
      if (auto e = profiles.Predict(r->spec.name, spec.name, Quantity::kWall, ShardUnits(s))) {
        threshold = std::max(threshold, e->hi);
      }
      if (elapsed < threshold) continue;
      const uint32_t k = static_cast<uint32_t>(std::min<uint64_t>(so.max_pieces, UnitsOf(s)));
      const double piece_s = std::max(pred, elapsed) / k + so.startup_s;
      const double saving = elapsed - piece_s;
      if (saving < std::max(so.min_saving_s, elapsed / 4)) continue;
      if (!s.min.Scaled(double(k)).FitsIn(room)) continue;
      room -= s.min.Scaled(double(k));
      stragglers.push_back(id);
    }
    for (const std::string& id : stragglers) Split(live.at(id), now);
  }

  static bool Splittable(const StageRun& st, const ShardRecord& s) {
    return !IsPiece(s) && !st.pieces.contains(s.index) && UnitsOf(s) >= 2;
  }

  // Cuts shard `l` is running into pieces (Speculate decided it pays).
  void Split(const Live& l, int64_t now) {
    Run& r = *Find(l.rec.workflow_id);
    StageRun& st = r.stages[l.stage];
    const ShardRecord parent = st.shards[l.rec.shard_index];  // a copy: shards grows below
    const uint32_t k = static_cast<uint32_t>(std::min<uint64_t>(o.speculation.max_pieces,
                                                                 UnitsOf(parent)));
    std::vector<uint32_t>& pieces = st.pieces[parent.index];
    const uint64_t units = UnitsOf(parent);
    for (uint32_t j = 0; j < k; ++j) {
      ShardRecord piece;
      piece.workflow_id = parent.workflow_id;
      piece.stage = parent.stage;
      piece.index = static_cast<uint32_t>(st.shards.size());
      piece.shard_id = parent.shard_id + kPieceMark + std::to_string(j);
      const uint64_t from = units * j / k, to = units * (j + 1) / k;
      if (parent.items.empty()) {
        piece.begin = parent.begin + from;
        piece.end = parent.begin + to;
      } else {
        piece.items.assign(parent.items.begin() + from, parent.items.begin() + to);
      }
      piece.want = parent.want;
      piece.min = parent.min;
      piece.not_before_ns = now;
      pieces.push_back(piece.index);
      st.parent_of[piece.index] = parent.index;
      SaveShard(piece);
      st.shards.push_back(std::move(piece));
    }
    spdlog_note(r, fmt::format("shard {} of stage {} is a straggler ({:.1f}s, predicted {:.1f}s): "
                               "its range re-runs as {} pieces",
                               parent.shard_id, parent.stage,
                               double(now - l.rec.started_ns) / kNsPerSec,
                               PredictedS(r, l.stage), k));
  }

  // Feedback (feedback.h): live attempts whose usage departs from their grant or prediction
  // get a new want; a smaller one shrinks the grant now (a resize), a larger one grows it
  // into free room with the other grow-backs.
  void Feedback(int64_t now, std::vector<Action>& actions) {
    const FeedbackOptions& fo = o.feedback;
    for (auto& [id, l] : live) {
      if (!l.usage_known || l.cancelling || l.superseded) continue;
      if (l.last_feedback_ns != 0 && double(now - l.last_feedback_ns) / kNsPerSec < fo.resize_interval_s) {
        continue;
      }
      const Grant* g = ledger.Find(id);
      Run* r = Find(l.rec.workflow_id);
      if (g == nullptr || r == nullptr || Terminal(r->rec.state)) continue;
      ShardRecord& s = r->stages[l.stage].shards[l.rec.shard_index];
      // A cgroup's peak counts page cache, which fills any limit when a shard reads much:
      // feedback never takes a shard past 4 times what its stage declared.
      const Resources ceiling =
          Resources::Min(o.capacity, r->spec.stages[l.stage].want.Scaled(fo.max_growth));
      FeedbackDecision d = DecideFeedback(g->granted, g->want, g->min, ceiling, l.usage,
                                          PredictUsage(*r, l.stage, s), fo);
      if (!d.want) continue;
      const Resources granted = g->granted;
      if (!ledger.SetWant(id, *d.want).ok()) continue;
      l.last_feedback_ns = now;
      notes.push_back({r->rec.id, fmt::format("{}: want {} -> {} ({})", id,
                                              s.want.ToString(), d.want->ToString(), d.reason)});
      if (d.want->memory > s.want.memory || d.want->cpu > s.want.cpu) {
        s.want = Resources::Max(s.want, *d.want);  // a retry starts from it
        SaveShard(s);
      }
      const Resources now_granted = Resources::Min(granted, *d.want);
      if (!(now_granted == granted)) {
        Charge(l, now);
        l.rate_per_hour = RateOf(l, now_granted);
        l.rec.grant = now_granted;
        SaveAttempt(l.rec);
        Action a;
        a.kind = Action::Kind::kResize;
        a.attempt = l.rec;
        a.resize_to = now_granted;
        a.reason = d.reason;
        actions.push_back(std::move(a));
      }
    }
  }

  // Shards still waiting after a Tick's starts that cannot fit here now (their min exceeds
  // what is free) but whose want fits the room a live peer shows: kPlace actions, best
  // score first, each taking its want off that peer's room so one Tick does not send a
  // peer more than it showed. They run elsewhere without a grant in this ledger.
  template <typename Refs>
  void PlaceRemote(const ScheduleResult& sched, const std::vector<PendingShard>& pending,
                   const Refs& refs, int64_t now, std::vector<Action>& actions) {
    if (remote_room.empty()) return;
    std::map<std::string, const PendingShard*> by_key;
    for (const PendingShard& p : pending) by_key[p.key] = &p;
    const Resources free = ledger.Free();
    for (const WaitingShard& w : sched.waiting) {
      auto pi = by_key.find(w.key);
      auto ri = refs.find(w.key);
      if (pi == by_key.end() || ri == refs.end()) continue;
      const PendingShard& p = *pi->second;
      if (p.min.FitsIn(free)) continue;  // it waits for another reason than room here
      auto room = std::find_if(remote_room.begin(), remote_room.end(),
                               [&](const Resources& r) { return p.want.FitsIn(r); });
      if (room == remote_room.end()) continue;
      *room -= p.want;
      Run& r = *ri->second.run;
      StartDecision d;
      d.key = w.key;
      d.grant = p.want;
      Action a = StartAttempt(r, ri->second.stage, r.stages[ri->second.stage].shards[ri->second.shard],
                              d, std::nullopt, now);
      Live& l = live.at(w.key);
      l.remote = true;
      l.rec.host.clear();  // until the award
      l.rate_per_hour = 0;  // what the remote host charges is its own
      SaveAttempt(l.rec);
      a.attempt = l.rec;
      a.kind = Action::Kind::kPlace;
      a.min = p.min;
      a.score = w.score.total;
      a.predicted_s = p.predicted_s;
      a.budget_left = p.budget_left;
      actions.push_back(std::move(a));
    }
  }

  // Notes shown in status (the executor logs them too).
  void spdlog_note(Run& r, std::string note) { notes.push_back({r.rec.id, std::move(note)}); }

  Run* Find(const std::string& id) {
    auto it = runs.find(id);
    return it == runs.end() ? nullptr : &it->second;
  }
};

Engine::Engine(EngineOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Engine::~Engine() = default;

const Ledger& Engine::ledger() const { return impl_->ledger; }
Ledger& Engine::mutable_ledger() { return impl_->ledger; }

void Engine::SetRemoteRoom(std::vector<Resources> room) { impl_->remote_room = std::move(room); }

bool Engine::IsRemote(const std::string& attempt_id) const {
  auto it = impl_->live.find(attempt_id);
  return it != impl_->live.end() && it->second.remote;
}

Status Engine::AttemptRunning(const std::string& attempt_id, const std::string& instance,
                              const std::string& invocation) {
  auto it = impl_->live.find(attempt_id);
  if (it == impl_->live.end()) {
    return Status::NotFound(fmt::format("attempt {} is not live", attempt_id));
  }
  Live& l = it->second;
  l.rec.instance = instance;
  l.rec.invocation = invocation;
  l.rec.state = AttemptState::kRunning;
  impl_->SaveAttempt(l.rec);
  return Status::OK();
}

Status Engine::RemoteAwarded(const std::string& attempt_id, const std::string& host,
                             const Resources& grant, int64_t now, const std::string& lease_id) {
  auto it = impl_->live.find(attempt_id);
  if (it == impl_->live.end() || !it->second.remote) {
    return Status::NotFound(fmt::format("attempt {} is not a live placed attempt", attempt_id));
  }
  Live& l = it->second;
  l.rec.host = host;
  l.rec.lease_id = lease_id;
  l.rec.grant = grant;
  l.rec.state = AttemptState::kRunning;
  impl_->SaveAttempt(l.rec);
  impl_->notes.push_back({l.rec.workflow_id,
                          fmt::format("{} runs on {} granted {} ({:.3f}s after it was placed)",
                                      attempt_id, host, grant.ToString(),
                                      double(now - l.rec.started_ns) / kNsPerSec)});
  return Status::OK();
}

Status Engine::Unplace(const std::string& attempt_id, int64_t now) {
  auto it = impl_->live.find(attempt_id);
  if (it == impl_->live.end() || !it->second.remote) {
    return Status::NotFound(fmt::format("attempt {} is not a live placed attempt", attempt_id));
  }
  if (!it->second.rec.host.empty()) {
    return Status::FailedPrecondition(
        fmt::format("attempt {} already runs on {}", attempt_id, it->second.rec.host));
  }
  it->second.preempted = true;  // re-queued at once, not counted against its retries
  AttemptOutcome o;
  o.state = AttemptState::kCancelled;
  o.error = "taken back: room freed here before another host took it";
  (void)AttemptEnded(attempt_id, o, now);
  return Status::OK();
}

std::optional<Action> Engine::LedgerChanged(const GrantChange& change, int64_t now) {
  auto it = impl_->live.find(change.holder);
  if (it == impl_->live.end() || it->second.remote) return std::nullopt;
  return impl_->ChangeAction(change, now);
}

std::vector<GrantChange> Engine::DrainForeignChanges() { return std::exchange(impl_->foreign, {}); }
size_t Engine::running_attempts() const { return impl_->live.size(); }

bool Engine::idle() const {
  if (!impl_->live.empty()) return false;
  for (const auto& [id, r] : impl_->runs) {
    if (!Terminal(r.rec.state)) return false;
  }
  return true;
}

std::vector<std::pair<std::string, std::string>> Engine::DrainNotes() {
  return std::exchange(impl_->notes, {});
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
  m.last_tick_ns = now;
  std::vector<Action> actions;
  // Cancellations: timeouts, and every live attempt of a cancelled or failed workflow.
  for (auto& [id, l] : m.live) {
    if (l.cancelling) continue;
    Run* r = m.Find(l.rec.workflow_id);
    const bool stop_all = r != nullptr && r->cancel_live;
    const bool timeout = l.timeout_at_ns != 0 && now >= l.timeout_at_ns;
    if (!stop_all && !timeout && !l.superseded) continue;
    l.cancelling = true;
    l.timed_out = timeout && !stop_all && !l.superseded;
    Action a;
    a.kind = Action::Kind::kCancel;
    a.attempt = l.rec;
    a.reason = stop_all     ? "workflow " + std::string(WorkflowStateName(r->rec.state))
               : l.superseded ? "superseded: its shard has its result"
                              : "timed out";
    actions.push_back(std::move(a));
  }
  for (auto& [id, r] : m.runs) r.cancel_live = false;
  m.Feedback(now, actions);
  m.Speculate(now, host_in);

  // Merges that are due, and pending shards.
  std::vector<PendingShard> pending;
  struct Ref {
    Run* run;
    int stage;
    uint32_t shard;
    std::optional<ClassChoice> cls;
  };
  std::map<std::string, Ref> refs;
  for (auto& [id, r] : m.runs) {
    if (Terminal(r.rec.state)) continue;
    const double budget_left = m.BudgetLeft(r, now);
    // A workflow with nothing running whose every ready shard costs more than its budget
    // has left would wait for ever: it fails instead, saying so.
    bool any_live = false;
    for (const auto& [aid, l] : m.live) any_live = any_live || l.rec.workflow_id == r.rec.id;
    double cheapest = std::numeric_limits<double>::infinity();
    std::string cheapest_key;
    const size_t pending_before = pending.size();
    for (size_t si = 0; si < r.stages.size(); ++si) {
      StageRun& st = r.stages[si];
      if (st.merge_pending && !st.merging) actions.push_back(m.MergeAction(r, int(si)));
      if (!st.planned || st.done) continue;
      const StageSpec& spec = r.spec.stages[si];
      for (ShardRecord& s : st.shards) {
        if (s.state != ShardState::kPending || s.not_before_ns > now) continue;
        if (st.canary >= 0 && st.MergeIndex(s) != uint32_t(st.canary)) continue;
        PendingShard p;
        p.key = m.AttemptId(r, int(si), s, s.attempts + 1);
        p.group = r.rec.id;
        p.priority = r.spec.PriorityOf(spec);
        p.boost = (r.rec.boost_until_ns == 0 || r.rec.boost_until_ns > now) ? r.rec.boost : 0;
        p.ready_ns = std::max(st.ready_ns, s.not_before_ns);
        p.deadline_ns = r.rec.deadline_ns;
        p.ideal_finish_ns = r.ideal_finish_ns;
        p.remaining_path_s = r.remaining_s[si];
        p.predicted_s = m.PredictedS(r, int(si), ShardUnits(s));
        if (auto par = st.parent_of.find(s.index);
            par != st.parent_of.end() && !m.profiles.Predict(r.spec.name, spec.name,
                                                             Quantity::kWall, ShardUnits(s))) {
          // A piece: its share of the shard it re-runs.
          const uint64_t whole = UnitsOf(st.shards[par->second]);
          if (whole > 0) p.predicted_s *= double(UnitsOf(s)) / double(whole);
        }
        p.want = s.want;
        p.min = s.min;
        const double slack_s =
            r.rec.deadline_ns != 0
                ? double(r.rec.deadline_ns - now) / kNsPerSec - r.remaining_s[si]
                : std::numeric_limits<double>::infinity();
        std::optional<ClassChoice> cls =
            m.ChooseClassFor(spec.backend, s.want, p.predicted_s, slack_s, budget_left,
                             st.avoid_preemptible.contains(st.MergeIndex(s)));
        p.cost_per_hour = cls ? cls->cost_per_hour : 0;
        p.budget_left = budget_left;
        p.seq = r.seq;
        if (const double c = p.cost_per_hour * p.predicted_s / 3600.0; c < cheapest) {
          cheapest = c;
          cheapest_key = p.key;
        }
        if (!r.plan_order.empty()) p.plan_order = r.plan_order[si];
        p.group_seq = r.seq;
        p.group_last_start_ns = r.last_start_ns;
        refs[p.key] = {&r, int(si), s.index, std::move(cls)};
        pending.push_back(std::move(p));
      }
    }
    if (!any_live && pending.size() > pending_before && cheapest > budget_left + 1e-12) {
      for (size_t k = pending_before; k < pending.size(); ++k) refs.erase(pending[k].key);
      pending.resize(pending_before);
      m.Finish(r, WorkflowState::kFailed,
               fmt::format("over budget: {} is predicted to cost {:.4f}, {:.4f} of the budget "
                           "{:.4f} is left",
                           cheapest_key, cheapest, std::max(0.0, budget_left), *r.spec.budget),
               now);
    }
  }

  HostView host = host_in;
  if (now < m.caution_until_ns) {
    // Cautious admission after a host anomaly: new grants get a share of the free room.
    const Resources free = m.ledger.Free();
    const Resources cautious = m.ledger.Granted() + free.Scaled(m.o.anomaly.caution_share);
    host.Cap(cautious);
  }
  for (const auto& [id, l] : m.live) {
    if (l.remote) continue;  // runs elsewhere: frees nothing here when it ends
    const Run* r = m.Find(l.rec.workflow_id);
    const double pred = r ? m.PredictedS(*r, l.stage) : m.o.default_expected_s;
    host.running.push_back({id, l.rec.started_ns + int64_t(pred * kNsPerSec)});
  }
  ScheduleResult sched = Schedule(pending, m.ledger, host, now, m.o.scheduler);
  m.last_waiting = sched.waiting;

  for (const StartDecision& d : sched.starts) {
    for (const GrantChange& c : d.changes) {
      if (auto a = m.ChangeAction(c, now)) {
        actions.push_back(std::move(*a));
      } else {
        m.foreign.push_back(c);  // a mesh lease in our ledger: the bidder tells its owner
      }
    }
    const Ref ref = refs.at(d.key);
    Run& r = *ref.run;
    actions.push_back(
        m.StartAttempt(r, ref.stage, r.stages[ref.stage].shards[ref.shard], d, ref.cls, now));
  }
  for (const GrantChange& c : sched.grow_back) {
    if (auto a = m.ChangeAction(c, now)) {
      actions.push_back(std::move(*a));
    } else {
      m.foreign.push_back(c);
    }
  }
  m.PlaceRemote(sched, pending, refs, now, actions);
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
  l.host_down = out.state == AttemptState::kLost && out.host_down;
  // A stopped attempt counts as cancelled, unless it had succeeded before the stop reached
  // it (its result is then a duplicate, discarded by the merge book).
  if (l.preempted || (l.superseded && out.state != AttemptState::kSucceeded)) {
    l.rec.state = AttemptState::kCancelled;
  }
  l.rec.finished_ns = now;
  Impl::Charge(l, now);
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
  if (l.cost > 0) {
    r->rec.spent += l.cost;
    m.SaveWorkflow(*r);
  }
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
    h.cost = l.cost;
    h.host = l.rec.host;
    m.profiles.Learn(h);
    m.changes.history.push_back(std::move(h));
  }
  const bool ok = l.rec.state == AttemptState::kSucceeded;
  if (st.parent_of.contains(s.index)) {
    return Terminal(r->rec.state) ? MergeOutcome::kFailed : m.PieceEnded(*r, l.stage, s, l, ok, now);
  }
  // Every success is a sample of how long the stage's shards take (a piece is not: it is a
  // share of one).
  if (ok) m.LearnDuration(r->spec.name, l.rec.stage, double(now - l.rec.started_ns) / kNsPerSec);
  const MergeOutcome mo = st.book->Offer(s.index, attempt_id, ok);
  if (mo == MergeOutcome::kDuplicate || Terminal(r->rec.state)) return mo;
  if (mo == MergeOutcome::kAccepted) {
    s.state = ShardState::kSucceeded;
    s.winner = attempt_id;
    s.output_path = l.rec.output_path;
    m.SaveShard(s);
    m.AbandonPieces(*r, l.stage, s.index);
    if (st.canary == int(s.index)) {
      // Learned from: size the rest from what the canary used, then let them start.
      st.canary = -1;
      m.SizeFromCanary(*r, l.stage, s, out, double(now - l.rec.started_ns) / kNsPerSec);
    }
    if (st.book->Complete()) st.merge_pending = true;
    return mo;
  }
  if (st.book->winner(s.index)) return mo;  // a failed straggler of a shard already won
  // Pre-empted, or lost before it ran (the backend could not provision it: its capacity
  // is shared with merges and other users, or its host was restarting): the shard goes back
  // to the queue without spending a retry, a bounded number of times.
  constexpr uint32_t kMaxLost = 20;
  if (l.rec.state == AttemptState::kReclaimed) {
    // Its class took the instance away (a spot instance): again, on a class that does not.
    st.avoid_preemptible.insert(s.index);
  }
  if (l.preempted || l.rec.state == AttemptState::kReclaimed ||
      (l.rec.state == AttemptState::kLost && st.uncounted[s.index] < kMaxLost)) {
    ++st.uncounted[s.index];
    s.state = ShardState::kPending;
    if (l.rec.state == AttemptState::kLost && !l.host_down) {
      s.not_before_ns = now + kLostBackoffNs;
    }
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

void Engine::ReportUsage(const std::string& attempt_id, double cpu_seconds,
                         uint64_t peak_memory, int64_t now) {
  auto it = impl_->live.find(attempt_id);
  if (it == impl_->live.end()) return;
  Live& l = it->second;
  l.usage.elapsed_s = double(now - l.rec.started_ns) / kNsPerSec;
  l.usage.peak_memory = std::max(l.usage.peak_memory, peak_memory);
  if (l.window_start_ns == 0) {
    l.window_start_ns = now;
    l.window_cpu_s = cpu_seconds;
    return;
  }
  const double window_s = double(now - l.window_start_ns) / kNsPerSec;
  if (window_s < 1.0) return;  // a rate over less than a second is noise
  l.usage.cores = std::max(0.0, cpu_seconds - l.window_cpu_s) / window_s;
  l.usage_known = true;
  l.window_start_ns = now;
  l.window_cpu_s = cpu_seconds;
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

ProfileBook& Engine::profiles() { return impl_->profiles; }
const ProfileBook& Engine::profiles() const { return impl_->profiles; }

void Engine::Learn(const HistoryRecord& h) {
  impl_->profiles.Learn(h);
  if (h.state == AttemptState::kSucceeded) impl_->LearnDuration(h.workflow_name, h.stage, h.wall_seconds);
}

void Engine::Impl::LearnDuration(const std::string& workflow_name, const std::string& stage,
                                 double wall_s) {
  if (!(wall_s >= 0)) return;
  Impl::Learned& l = learned[workflow_name + "/" + stage];
  l.recent.push_back(wall_s);
  while (l.recent.size() > Impl::kKeep) l.recent.pop_front();
  std::vector<double> v(l.recent.begin(), l.recent.end());
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  l.median = v[v.size() / 2];
}

std::string_view AnomalyActionName(AnomalyAction a) {
  switch (a) {
    case AnomalyAction::kAlert: return "alert";
    case AnomalyAction::kGrow: return "grow";
    case AnomalyAction::kReshard: return "reshard";
  }
  return "alert";
}

std::optional<AnomalyAction> AnomalyActionFromName(std::string_view name) {
  for (AnomalyAction a : {AnomalyAction::kAlert, AnomalyAction::kGrow, AnomalyAction::kReshard}) {
    if (AnomalyActionName(a) == name) return a;
  }
  return std::nullopt;
}

Result<std::string> Engine::ShardAnomaly(const std::string& attempt_id, std::string_view series,
                                         int64_t now) {
  Impl& m = *impl_;
  auto it = m.live.find(attempt_id);
  Run* r = it == m.live.end() ? nullptr : m.Find(it->second.rec.workflow_id);
  if (r == nullptr || it->second.cancelling || Terminal(r->rec.state)) {
    return Err(Status::NotFound(fmt::format("attempt {} is not running", attempt_id)));
  }
  Live& l = it->second;
  StageRun& st = r->stages[l.stage];
  ShardRecord& s = st.shards[l.rec.shard_index];
  const AnomalyOptions& ao = m.o.anomaly;
  std::string done = "alerted";
  if (ao.action == AnomalyAction::kGrow) {
    if (const Grant* g = m.ledger.Find(attempt_id)) {
      const Resources want = Resources::Min(g->want.Scaled(ao.grow_factor), m.o.capacity);
      if (!(want == g->want) && m.ledger.SetWant(attempt_id, want).ok()) {
        s.want = Resources::Max(s.want, want);  // a retry starts from it too
        m.SaveShard(s);
        done = fmt::format("its want raised to {} (it grows into free room)", want.ToString());
      }
    }
  } else if (ao.action == AnomalyAction::kReshard) {
    if (r->spec.stages[l.stage].speculate && Impl::Splittable(st, s) &&
        s.min.Scaled(double(std::min<uint64_t>(m.o.speculation.max_pieces, UnitsOf(s))))
            .FitsIn(m.ledger.Free())) {
      m.Split(l, now);
      done = "its range re-runs in pieces";
    } else {
      done = "alerted (it cannot be re-sharded now)";
    }
  }
  std::string event = fmt::format("anomaly on {} of shard {} (attempt {}, instance {}): {}",
                                  series, s.shard_id, attempt_id, l.rec.instance, done);
  r->events.push_back(event);
  while (r->events.size() > 20) r->events.pop_front();
  return event;
}

std::string Engine::HostAnomaly(std::string_view series, int64_t now) {
  Impl& m = *impl_;
  if (m.o.anomaly.caution_s <= 0) return fmt::format("host anomaly on {}", series);
  m.caution_until_ns = std::max(m.caution_until_ns, now + int64_t(m.o.anomaly.caution_s * 1e9));
  return fmt::format("host anomaly on {}: new shards get {:.0f}% of the free room for {:.0f}s",
                     series, m.o.anomaly.caution_share * 100, m.o.anomaly.caution_s);
}

void Engine::SetBackendCosts(const std::string& backend, const std::vector<CostClass>& classes) {
  if (classes.empty()) {
    impl_->cost_classes.erase(backend);
  } else {
    impl_->cost_classes[backend] = classes;
  }
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

Result<std::vector<Action>> Engine::Drop(const std::string& workflow_id, const std::string& reason) {
  Impl& m = *impl_;
  auto run = m.runs.find(workflow_id);
  if (run == m.runs.end()) return Err(Status::NotFound(fmt::format("no workflow {} here", workflow_id)));
  std::vector<Action> actions;
  for (auto it = m.live.begin(); it != m.live.end();) {
    if (it->second.rec.workflow_id != workflow_id) {
      ++it;
      continue;
    }
    Action a;
    a.kind = Action::Kind::kCancel;
    a.attempt = it->second.rec;
    a.reason = reason;
    actions.push_back(std::move(a));
    (void)m.ledger.Release(it->first);
    it = m.live.erase(it);
  }
  std::erase_if(m.last_waiting, [&](const WaitingShard& w) { return w.key.rfind(workflow_id + "/", 0) == 0; });
  m.runs.erase(run);
  return actions;
}

bool Engine::Has(const std::string& workflow_id) const { return impl_->runs.contains(workflow_id); }

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
      std::map<std::string, uint32_t> by_id;
      uint32_t planned = 0;
      for (const ShardRecord& s : st.shards) {
        if (IsPiece(s)) continue;
        by_id[s.shard_id] = s.index;
        ++planned;
      }
      for (const ShardRecord& s : st.shards) {
        if (!IsPiece(s)) continue;
        auto parent = by_id.find(ParentIdOf(s.shard_id));
        if (parent == by_id.end()) continue;  // not written by this engine: left alone
        st.pieces[parent->second].push_back(s.index);
        st.parent_of[s.index] = parent->second;
      }
      st.book = std::make_unique<MergeBook>(planned);
      for (const ShardRecord& s : st.shards) {
        if (s.state == ShardState::kSucceeded && !IsPiece(s)) {
          (void)st.book->Offer(s.index, s.winner, true);
        }
      }
    }
    const bool any_won = std::any_of(st.shards.begin(), st.shards.end(), [](const ShardRecord& s) {
      return s.state == ShardState::kSucceeded;
    });
    if (st.book && st.book->shards() >= 2 && !any_won && !m.HasHistory(r, int(i)) &&
        r.spec.stages[i].canary.value_or(st.book->shards() >= 3)) {
      st.canary = 0;  // the canary had not finished: it still runs first
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
    // Charged from its start at the rate known now (the agent was down meanwhile).
    if (auto it = m.cost_classes.find(a.backend); it != m.cost_classes.end()) {
      // The class it ran on, by name; else the backend's default.
      for (const CostClass& c : it->second) {
        if (c.name == a.resource_class) l.cls = c;
      }
      if (!l.cls) l.cls = DefaultClass(it->second);
    }
    l.rate_per_hour = Impl::RateOf(l, a.grant);
    l.charged_to_ns = a.started_ns;
    // Placed on another host: its grant is that host's, not this ledger's.
    l.remote = !a.lease_id.empty() || (!a.host.empty() && a.host != m.o.host_name);
    if (l.remote) {
      l.cls.reset();
      l.rate_per_hour = 0;  // what the remote host charges is its own
    } else {
      // The grant as recorded, or what still fits of it if the capacity shrank meanwhile.
      (void)m.ledger.Restore({a.attempt_id, s.want, s.min,
                              Resources::Min(a.grant, m.ledger.Free()),
                              double(run.spec.PriorityOf(spec))});
    }
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
                        {"spent", m.SpentWithLive(*r, m.last_tick_ns)},
                        {"budget", r->spec.budget ? nlohmann::json(*r->spec.budget)
                                                  : nlohmann::json(nullptr)},
                        {"plan", r->plan},
                        {"error", r->rec.error},
                        {"events", r->events}};
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
      nlohmann::json stage = {{"name", r->spec.stages[si].name},
                              {"state", state},
                              {"shards", st.shards.size()},
                              {"counts", counts},
                              {"note", st.note},
                              {"sizing", st.sizing},
                              {"output", st.output}};
      if (explain && !st.candidates.empty()) {
        nlohmann::json c = nlohmann::json::array();
        for (const CountCandidate& k : st.candidates) {
          c.push_back({{"count", k.count},
                       {"parallel", k.parallel},
                       {"predicted_s", k.predicted_s},
                       {"predicted_cost", k.predicted_cost},
                       {"over_budget", k.over_budget}});
        }
        stage["count_candidates"] = std::move(c);
      }
      stages.push_back(std::move(stage));
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
      // Attempts placed on other hosts (no grant here): where each runs, or "" while placed.
      nlohmann::json remote = nlohmann::json::array();
      for (const auto& [aid, l] : m.live) {
        if (!l.remote || l.rec.workflow_id != r->rec.id) continue;
        remote.push_back({{"attempt", aid}, {"host", l.rec.host}, {"granted", l.rec.grant.ToString()}});
      }
      w["remote"] = std::move(remote);
    }
    out.push_back(std::move(w));
  }
  return out.dump(2);
}

std::vector<UpcomingStart> Engine::Upcoming(int64_t now) const {
  const Impl& m = *impl_;
  // When each stage of each running workflow is predicted to finish its shards.
  auto finish_of = [&](const Run& r, int si) -> std::optional<int64_t> {
    const StageRun& st = r.stages[si];
    if (st.done || st.merging || st.merge_pending) return now;
    if (!st.planned) return std::nullopt;
    const int64_t per = int64_t(m.PredictedS(r, si) * kNsPerSec);
    std::optional<int64_t> f;
    for (const ShardRecord& s : st.shards) {
      if (s.state == ShardState::kPending) {
        f = std::max(f.value_or(0), std::max(now, s.not_before_ns) + per);
      }
    }
    for (const auto& [id, l] : m.live) {
      if (l.rec.workflow_id == r.rec.id && l.stage == si) {
        f = std::max(f.value_or(0), l.rec.started_ns + per);
      }
    }
    return f.value_or(now);
  };
  std::vector<UpcomingStart> out;
  for (const auto& [id, r] : m.runs) {
    if (Terminal(r.rec.state)) continue;
    for (size_t si = 0; si < r.stages.size(); ++si) {
      if (r.stages[si].planned || r.stages[si].done) continue;
      std::optional<int64_t> at;
      bool all = true;
      for (int need : r.dag->preds(int(si))) {
        const std::optional<int64_t> f = finish_of(r, need);
        if (!f) {
          all = false;
          break;
        }
        at = std::max(at.value_or(*f), *f);
      }
      if (!all || !at) continue;
      const StageSpec& spec = r.spec.stages[si];
      UpcomingStart u;
      u.backend = spec.backend;
      u.shape = PredictedShape(spec, m.o.capacity);
      u.count = PredictedShardCount(spec);
      u.at_ns = *at;
      u.workflow_id = r.rec.id;
      u.workflow_name = r.rec.name;
      u.stage = spec.name;
      out.push_back(std::move(u));
    }
  }
  return out;
}

}  // namespace augur::workflow
