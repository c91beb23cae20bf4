// WarmPool: the executor's pool of pre-warmed backend instances, the I/O half of
// pre-warming (the decisions are prewarm.h's; docs/WORKFLOWS.md "Pre-warming").
//
// Each engine round the executor calls Tick() with the DAG's predicted starts
// (Engine::Upcoming); the pool adds the cross-workflow ones (PredictFollowers over the
// submissions it was told of), asks PlanPrewarm what to do, and does it:
//   warm     record the instance in the store (WorkflowStore::PutWarm: state before
//            action), Backend::Prewarm(shape, n) as a hint (the process backend answers that
//            it has nothing to pre-warm; libvirt defines domains ahead), Provision it as
//            "warm-<hash>" with exactly the shape, and run the warm-up probe in it when one
//            is configured; it is warm when the probe exits 0 within probe_timeout (without
//            a probe: when the backend says the instance is ready). A failed probe releases
//            the instance and counts a probe failure; warming on that backend then pauses
//            (1 s, doubling to 60 s) until one succeeds.
//   release  an idle or unpredicted instance; the time it was warm is wasted.
// Start() takes a warm instance for a starting shard through Take(): the smallest ready one
// on the shard's backend that holds the grant, resized to the grant when larger. A hit saves
// the instance's provisioning time as measured when it was warmed. No fitting ready instance
// for a stage that was predicted is a miss; a start nobody predicted is cold.
//
// The ledger (ledger.h) does not count warm instances: a process-backend instance is an
// empty cgroup and a pre-warmed libvirt domain is started, so only the second holds real
// memory; both are bounded by max_instances and idle_timeout, and a backend's own
// accounting counts their grants. So a warm instance is provisioned only when the backend
// reports room for it beyond `keep_free` (the merge reserve), and when a provision for a
// shard or a merge is refused for room, Evict() releases the backend's unused warm
// instances and the provision is tried once more.
//
// Durability: the store's prewarm table lists every warm instance not yet used. Taking one
// deletes its row in the same transaction as the attempt record that names its handle
// (the caller runs Forget() inside it), so kill -9 at any point leaves each instance either
// an attempt's (re-attached like a provisioned one) or the pool's; Restore() releases the
// pool's, which were never used. A row without a handle (killed during the provision) is
// provisioned again by its name, which is idempotent, to learn the handle, and released.
//
// Thread safety: the engine thread calls everything except stats(), which any thread may
// call.
#ifndef AUGUR_WORKFLOW_WARM_POOL_H_
#define AUGUR_WORKFLOW_WARM_POOL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/prewarm.h"
#include "workflow/resources.h"
#include "workflow/store.h"
#include "workflow/workflow_spec.h"

namespace augur::plugin {
class Backend;
}

namespace augur::workflow {

struct WarmPoolOptions {
  bool enabled = false;
  PrewarmOptions plan;
  FollowOptions follow;            // window_ns 0: no cross-workflow predictions
  std::vector<std::string> probe;  // argv; empty: the backend's own readiness
  std::chrono::milliseconds probe_timeout{10'000};
  std::string scratch_dir;  // the probe's working directory and stderr
  Resources capacity;       // what one shard can be granted at most (shapes of predictions)
  Resources keep_free;      // left free on a backend when warming (room for merges)
  // Demand (DemandStarts, prewarm.h): a workflow forecast at least this many submissions in
  // the coming hour has its root stages kept warm; 0: off.
  double demand_min_per_hour = 1;
};

// What the demand model forecasts for a workflow's coming hour (submissions), and how long
// a shard of one of its stages is predicted to run; the executor answers from its models.
struct DemandView {
  std::function<double(const std::string& workflow)> per_hour;
  std::function<double(const std::string& workflow, const std::string& stage)> shard_s;
};

// Counters since the agent started, and the pool now.
struct PrewarmStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t cold = 0;  // starts that no prediction was due for
  uint64_t warmed = 0;
  uint64_t warm_failures = 0;  // provisions for the pool that failed
  uint64_t probe_failures = 0;
  uint64_t released_idle = 0;
  uint64_t released_unpredicted = 0;  // and over a cap, and evicted for room
  double saved_s = 0;                 // provisioning time the hits did not spend
  double wasted_instance_s = 0;       // time warm and never used, of instances released
  uint32_t warm_now = 0;
  uint32_t probing_now = 0;
};

class WarmPool {
 public:
  using BackendLookup = std::function<plugin::Backend*(const std::string& name)>;
  WarmPool(WarmPoolOptions options, BackendLookup backends, WorkflowStore* store);
  ~WarmPool();

  // After a restart: the warm instances the store lists that no attempt holds (`in_use`:
  // the instance handles of re-attached attempts) are released, now or, for a backend not up
  // yet, in a later Tick; and the past submissions the cross-workflow predictions learn from
  // are read from the store.
  void Restore(const std::set<std::string>& in_use);

  // A workflow was submitted (the cross-workflow predictions learn from it).
  void Submitted(const std::string& id, const WorkflowSpec& spec, int64_t now_ns);

  // One round: probes, left-over releases, then the plan for `upcoming` (the DAG's
  // predictions) and the cross-workflow ones, acted on.
  // With `demand`, workflows forecast busy in the coming hour have their root stages kept
  // warm too (DemandStarts).
  void Tick(const std::vector<UpcomingStart>& upcoming, int64_t now_ns,
            const DemandView* demand = nullptr);

  // A warm instance for a starting attempt, resized to its grant; counts a hit, a miss or a
  // cold start. nullopt when none fits (the caller provisions).
  struct Taken {
    std::string name;    // for Forget()
    std::string handle;  // the backend's instance handle
    Resources granted;   // what the backend says it has after the resize
  };
  std::optional<Taken> Take(const AttemptRecord& attempt, int64_t now_ns);
  // The attempt that took `name` is being recorded: its row goes, in the caller's
  // transaction.
  Status Forget(const std::string& name);
  // Releases every warm instance on `backend` that is not in use (a provision found no
  // room); true when any was released.
  bool Evict(const std::string& backend, int64_t now_ns);

  PrewarmStats stats() const;
  // The "prewarm" object `augurctl status --json` shows for a workflow: its own hits,
  // misses, cold starts and time saved, its stages predicted now, and the pool's counters.
  nlohmann::json Json(const std::string& workflow_id) const;

 private:
  struct Entry;
  enum class Why { kIdle, kUnpredicted, kProbeFailed, kEvicted };
  void Warm(plugin::Backend& b, const WarmOrder& order, int64_t now);
  void StartProbe(plugin::Backend& b, Entry& e, int64_t now);
  void PollOne(Entry& e, int64_t now);
  void Release(const std::string& name, Why why, int64_t now);
  void ReleaseLeftovers();
  void Failed(const std::string& backend, int64_t now);
  std::vector<UpcomingStart> Followers(int64_t now);
  std::vector<UpcomingStart> Demanded(int64_t now, const DemandView& demand);
  void Publish();

  WarmPoolOptions o_;
  BackendLookup backends_;
  WorkflowStore* store_;
  std::map<std::string, Entry> pool_;     // by name
  std::vector<WarmRecord> leftovers_;     // from before a restart, to release
  std::vector<std::string> due_;          // the last plan's due keys, sorted
  std::vector<UpcomingStart> predicted_;  // the last plan's input, for status
  uint64_t seq_ = 0;
  // Per backend: consecutive failures and no warming before `until`.
  struct Pause {
    uint32_t failures = 0;
    int64_t until_ns = 0;
  };
  std::map<std::string, Pause> paused_;
  std::set<std::string> hinted_;  // backends whose Prewarm hint answered (logged once)
  // Cross-workflow: submissions, the workflow name of each id, the latest spec by name.
  std::vector<Submission> submissions_;
  std::map<std::string, std::string> name_of_;
  std::map<std::string, std::string> latest_id_;  // by name: whose spec is read when needed
  std::map<std::string, std::optional<WorkflowSpec>> parsed_;  // by name
  struct PerWorkflow {
    uint64_t hits = 0, misses = 0, cold = 0;
    double saved_s = 0;
  };
  std::map<std::string, PerWorkflow> per_workflow_;

  mutable std::mutex mu_;
  PrewarmStats stats_;  // guarded by mu_
  PrewarmStats local_;  // the engine thread's copy, published into stats_
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_WARM_POOL_H_
