// Prewarm: the pure decisions of pre-warming (issue 11; seeds 000 "pre-warming of resources"
// and 003 "a warm-up phase where pre-allocated instances are tested and validated"): which
// backend instances to prepare ahead of the shard starts that are predicted, and which
// prepared ones to let go.
//
// Predictions come from two places, both pure:
//   - within a workflow, Engine::Upcoming() (engine.h): a stage whose needs all run becomes
//     ready when the last of them is predicted to finish;
//   - across workflows, PredictFollowers() below: "B is submitted within a window after A",
//     learned from the submission history with a minimum support.
// PlanPrewarm() matches the predictions against the warm pool and says what to warm now and
// what to release. The executor's WarmPool (warm_pool.h) does the I/O: it provisions,
// probes, hands warm instances to starting shards, and releases.
//
// The rules, all in PlanPrewarm:
//   - a prediction is live while now <= at + idle_timeout (a start predicted longer ago
//     than that has not happened: the prediction was wrong), and due once now >= at - lead;
//   - warm instances are matched to the units (one per predicted shard) of live
//     predictions, the due ones first, larger shapes first, each to the smallest instance of
//     its backend that can hold it (equal or larger in every dimension);
//   - due units left without an instance are warmed, at their exact shape, as far as the
//     caps allow (max per backend, max in all, probing instances counted);
//   - a warm instance unused for idle_timeout since it became warm is released (idle); one
//     that no live prediction wants is released (unpredicted), probing or not; a probing
//     one is never idle (its probe's timeout is the executor's);
//   - a pool over a cap (caps lowered, or more found) gives up the instances kept for the
//     least pressing predictions first (over cap);
//   - nothing is warmed that no due prediction wants, and the pool never ends over a cap.
// Same inputs, same plan, whatever the order they come in.
//
// A prediction that stays due for longer than idle_timeout can have its instance released
// idle and warmed once more before it goes stale: at most idle_timeout + lead of waste per
// predicted shard.
//
// Thread safety: plain functions and values.
#ifndef AUGUR_WORKFLOW_PREWARM_H_
#define AUGUR_WORKFLOW_PREWARM_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "workflow/resources.h"

namespace augur::workflow {

struct StageSpec;
struct WorkflowSpec;

// A predicted start of a stage's shards.
struct UpcomingStart {
  std::string backend;
  Resources shape;          // what each shard will want (the grant it is likely to get)
  uint32_t count = 1;       // shards
  int64_t at_ns = 0;        // predicted start (CLOCK_REALTIME)
  std::string workflow_id;  // "" for a workflow not submitted yet (predicted to follow)
  std::string workflow_name;
  std::string stage;
  // Who the prediction is for, for hit and miss accounting: "<workflow id>/<stage>", or
  // "name:<workflow name>/<stage>" for a workflow not submitted yet.
  std::string Key() const;
};

// An instance in the warm pool.
struct WarmInstance {
  std::string name;  // the pool's own name for it ("warm-<hash>")
  std::string backend;
  Resources shape;       // what the backend granted it
  int64_t since_ns = 0;  // when it became warm (probe passed); when warming began if probing
  bool probing = false;  // not ready yet
};

struct PrewarmOptions {
  int64_t lead_ns = 5'000'000'000;           // warm this long before a predicted start
  int64_t idle_timeout_ns = 60'000'000'000;  // release a warm instance unused this long
  uint32_t max_per_backend = 8;
  uint32_t max_total = 8;
};

struct WarmOrder {
  std::string backend;
  Resources shape;
  uint32_t count = 0;
  std::string reason;  // for the log: which predictions, and when they are due
};

struct ReleaseOrder {
  enum class Why { kIdle, kUnpredicted, kOverCap };
  std::string name;
  Why why = Why::kIdle;
};
std::string_view ReleaseWhyName(ReleaseOrder::Why w);  // "idle", "unpredicted", "over cap"

struct PrewarmPlan {
  std::vector<WarmOrder> warm;        // by (backend, shape), in the order first wanted
  std::vector<ReleaseOrder> release;  // by name
  std::vector<std::string> due;       // Key()s of the due predictions, sorted, unique
};

PrewarmPlan PlanPrewarm(std::span<const UpcomingStart> upcoming, std::span<const WarmInstance> pool,
                        int64_t now_ns, const PrewarmOptions& options);

// What a stage's shards are predicted to want: its resources, within what the backends can
// grant at once (`capacity`; a zero dimension there means no bound).
Resources PredictedShape(const StageSpec& stage, const Resources& capacity);
// How many shards a stage is predicted to cut: `count` when given, one per item, else 1.
uint32_t PredictedShardCount(const StageSpec& stage);
// The stages of `spec` that start as soon as it is submitted (no needs), predicted at `at`,
// for a workflow named `spec.name` that is not submitted yet.
std::vector<UpcomingStart> RootStarts(const WorkflowSpec& spec, const Resources& capacity,
                                      int64_t at_ns);

// Demand (seed 003: pre-allocate ahead of predicted peaks): the root stages (`roots`, from
// RootStarts) of a workflow whose coming hour is forecast at `per_hour` submissions (the
// demand model, events included), when that is at least `min_per_hour`: as many shards as
// are in flight at once at that rate (Little's law: per_hour / 3600 x shard_s(stage) x the
// stage's shards per submission), at least one, at most ceil(per_hour) submissions' worth.
// Empty below `min_per_hour`.
std::vector<UpcomingStart> DemandStarts(std::vector<UpcomingStart> roots, double per_hour,
                                        const std::function<double(const std::string&)>& shard_s,
                                        double min_per_hour);

// ---- Across workflows: "B follows A" ---------------------------------------------------

struct Submission {
  std::string name;  // the workflow's name
  int64_t at_ns = 0;
};

struct FollowOptions {
  int64_t window_ns = 600'000'000'000;  // B counts as following A within this
  uint32_t last = 5;                    // judged on A's last this many submissions (windows closed)
  uint32_t min_support = 3;             // in at least this many of them
};

// "B was submitted within the window after A in `support` of A's last `judged` submissions
// whose window has closed, `delay_ns` after it (the median of the first B after each)".
struct FollowPair {
  std::string first;  // A
  std::string then;   // B (may be A itself: a workflow that is submitted again)
  uint32_t support = 0;
  uint32_t judged = 0;
  int64_t delay_ns = 0;
};

// Every pair with at least min_support, sorted by (first, then). Submissions after `now`
// are ignored; an A submission is judged only once its window has closed (at + window <=
// now).
std::vector<FollowPair> LearnFollows(std::span<const Submission> history, int64_t now_ns,
                                     const FollowOptions& options);

// A workflow predicted to be submitted: the latest submission of `after` is within the
// window, a pair (after, name) holds, and `name` has not been submitted since.
struct Follower {
  std::string name;
  std::string after;
  int64_t at_ns = 0;  // the latest `after` plus the pair's delay
  uint32_t support = 0;
  uint32_t judged = 0;
};

// One per predicted name (the earliest when several workflows predict it), sorted by name.
std::vector<Follower> PredictFollowers(std::span<const Submission> history, int64_t now_ns,
                                       const FollowOptions& options);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_PREWARM_H_
