// Replication and failover of workflows (docs/MESH.md, "Replication and failover"): real
// executors in one process, each with its own state directory, SQLite store, engine thread
// and process backend (the real plugin, loaded in-process, with its own cgroup parent),
// joined by an in-process link that stands in for the mesh node (transport and membership):
// it can kill a host (its executor goes, as with kill -9: nothing is said to the others) and
// cut one off. Skipped, with the reason, where cgroups cannot be made.
#include "mesh/workflow_replication.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/process_backend.h"
#include "workflow/executor.h"
#include "workflow/store.h"
#include "mesh/workflow_log.h"

namespace augur::mesh {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using workflow::Executor;
using workflow::Resources;

// Hosts in one process. A message goes to the receiver's executor unless either end is dead
// or they are on different sides of a cut. Each host's membership: the hosts it can reach.
class Net {
 public:
  void Attach(const std::string& name, Executor* e) {
    std::lock_guard lock(mu_);
    hosts_[name] = e;
    dead_.erase(name);
  }
  // kill -9: the executor is gone and nothing more reaches it or comes from it.
  void Kill(const std::string& name) {
    std::lock_guard lock(mu_);
    hosts_[name] = nullptr;
    dead_.insert(name);
  }
  void Isolate(const std::string& name) {
    std::lock_guard lock(mu_);
    isolated_.insert(name);
  }
  void Heal() {
    std::lock_guard lock(mu_);
    isolated_.clear();
  }
  void Deliver(const std::string& from, const std::string& to, Channel ch, std::string payload) {
    std::lock_guard lock(mu_);
    if (!Reach(from, to)) return;
    auto it = hosts_.find(to);
    if (it != hosts_.end() && it->second != nullptr) {
      it->second->OnMeshMessage(from, uint32_t(ch), std::move(payload));
    }
  }
  std::vector<std::string> LiveFrom(const std::string& self) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, e] : hosts_) {
      if (Reach(self, name)) out.push_back(name);
    }
    return out;
  }
  void DetachAll() {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : hosts_) e = nullptr;
  }

 private:
  bool Reach(const std::string& a, const std::string& b) const {
    if (dead_.contains(a) || dead_.contains(b)) return false;
    return a == b || (!isolated_.contains(a) && !isolated_.contains(b));
  }
  mutable std::mutex mu_;
  std::map<std::string, Executor*> hosts_;
  std::set<std::string> dead_, isolated_;
};

class NetLink : public MeshLink {
 public:
  NetLink(Net* net, std::string self) : net_(net), self_(std::move(self)) {}
  const std::string& self() const override { return self_; }
  Status Send(const std::string& host, Channel ch, std::string payload) override {
    net_->Deliver(self_, host, ch, std::move(payload));
    return Status::OK();
  }
  std::vector<PlacementPeer> Peers() const override { return {}; }

 private:
  Net* net_;
  std::string self_;
};

class WorkflowReplicationTest : public ::testing::Test {
 protected:
  struct Host {
    std::string name, dir, cgroup;
    std::unique_ptr<plugin::AbiBackend> backend;
    std::unique_ptr<NetLink> link;
    std::shared_ptr<WorkflowReplication> replication;
    std::unique_ptr<Executor> executor;
  };

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups for the process backend";
    std::string t = "/tmp/augur-repl-test.XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }

  void TearDown() override {
    net_.DetachAll();
    for (auto& [name, h] : hosts_) h.executor.reset();
    for (auto& [name, h] : hosts_) {
      h.backend.reset();
      testing::RemoveCgroupParent(h.cgroup);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Starts (or restarts, on the same state directory) host `name`, with room for shards.
  Host* Start(const std::string& name, Resources capacity = {0.5, 256ULL << 20}) {
    Host& h = hosts_[name];
    h.name = name;
    h.dir = dir_ + "/" + name;
    fs::create_directories(h.dir);
    h.cgroup = fmt::format("augur-repl-test-{}-{}", getpid(), name);
    if (!h.backend) {
      auto b = testing::LoadProcessBackend(h.cgroup, h.dir + "/plugin");
      if (!b) {
        skip_ = b.error().ToString();
        return nullptr;
      }
      h.backend = std::move(*b);
    }
    h.link = std::make_unique<NetLink>(&net_, name);
    WorkflowReplicationOptions ro;
    ro.replication.replicas = 2;
    ro.replication.retransmit_ns = 50'000'000;
    ro.live = [this, name] { return net_.LiveFrom(name); };
    h.replication = std::make_shared<WorkflowReplication>(h.link.get(), ro);
    workflow::ExecutorOptions o = testing::TestExecutorOptions(h.dir, name, capacity);
    o.replication = h.replication;
    auto e = Executor::Start(std::move(o), testing::ProcessOnly(h.backend.get()));
    EXPECT_TRUE(e) << e.error().ToString();
    if (!e) return nullptr;
    h.executor = std::move(*e);
    net_.Attach(name, h.executor.get());
    return &h;
  }

  // h1, h2 and h3 (skip_ says why not, when cgroups cannot be made).
  void StartThree() {
    for (const char* n : {"h1", "h2", "h3"}) {
      Start(n);
      if (!skip_.empty()) return;
      ASSERT_NE(hosts_[n].executor, nullptr);
    }
  }

  void Kill(const std::string& name) {
    net_.Kill(name);
    hosts_[name].executor.reset();  // its tasks finish on their own; nothing is said
  }

  static nlohmann::json Status(Executor& e, const std::string& id) {
    auto s = e.StatusJson(id, false);
    if (!s) return nlohmann::json::object({{"error", s.error().ToString()}});
    auto j = nlohmann::json::parse(*s, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : nlohmann::json::object();
  }
  static int Succeeded(const nlohmann::json& w) {
    int n = 0;
    if (w.contains("stages")) {
      for (const auto& st : w["stages"]) n += st["counts"].value("succeeded", 0);
    }
    return n;
  }
  // Waits (at most 60 s) until `pred` holds.
  template <typename Pred>
  static bool WaitFor(Pred pred) {
    for (int i = 0; i < 3000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return pred();
  }
  std::string dir_;
  std::string skip_;
  Net net_;
  std::map<std::string, Host> hosts_;
};

std::string Workflow(int shards, const std::string& sleep) {
  return fmt::format(R"(workflow: failover
stages:
  - name: work
    resources: {{cpu: 0.25, memory: 32Mi}}
    shards: {{range: [0, {0}], count: {0}}}
    canary: false
    run: [sh, -c, "sleep {1}; echo shard {{shard.index}}"]
)", shards, sleep);
}

std::string Merged(int shards) {
  std::string s;
  for (int i = 0; i < shards; ++i) s += fmt::format("shard {}\n", i);
  return s;
}

TEST_F(WorkflowReplicationTest, TheOwnerDiesMidRunAndTheNextHostFinishesWithEachShardMergedOnce) {
  StartThree();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  Executor& h1 = *hosts_["h1"].executor;
  auto id = h1.Submit(Workflow(8, "0.3"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  // The host it was submitted to owns it and says so.
  EXPECT_EQ(Status(h1, *id).value("owner", ""), "h1") << Status(h1, *id).dump(2);
  // Two at a time: kill the owner once a few shards have their results (replicated at once).
  ASSERT_TRUE(WaitFor([&] { return Succeeded(Status(h1, *id)) >= 3; })) << Status(h1, *id).dump(2);
  std::this_thread::sleep_for(milliseconds(100));
  Kill("h1");

  // The next host of its order takes it over and finishes it.
  std::string owner;
  ASSERT_TRUE(WaitFor([&] {
    for (const char* n : {"h2", "h3"}) {
      if (hosts_[n].replication->Stats().adopted > 0) owner = n;
    }
    return !owner.empty();
  }));
  const std::string other = owner == "h2" ? "h3" : "h2";
  Executor& e = *hosts_[owner].executor;
  ASSERT_TRUE(WaitFor([&] { return Status(e, *id).value("state", "") == "succeeded"; }))
      << Status(e, *id).dump(2);
  auto out = e.Output(*id, "");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(*out, Merged(8));  // every shard once, in order
  // What h1 finished before it died was not run again: fewer than 8 shards ran on the new owner.
  auto hist = e.HistoryJson(*id, 100);
  ASSERT_TRUE(hist);
  size_t ran_here = 0;
  for (const auto& r : nlohmann::json::parse(*hist)) ran_here += r["state"] == "succeeded";
  EXPECT_LE(ran_here, 5u) << *hist;

  // The third host answers status for it, naming the owner: it asked the owner over the mesh.
  nlohmann::json w = Status(*hosts_[other].executor, *id);
  EXPECT_EQ(w.value("owner", ""), owner) << w.dump(2);
  EXPECT_EQ(w.value("state", ""), "succeeded") << w.dump(2);
  EXPECT_EQ(w.value("answered_by", ""), owner) << w.dump(2);
  EXPECT_GE(hosts_[other].replication->Stats().status_queries, 1u);
  // By name too.
  EXPECT_EQ(Status(*hosts_[other].executor, "failover").value("owner", ""), owner);
  // An unknown workflow is NotFound from every host.
  auto none = hosts_[other].executor->StatusJson("no-such-workflow", false);
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().IsNotFound()) << none.error().ToString();

  // The copies are in SQLite: a restarted host loads them (and, not owning it, waits).
  hosts_[other].executor.reset();
  ASSERT_NE(Start(other), nullptr);
  EXPECT_GE(hosts_[other].replication->Stats().held, 1u);
  EXPECT_EQ(Status(*hosts_[other].executor, *id).value("owner", ""), owner);
  auto store = workflow::WorkflowStore::Open(hosts_[other].dir + "/workflows.db");
  ASSERT_TRUE(store) << store.error().ToString();
  auto rows = (*store)->Replicas();
  ASSERT_TRUE(rows) << rows.error().ToString();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(EngineIdOf(rows->front().first), *id);
}

// augurd restarted on the owner (an upgrade) while its shards run: it owns the workflow again
// (a takeover at a new epoch, from its log) and re-attaches the shards still running here
// instead of stopping them and running them again.
TEST_F(WorkflowReplicationTest, ARestartedOwnerReattachesItsRunningShards) {
  StartThree();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  auto id = hosts_["h1"].executor->Submit(Workflow(4, "1.5"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  auto running = [&](const nlohmann::json& w) {
    int n = 0;
    if (w.contains("stages")) {
      for (const auto& st : w["stages"]) n += st["counts"].value("running", 0);
    }
    return n;
  };
  // Two at a time: the first two run.
  ASSERT_TRUE(WaitFor([&] { return running(Status(*hosts_["h1"].executor, *id)) >= 2; }))
      << Status(*hosts_["h1"].executor, *id).dump(2);
  // Stopped (its tasks keep running, as when augurd stops) and started again; the others see
  // it live throughout.
  net_.Attach("h1", nullptr);
  hosts_["h1"].executor.reset();
  ASSERT_NE(Start("h1"), nullptr);
  Executor& h1 = *hosts_["h1"].executor;
  ASSERT_TRUE(WaitFor([&] { return hosts_["h1"].replication->Stats().adopted > 0; }));
  ASSERT_TRUE(WaitFor([&] { return Status(h1, *id).value("state", "") == "succeeded"; }))
      << Status(h1, *id).dump(2);
  EXPECT_EQ(Status(h1, *id).value("owner", ""), "h1");
  auto out = h1.Output(*id, "");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(*out, Merged(4));
  // Every shard ran once, as its first attempt: the two that ran across the restart were
  // re-attached, not stopped and run again.
  auto hist = h1.HistoryJson(*id, 100);
  ASSERT_TRUE(hist);
  size_t rows = 0;
  for (const auto& r : nlohmann::json::parse(*hist)) {
    ++rows;
    EXPECT_EQ(r["state"], "succeeded") << *hist;
    EXPECT_TRUE(r["attempt"].get<std::string>().ends_with("#1")) << *hist;
  }
  EXPECT_EQ(rows, 4u) << *hist;
}

TEST_F(WorkflowReplicationTest, AnIsolatedOwnerStepsDownWhenThePartitionHeals) {
  StartThree();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  Executor& h1 = *hosts_["h1"].executor;
  auto id = h1.Submit(Workflow(6, "0.4"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return Succeeded(Status(h1, *id)) >= 2; })) << Status(h1, *id).dump(2);
  net_.Isolate("h1");
  // The other side takes it over while h1 still runs it.
  std::string taker;
  ASSERT_TRUE(WaitFor([&] {
    for (const char* n : {"h2", "h3"}) {
      if (hosts_[n].replication->Stats().adopted > 0) taker = n;
    }
    return !taker.empty();
  }));
  net_.Heal();
  // One owner in the end, and the workflow finishes there with every shard once.
  std::string final_owner;
  ASSERT_TRUE(WaitFor([&] {
    int owners = 0;
    for (const char* n : {"h1", "h2", "h3"}) {
      auto w = Status(*hosts_[n].executor, *id);
      if (w.value("owner", "") == n && w.value("source", "") == "") {
        ++owners;
        final_owner = n;
      }
    }
    return owners == 1 &&
           Status(*hosts_[final_owner].executor, *id).value("state", "") == "succeeded";
  })) << Status(*hosts_["h1"].executor, *id).dump(2) << Status(*hosts_[taker].executor, *id).dump(2);
  auto out = hosts_[final_owner].executor->Output(*id, "");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(*out, Merged(6));
  // Somebody stepped down (h1 when it met the newer epoch, or the taker when h1, first in the
  // order, took the workflow back).
  uint64_t released = 0;
  for (const char* n : {"h1", "h2", "h3"}) released += hosts_[n].replication->Stats().released;
  EXPECT_GE(released, 1u);
}

}  // namespace
}  // namespace augur::mesh
