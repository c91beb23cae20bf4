// Scheduler: which pending shards start now, with what grant, and why (seeds 001, 002).
//
// Each pending shard gets a score:
//   priority   its stage's priority (1..10)
//   + boost    a user's temporary boost (`augurctl boost`), in priority points
//   + urgency  up to `urgency_weight` as its slack to the deadline along the critical path
//              shrinks: slack = deadline - now - the remaining critical path from this
//              shard to the workflow's end; 0 with slack of a whole path or more, the full
//              weight at zero slack or late (least slack / earliest deadline first). A
//              workflow without a deadline follows its plan (plan.h) when it has one: no
//              urgency, its shards in plan order. Without either it is judged against its
//              earliest possible finish (submission + critical path), so its critical
//              shards still go first.
//   + aging    `aging_per_minute` per minute beyond `aging_after_s` that the shard has
//              waited while its workflow started nothing (counted from the later of its
//              ready time and its workflow's last start), so that nothing starves: a
//              priority-1 shard outranks any newcomer after aging_after_s plus
//              (10 - 1) / aging_per_minute minutes. A workflow that keeps starting shards
//              is not starving, so aging does not reorder its own shards.
//   + fit      up to `fit_weight`: the share of its want that fits in the room left by our
//              grants, by the starts decided before its turn in this round, and by what
//              the forecast says the host's other load will take
//   - cost     up to `cost_weight`: its predicted cost as a share of the remaining budget
// Highest score first. Ties: least slack; then planned shards, their workflows in
// submission order and each workflow's in plan order; then the older ready time, then
// submission order. Since the fit is taken at a shard's turn, and the room only shrinks in
// a round, the scores of a round's starts never rise: a start never shrinks one made
// earlier in the same round. A shard whose predicted cost exceeds what is left of its
// budget waits. A round stops after `max_blocked_scan` shards in a row could not start;
// the rest wait "not considered this round" (a starving shard, aged to the top, is still
// reached).
//
// Admission goes through the Ledger: a shard is granted the most of its want that fits, and
// lower-score grants are shrunk toward their minimums to fit a higher-score one. When the
// best shard cannot fit even so, its minimum is reserved and lower shards may start only in
// what is left, or if they are predicted to end before the reserved one could start (EASY
// backfilling), so small shards cannot starve a large one. After the starts, shrunk grants
// grow back into what is free.
//
// Cost: O(n) to score n pending shards, plus O(k log n) for the k considered: the order is
// sorted lazily (nth_element chunks), so a round that stops early does not sort them all.
//
// Pure and deterministic: state and a clock in, decisions out; no I/O, no sleeping. The
// executor (one host) and the mesh (many) feed it the same way.
//
// Thread safety: functions of their arguments only.
#ifndef AUGUR_WORKFLOW_SCHEDULER_H_
#define AUGUR_WORKFLOW_SCHEDULER_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "workflow/ledger.h"
#include "workflow/resources.h"

namespace augur::workflow {

struct PendingShard {
  std::string key;          // the ledger holder id of the attempt it would start
  std::string group;        // its workflow: shards of one group share budget_left
  int priority = 5;         // 1..10, the stage's
  double boost = 0;         // priority points from a live `augurctl boost`
  int64_t ready_ns = 0;     // when it became runnable (needs met, backoff over)
  int64_t deadline_ns = 0;  // the workflow's; 0: none
  // Without a deadline: the workflow's earliest possible finish (submission + critical
  // path), which slack is then measured against. 0: no slack at all.
  int64_t ideal_finish_ns = 0;
  // The critical path from this shard's start to the workflow's end (its own predicted
  // time included), from predicted durations.
  double remaining_path_s = 0;
  double predicted_s = 0;   // its own predicted run time
  Resources want;
  Resources min;
  double cost_per_hour = 0;  // of `want` at its backend's cost class; 0: free
  double budget_left = std::numeric_limits<double>::infinity();  // its workflow's
  uint64_t seq = 0;          // submission order (ties; the FIFO baseline)
  // Its place in its workflow's plan (plan.h), smaller first; compared only with shards of
  // the same workflow. A workflow without a deadline that has a plan follows it: its shards
  // have no urgency and go in plan order. nullopt: no plan.
  std::optional<double> plan_order;
  uint64_t group_seq = 0;  // its workflow's submission order
  // When its workflow last started a shard (0: never). Aging counts from the later of this
  // and ready_ns: a workflow that keeps starting shards is not starving.
  int64_t group_last_start_ns = 0;
};

// A grant already running: when it is predicted to end (for backfilling).
struct RunningShard {
  std::string key;
  int64_t predicted_end_ns = 0;
};

// What the host's other load (everything but our grants) is predicted to leave free
// `ahead_s` seconds from now: the forecast's lower edge of free CPU and memory.
struct HorizonFree {
  double ahead_s = 0;
  Resources free;
};

struct HostView {
  // The forecast of free room per horizon, sorted by ahead_s. Empty: unknown, the ledger's
  // capacity alone counts.
  std::vector<HorizonFree> forecast;
  std::vector<RunningShard> running;

  // The least free room forecast while a shard of `run_s` seconds runs: over the horizons
  // up to run_s and the first one at or past it (which covers its end). FreeOver(0) is the
  // nearest horizon. nullopt when there is no forecast.
  std::optional<Resources> FreeOver(double run_s) const;
  // Caps every horizon at `cap` (cautious admission); with no forecast, `cap` becomes one.
  void Cap(const Resources& cap);
};

struct SchedulerOptions {
  double aging_per_minute = 1.0;
  double aging_after_s = 300;
  double urgency_weight = 5.0;
  double fit_weight = 0.5;
  double cost_weight = 2.0;
  // Reserve room for the best blocked shard (see the header comment). Off: plain greedy
  // backfill, which can starve large shards.
  bool reserve_for_blocked = true;
  // How many shards may start in one call (the executor's batch); 0: no limit.
  size_t max_starts = 0;
  // A round stops after this many shards in a row could not start (0: never); the rest are
  // listed as waiting, "not considered this round". Shards are taken best first, so an aged
  // (starving) shard is still reached; what is lost is backfilling deep in the queue.
  size_t max_blocked_scan = 256;
};

// The parts of one shard's score, for `augurctl status --explain`.
struct ScoreParts {
  double priority = 0;
  double boost = 0;
  double urgency = 0;
  double aging = 0;
  double fit = 0;
  double cost = 0;  // subtracted
  double total = 0;
  double slack_s = std::numeric_limits<double>::infinity();  // inf without a deadline
  double predicted_cost = 0;
};

ScoreParts ScoreShard(const PendingShard& shard, const Resources& room, int64_t now_ns,
                      const SchedulerOptions& options);

struct StartDecision {
  std::string key;
  Resources grant;
  ScoreParts score;
  std::vector<GrantChange> changes;  // shrinks (pre-emptions) of others that made room
};

struct WaitingShard {
  std::string key;
  ScoreParts score;
  std::string reason;  // "needs 2 cpu, 512Mi; 0.5 cpu, 1Gi free", "over budget", ...
};

struct ScheduleResult {
  std::vector<StartDecision> starts;    // in the order decided
  std::vector<GrantChange> grow_back;   // after the starts
  // In the order considered (best first), then those not considered this round.
  std::vector<WaitingShard> waiting;
  std::string reserved_for;             // the blocked shard room is held for, or ""
};

// Decides which of `pending` start now and applies the grants (and the shrinks they cause,
// and the grow-backs) to `ledger`. The executor then drives the backends and corrects the
// ledger with what they really granted (Ledger::ApplyChange). Pending keys must not hold
// grants already.
ScheduleResult Schedule(const std::vector<PendingShard>& pending, Ledger& ledger,
                        const HostView& host, int64_t now_ns,
                        const SchedulerOptions& options = {});

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_SCHEDULER_H_
