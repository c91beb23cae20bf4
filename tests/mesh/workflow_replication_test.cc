// Replication and failover of workflows (docs/MESH.md, "Replication and failover"): real
// executors in one process (testing/mesh_hosts.h), joined by a net that stands in for the
// mesh node (transport and membership): it can kill a host (its executor goes, as with
// kill -9: nothing is said to the others) and cut one off. Skipped, with the reason, where
// cgroups cannot be made.
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

#include "testing/mesh_hosts.h"
#include "testing/workflow_json.h"
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
  Status Deliver(const std::string& from, const std::string& to, Channel ch, std::string payload) {
    std::lock_guard lock(mu_);
    if (!Reach(from, to)) return Status::OK();  // lost on the way
    auto it = hosts_.find(to);
    if (it != hosts_.end() && it->second != nullptr) {
      it->second->OnMeshMessage(from, uint32_t(ch), std::move(payload));
    }
    return Status::OK();
  }
  std::vector<PlacementPeer> Peers() const { return {}; }
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

class WorkflowReplicationTest : public testing::MeshHostsTest<Net> {
 protected:
  WorkflowReplicationTest() : MeshHostsTest("augur-repl-test") {}

  // Starts (or restarts, on the same state directory) host `name`, with room for shards.
  Host* Start(const std::string& name, Resources capacity = {0.5, 256ULL << 20}) {
    return StartHost(name, capacity, [&](Host& h, workflow::ExecutorOptions& o) {
      WorkflowReplicationOptions ro;
      ro.replication.replicas = 2;
      ro.replication.retransmit_ns = 50'000'000;
      ro.live = [this, name] { return net_.LiveFrom(name); };
      h.replication = std::make_shared<WorkflowReplication>(h.link.get(), ro);
      o.replication = h.replication;
    });
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

  static nlohmann::json Status(Executor& e, const std::string& id) { return StatusOf(e, id); }
  static int Succeeded(const nlohmann::json& w) { return testing::SucceededShards(w); }
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
