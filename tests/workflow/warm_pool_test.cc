// The executor's warm pool (src/workflow/warm_pool.h) against a scripted backend and a real
// SQLite store: warm, probe, hit with a resize, miss, probe failure and its pause, idle
// release with its wasted seconds, eviction for room, the cross-workflow predictions, and
// what a restart finds in the store.
#include "workflow/warm_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "plugin/backend.h"

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kMi = 1ULL << 20;

// A backend that does what it is told: instances are names, the probe's outcome is set by
// the test, capacity is counted as the process backend counts it.
class ScriptedBackend : public plugin::Backend {
 public:
  explicit ScriptedBackend(std::string name) : name_(std::move(name)) {}
  const std::string& name() const override { return name_; }
  Result<plugin::BackendInfo> Describe() override {
    plugin::BackendInfo i;
    i.name = name_;
    i.healthy = true;
    i.capacity = capacity;
    i.available = capacity;
    for (const auto& [h, r] : instances) {
      i.available.cpu_cores -= r.cpu_cores;
      i.available.memory_bytes -= r.memory_bytes;
    }
    return i;
  }
  Result<plugin::Instance> Provision(const plugin::AllocRequest& req) override {
    ++provisions;
    const std::string h = "h-" + req.name;
    if (instances.contains(h))
      return plugin::Instance{h, instances[h], plugin::InstanceState::kReady};
    auto avail = Describe()->available;
    if (req.min.cpu_cores > avail.cpu_cores + 1e-9 || req.min.memory_bytes > avail.memory_bytes) {
      return Err(Status::Unavailable("provision: no capacity"));
    }
    instances[h] = req.want;
    return plugin::Instance{h, req.want, plugin::InstanceState::kReady};
  }
  Result<uint32_t> Prewarm(const plugin::AllocRequest&, uint32_t) override {
    ++hints;
    return Err(Status::FailedPrecondition("prewarm: nothing to pre-warm"));
  }
  Result<plugin::Resources> Resize(const std::string& h, const plugin::Resources& t) override {
    if (!instances.contains(h)) return Err(Status::NotFound("resize: " + h));
    resized[h] = t;
    return instances[h] = t;
  }
  Result<std::string> Run(const std::string& h, const plugin::Task& t) override {
    if (!instances.contains(h)) return Err(Status::NotFound("run: " + h));
    runs.push_back(t.argv);
    const std::string inv = h + "/" + std::to_string(runs.size());
    tasks[inv] = probe_outcome;
    return inv;
  }
  Result<plugin::TaskStatus> Poll(const std::string& inv, std::chrono::milliseconds) override {
    if (!tasks.contains(inv)) return Err(Status::NotFound("poll: " + inv));
    return tasks[inv];
  }
  Status Cancel(const std::string& inv) override {
    tasks[inv].state = plugin::TaskState::kKilled;
    return Status::OK();
  }
  Status Release(const std::string& h) override {
    if (instances.erase(h) == 0) return Status::NotFound("release: " + h);
    released.push_back(h);
    return Status::OK();
  }
  Result<plugin::RecoverResult> Recover(const std::vector<std::string>& is,
                                        const std::vector<std::string>&) override {
    plugin::RecoverResult r;
    for (const auto& h : is) {
      r.instances.push_back(instances.contains(h) ? plugin::InstanceState::kReady
                                                  : plugin::InstanceState::kGone);
    }
    return r;
  }

  std::string name_;
  plugin::Resources capacity{8, 8192 * kMi};
  std::map<std::string, plugin::Resources> instances;
  std::map<std::string, plugin::Resources> resized;
  std::map<std::string, plugin::TaskStatus> tasks;
  std::vector<std::vector<std::string>> runs;
  std::vector<std::string> released;
  plugin::TaskStatus probe_outcome{plugin::TaskState::kExited, 0};
  int provisions = 0;
  int hints = 0;
};

class WarmPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("augur-warm-pool-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto st = WorkflowStore::Open((dir_ / "workflows.db").string());
    ASSERT_TRUE(st) << st.error().ToString();
    store_ = std::move(*st);
  }
  void TearDown() override { fs::remove_all(dir_); }

  WarmPoolOptions Options() {
    WarmPoolOptions o;
    o.enabled = true;
    o.plan.lead_ns = 5 * kSec;
    o.plan.idle_timeout_ns = 60 * kSec;
    o.plan.max_per_backend = o.plan.max_total = 4;
    o.follow.window_ns = 600 * kSec;
    o.probe = {"sh", "-c", "true"};
    o.probe_timeout = std::chrono::milliseconds(10'000);
    o.scratch_dir = (dir_ / "prewarm").string();
    o.capacity = {8, 8192 * kMi};
    o.keep_free = {0.2, 128 * kMi};
    return o;
  }
  std::unique_ptr<WarmPool> Pool(WarmPoolOptions o) {
    return std::make_unique<WarmPool>(
        o,
        [this](const std::string& n) -> plugin::Backend* { return n == "process" ? &b_ : nullptr; },
        store_.get());
  }
  static UpcomingStart Upcoming(int64_t at, uint32_t count = 2, Resources shape = {1, 256 * kMi}) {
    UpcomingStart u;
    u.backend = "process";
    u.shape = shape;
    u.count = count;
    u.at_ns = at;
    u.workflow_id = "wf-1";
    u.workflow_name = "wf";
    u.stage = "b";
    return u;
  }
  static AttemptRecord Attempt(const std::string& stage, Resources grant,
                               const std::string& wf = "wf-1") {
    AttemptRecord a;
    a.attempt_id = wf + "/" + stage + "/0#1";
    a.workflow_id = wf;
    a.stage = stage;
    a.backend = "process";
    a.grant = grant;
    return a;
  }

  fs::path dir_;
  std::unique_ptr<WorkflowStore> store_;
  ScriptedBackend b_{"process"};
};

TEST_F(WarmPoolTest, WarmsProbesAndHandsAWarmInstanceToAPredictedShardResizedToItsGrant) {
  auto pool = Pool(Options());
  const int64_t t = 1000 * kSec;
  pool->Tick({Upcoming(t + 3 * kSec)}, t);
  EXPECT_EQ(b_.hints, 1) << "the backend is asked to prepare ahead";
  ASSERT_EQ(b_.instances.size(), 2u);
  ASSERT_EQ(b_.runs.size(), 2u);
  EXPECT_THAT(b_.runs[0], ElementsAre("sh", "-c", "true")) << "the probe ran in each";
  auto rows = store_->Warm();
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2u) << "recorded before a crash could lose them";
  EXPECT_EQ(rows->at(0).instance, "h-" + rows->at(0).name);
  EXPECT_EQ(pool->stats().probing_now, 2u);
  EXPECT_FALSE(pool->Take(Attempt("b", {1, 256 * kMi}), t)) << "still probing: a miss";
  EXPECT_EQ(pool->stats().misses, 1u);

  pool->Tick({Upcoming(t + 3 * kSec)}, t + kSec);  // the probes exited 0
  EXPECT_EQ(pool->stats().warm_now, 2u);
  auto taken = pool->Take(Attempt("b", {0.5, 128 * kMi}), t + 3 * kSec);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->granted, (Resources{0.5, 128 * kMi})) << "resized to the grant";
  EXPECT_EQ(b_.resized.size(), 1u);
  ASSERT_TRUE(pool->Forget(taken->name).ok());
  EXPECT_EQ(store_->Warm()->size(), 1u);
  // A grant larger than any warm instance is provisioned as usual.
  EXPECT_FALSE(pool->Take(Attempt("b", {2, 256 * kMi}), t + 3 * kSec));
  const PrewarmStats s = pool->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_GT(s.saved_s, 0);
  const nlohmann::json j = pool->Json("wf-1");
  EXPECT_EQ(j["hits"], 1);
  EXPECT_EQ(j["pool"]["warmed"], 2);
  ASSERT_EQ(j["predicted"].size(), 1u);
  EXPECT_EQ(j["predicted"][0]["stage"], "b");
  // A start of a stage nobody predicted is cold.
  EXPECT_FALSE(pool->Take(Attempt("x", {8, 8192 * kMi}, "other"), t + 3 * kSec));
  EXPECT_EQ(pool->stats().cold, 1u);
}

TEST_F(WarmPoolTest, AFailedProbeReleasesTheInstanceCountsAndPausesWarming) {
  b_.probe_outcome = {plugin::TaskState::kExited, 3};
  auto pool = Pool(Options());
  const int64_t t = 1000 * kSec;
  pool->Tick({Upcoming(t)}, t);
  pool->Tick({Upcoming(t)}, t + kSec / 10);
  EXPECT_EQ(pool->stats().probe_failures, 2u);
  EXPECT_EQ(b_.released.size(), 2u);
  EXPECT_THAT(b_.instances, IsEmpty());
  EXPECT_THAT(*store_->Warm(), IsEmpty());
  EXPECT_FALSE(pool->Take(Attempt("b", {1, 256 * kMi}), t + kSec / 10)) << "never used";
  // Paused (1 s, then 2 s: two failures): nothing new is warmed meanwhile.
  pool->Tick({Upcoming(t)}, t + kSec);
  EXPECT_EQ(b_.provisions, 2);
  // A probe that does not end within its timeout fails too.
  b_.probe_outcome = {plugin::TaskState::kRunning, 0};
  pool->Tick({Upcoming(t)}, t + 3 * kSec);
  EXPECT_EQ(b_.provisions, 4);
  pool->Tick({Upcoming(t)}, t + 12 * kSec);
  EXPECT_EQ(pool->stats().probing_now, 2u) << "within its 10 s";
  EXPECT_EQ(pool->stats().probe_failures, 2u);
  pool->Tick({}, t + 14 * kSec);
  EXPECT_EQ(pool->stats().probe_failures, 4u);
  EXPECT_EQ(pool->stats().hits, 0u);
  EXPECT_THAT(b_.instances, IsEmpty());
}

TEST_F(WarmPoolTest, AnIdleInstanceIsReleasedAfterItsTimeoutAndItsTimeIsWasted) {
  WarmPoolOptions o = Options();
  o.probe.clear();  // ready when provisioned
  o.plan.idle_timeout_ns = 2 * kSec;
  auto pool = Pool(o);
  const int64_t t = 1000 * kSec;
  pool->Tick({Upcoming(t + 4 * kSec, 1)}, t);
  EXPECT_EQ(pool->stats().warm_now, 1u);
  EXPECT_TRUE(b_.runs.empty()) << "no probe configured";
  pool->Tick({Upcoming(t + 4 * kSec, 1)}, t + 2 * kSec + kSec / 2);
  PrewarmStats s = pool->stats();
  EXPECT_EQ(s.released_idle, 1u);
  EXPECT_NEAR(s.wasted_instance_s, 2.5, 1e-9);
  // No longer predicted: released too.
  pool->Tick({}, t + 3 * kSec);
  s = pool->stats();
  EXPECT_EQ(s.released_unpredicted, 1u) << "warmed again after the idle release, then dropped";
  EXPECT_EQ(s.warm_now, 0u);
  EXPECT_NEAR(s.wasted_instance_s, 3.0, 1e-9);
  EXPECT_THAT(b_.instances, IsEmpty());
}

TEST_F(WarmPoolTest, NothingIsWarmedWithoutRoomAndEvictGivesTheRoomBack) {
  WarmPoolOptions o = Options();
  o.probe.clear();
  b_.capacity = {2, 1024 * kMi};
  auto pool = Pool(o);
  const int64_t t = 1000 * kSec;
  pool->Tick({Upcoming(t, 4, {1, 256 * kMi})}, t);
  EXPECT_EQ(b_.instances.size(), 1u) << "a second would leave less than keep_free";
  EXPECT_TRUE(pool->Evict("process", t + kSec));
  EXPECT_THAT(b_.instances, IsEmpty());
  EXPECT_FALSE(pool->Evict("process", t + kSec));
  EXPECT_NEAR(pool->stats().wasted_instance_s, 1.0, 1e-9);
}

TEST_F(WarmPoolTest, ARestartReleasesTheWarmInstancesNoAttemptTookAndKeepsTheOthers) {
  WarmPoolOptions o = Options();
  o.probe.clear();
  const int64_t t = 1000 * kSec;
  {
    auto pool = Pool(o);
    pool->Tick({Upcoming(t, 3)}, t);
    ASSERT_EQ(store_->Warm()->size(), 3u);
  }  // "kill -9": the pool is gone, its instances and rows are not
  // One was taken by an attempt (its Forget did not happen), one was being provisioned.
  auto rows = *store_->Warm();
  const std::string used = rows[0].instance;
  WarmRecord half = rows[2];
  half.instance = "";
  ASSERT_TRUE(store_->PutWarm(half).ok());
  auto pool = Pool(o);
  pool->Restore({used});
  EXPECT_THAT(*store_->Warm(), IsEmpty());
  EXPECT_EQ(b_.instances.size(), 1u);
  EXPECT_TRUE(b_.instances.contains(used)) << "the attempt's instance stays";
  EXPECT_EQ(b_.released.size(), 2u);
}

TEST_F(WarmPoolTest, AWorkflowThatUsuallyFollowsAnotherHasItsFirstStagesWarmed) {
  WarmPoolOptions o = Options();
  o.probe.clear();
  auto pool = Pool(o);
  const char kA[] = "workflow: a\nstages:\n  - name: x\n    run: [true]\n";
  const char kB[] = R"(workflow: b
stages:
  - name: first
    resources: {cpu: 0.5, memory: 64Mi}
    shards: {items: [p, q]}
    run: [echo, "{shard.item}"]
  - name: second
    needs: [first]
    run: [true]
)";
  auto a = ParseWorkflow(kA);
  auto b = ParseWorkflow(kB);
  ASSERT_TRUE(a && b);
  // b came 30 s after a, three times.
  int64_t t = 0;
  for (int i = 0; i < 3; ++i, t += 3600 * kSec) {
    pool->Submitted("a-" + std::to_string(i), *a, t);
    pool->Submitted("b-" + std::to_string(i), *b, t + 30 * kSec);
    pool->Tick({}, t + 31 * kSec);
  }
  EXPECT_THAT(b_.instances, IsEmpty()) << "support comes with the third pair";
  pool->Submitted("a-3", *a, t);
  pool->Tick({}, t + 10 * kSec);
  EXPECT_THAT(b_.instances, IsEmpty()) << "b is predicted at +30 s; lead 5 s";
  pool->Tick({}, t + 26 * kSec);
  ASSERT_EQ(b_.instances.size(), 2u) << "b's first stage: two shards";
  EXPECT_EQ(b_.instances.begin()->second, (plugin::Resources{0.5, 64 * kMi}));
  pool->Submitted("b-3", *b, t + 29 * kSec);
  auto taken = pool->Take(Attempt("first", {0.5, 64 * kMi}, "b-3"), t + 29 * kSec);
  ASSERT_TRUE(taken);
  EXPECT_EQ(pool->stats().hits, 1u);
  EXPECT_EQ(pool->Json("b-3")["hits"], 1);
  // b has come: the other instance is no longer predicted; the taken one is the shard's.
  pool->Tick({}, t + 30 * kSec);
  EXPECT_EQ(b_.released.size(), 1u);
  ASSERT_EQ(b_.instances.size(), 1u);
  EXPECT_EQ(b_.instances.begin()->first, taken->handle);
}

TEST_F(WarmPoolTest, AfterARestartTheSubmissionHistoryAndTheFilesComeFromTheStore) {
  WarmPoolOptions o = Options();
  o.probe.clear();
  const char kA[] = "workflow: a\nstages:\n  - name: x\n    run: [true]\n";
  const char kB[] = R"(workflow: b
stages:
  - name: first
    resources: {cpu: 0.25, memory: 32Mi}
    run: [true]
)";
  auto put = [&](const std::string& id, const std::string& name, const char* yaml, int64_t at) {
    WorkflowRecord w;
    w.id = id;
    w.name = name;
    w.spec_yaml = yaml;
    w.origin = name + ".yaml";
    w.state = WorkflowState::kSucceeded;
    w.submitted_ns = at;
    ASSERT_TRUE(store_->PutWorkflow(w).ok());
  };
  int64_t t = 0;
  for (int i = 0; i < 3; ++i, t += 3600 * kSec) {
    put("a-" + std::to_string(i), "a", kA, t);
    put("b-" + std::to_string(i), "b", kB, t + 20 * kSec);
  }
  auto pool = Pool(o);
  pool->Restore({});
  auto a = ParseWorkflow(kA);
  ASSERT_TRUE(a);
  pool->Submitted("a-3", *a, t);
  pool->Tick({}, t + kSec);
  EXPECT_THAT(b_.instances, IsEmpty()) << "b is predicted 20 s after a; lead 5 s";
  pool->Tick({}, t + 16 * kSec);
  ASSERT_EQ(b_.instances.size(), 1u) << "b's file was read from the store";
  EXPECT_EQ(b_.instances.begin()->second, (plugin::Resources{0.25, 32 * kMi}));
}

TEST_F(WarmPoolTest, AStoreWrittenBeforeTheWarmTableGainsItWhenOpened) {
  store_.reset();
  const std::string path = (dir_ / "workflows.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE prewarm", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto st = WorkflowStore::Open(path);
  ASSERT_TRUE(st) << st.error().ToString();
  WarmRecord w{"warm-1", "process", "h-1", {1, 256 * kMi}, 42};
  ASSERT_TRUE((*st)->PutWarm(w).ok());
  auto rows = (*st)->Warm();
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->at(0).instance, "h-1");
  EXPECT_EQ(rows->at(0).shape, w.shape);
  EXPECT_EQ(rows->at(0).created_ns, 42);
  ASSERT_TRUE((*st)->DeleteWarm("warm-1").ok());
  ASSERT_TRUE((*st)->DeleteWarm("warm-1").ok()) << "twice is fine";
  EXPECT_THAT(*(*st)->Warm(), IsEmpty());
}

TEST_F(WarmPoolTest, DisabledItDoesNothing) {
  WarmPoolOptions o = Options();
  o.enabled = false;
  auto pool = Pool(o);
  pool->Tick({Upcoming(0)}, 0);
  EXPECT_THAT(b_.instances, IsEmpty());
  EXPECT_FALSE(pool->Take(Attempt("b", {1, 256 * kMi}), 0));
  EXPECT_EQ(pool->stats().misses + pool->stats().cold, 0u);
}

}  // namespace
}  // namespace augur::workflow
