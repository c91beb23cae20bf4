// Replication and failover of workflows (docs/MESH.md, "Replication and failover"): real
// executors in one process (testing/mesh_hosts.h), joined by a net that stands in for the
// mesh node (transport and membership): it can kill a host (its executor goes, as with
// kill -9: nothing is said to the others) and cut one off. Skipped, with the reason, where
// cgroups cannot be made.
#include "mesh/workflow_replication.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "mesh/mesh_placer.h"
#include "mesh/rendezvous.h"
#include "mesh/workflow_log.h"
#include "testing/mesh_hosts.h"
#include "testing/workflow_json.h"
#include "workflow/executor.h"
#include "workflow/store.h"

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
  void Kill(const std::string& name) { Kill(std::vector<std::string>{name}); }
  // At once: no host sees one dead before the others.
  void Kill(const std::vector<std::string>& names) {
    std::lock_guard lock(mu_);
    for (const std::string& name : names) {
      hosts_[name] = nullptr;
      dead_.insert(name);
    }
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
  // A host killed but not yet gone (its executor being destroyed) keeps the view it had of
  // the others: nothing it does from then on reaches anyone.
  std::vector<std::string> LiveFrom(const std::string& self) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [name, e] : hosts_) {
      const bool live = dead_.contains(self)
                            ? name == self || (!dead_.contains(name) && !isolated_.contains(self) &&
                                               !isolated_.contains(name))
                            : Reach(self, name);
      if (live) out.push_back(name);
    }
    return out;
  }
  void DetachAll() {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : hosts_) e = nullptr;
  }
  // The room a host shows the others in its gossiped headroom (none until set).
  void SetRoom(const std::string& name, Resources room) {
    std::lock_guard lock(mu_);
    room_[name] = room;
  }
  std::vector<PlacementPeer> Peers(const std::string& self) const {
    std::lock_guard lock(mu_);
    std::vector<PlacementPeer> out;
    for (const auto& [name, e] : hosts_) {
      PlacementPeer p;
      p.name = name;
      p.alive = Reach(self, name);
      p.headroom_version = 1;
      const auto it = room_.find(name);
      const Resources room = it == room_.end() ? Resources{} : it->second;
      p.headroom.horizons = {{0, room, room}, {600, room, room}};
      p.headroom.backends = {{"process", {}}};
      out.push_back(std::move(p));
    }
    return out;
  }

 private:
  bool Reach(const std::string& a, const std::string& b) const {
    if (dead_.contains(a) || dead_.contains(b)) return false;
    return a == b || (!isolated_.contains(a) && !isolated_.contains(b));
  }
  mutable std::recursive_mutex mu_;  // a receiver may answer at once (Placer::OnReceipt)
  std::map<std::string, Executor*> hosts_;
  std::map<std::string, Resources> room_;
  std::set<std::string> dead_, isolated_;
};

class WorkflowReplicationTest : public testing::MeshHostsTest<Net> {
 protected:
  WorkflowReplicationTest() : MeshHostsTest("augur-repl-test") {}

  // Starts (or restarts, on the same state directory) host `name`, with room for shards.
  // With a placer, shards that do not fit here run on hosts that show room (Net::SetRoom),
  // and a new owner fetches outputs the log does not carry from the hosts that ran them.
  Host* Start(const std::string& name, Resources capacity = {0.5, 256ULL << 20},
              bool with_placer = false) {
    return StartHost(name, capacity, [&](Host& h, workflow::ExecutorOptions& o) {
      WorkflowReplicationOptions ro;
      ro.replication.replicas = 2;
      ro.replication.retransmit_ns = 50'000'000;
      ro.live = [this, name] { return net_.LiveFrom(name); };
      ro.retention_ns = retention_ns_;
      ro.prune_interval_ns = 100'000'000;
      if (with_placer) {
        MeshPlacerOptions po;
        po.work_dir = h.dir + "/remote";
        po.negotiator.seed = 7;
        h.placer = std::make_shared<MeshPlacer>(h.link.get(), po);
        ro.fetch_output = [p = h.placer](const std::string& host, const std::string& attempt,
                                         uint64_t size, const std::string& dest,
                                         std::function<void(augur::Status)> done, int64_t now) {
          p->FetchOutput(host, attempt, size, dest, std::move(done), now);
        };
        ro.forget_outputs = [p = h.placer](const std::string& workflow,
                                           const std::vector<std::string>& hosts) {
          p->ForgetOutputs(workflow, hosts);
        };
      }
      h.replication = std::make_shared<WorkflowReplication>(h.link.get(), ro);
      o.replication = h.replication;
      o.placer = h.placer;
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

  void Kill(const std::vector<std::string>& names) {
    net_.Kill(names);
    for (const std::string& name : names) {
      hosts_[name].executor.reset();  // its tasks finish on their own; nothing is said
    }
  }
  void Kill(const std::string& name) { Kill(std::vector<std::string>{name}); }

  static nlohmann::json Status(Executor& e, const std::string& id) { return StatusOf(e, id); }
  static int Succeeded(const nlohmann::json& w) { return testing::SucceededShards(w); }
  int64_t retention_ns_ = 0;  // of the hosts started next
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
  // So do `augurctl result` and `history` (the third host neither runs nor ran it).
  workflow::RemoteAnswer from;
  auto res = hosts_[other].executor->Output(*id, "", &from);
  ASSERT_TRUE(res) << res.error().ToString();
  EXPECT_EQ(*res, Merged(8));
  EXPECT_EQ(from.owner, owner);
  EXPECT_EQ(from.answered_by, owner);
  EXPECT_TRUE(from.from_owner);
  auto other_hist = hosts_[other].executor->HistoryJson(*id, 100);
  ASSERT_TRUE(other_hist) << other_hist.error().ToString();
  const auto other_rows = nlohmann::json::parse(*other_hist);
  ASSERT_FALSE(other_rows.empty()) << *other_hist;
  EXPECT_EQ(other_rows[0].value("owner", ""), owner) << other_rows[0].dump();
  EXPECT_EQ(other_rows[0].value("answered_by", ""), owner) << other_rows[0].dump();
  EXPECT_EQ(other_rows.size(), nlohmann::json::parse(*hist).size());
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
  // And their tasks have started (recorded with their handles), not only been handed to the
  // start pool: a start not begun when the executor stops runs again as a new attempt
  // (executor.h), which is not what this test is about (a loaded machine showed it).
  ASSERT_TRUE(WaitFor([&] {
    auto store = workflow::WorkflowStore::Open(hosts_["h1"].dir + "/workflows.db");
    if (!store) return false;
    auto attempts = (*store)->Attempts(*id);
    return attempts && std::count_if(attempts->begin(), attempts->end(), [](const auto& a) {
                         return a.state == workflow::AttemptState::kRunning && !a.invocation.empty();
                       }) >= 2;
  }));
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

TEST_F(WorkflowReplicationTest, CopiesOfAFinishedWorkflowGoAfterTheRetentionAndRunningOnesStay) {
  retention_ns_ = 1'000'000'000;
  StartThree();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  Executor& h1 = *hosts_["h1"].executor;
  auto running = h1.Submit(Workflow(1, "30"), "test");
  auto done = h1.Submit(Workflow(2, "0.1"), "test");
  ASSERT_TRUE(running && done);
  ASSERT_TRUE(WaitFor([&] { return Status(h1, *done).value("state", "") == "succeeded"; }));
  // Every host held both (r = 2 of 3 hosts); a second after the end, only the running one.
  ASSERT_TRUE(WaitFor([&] {
    for (const char* n : {"h1", "h2", "h3"}) {
      const WorkflowReplicationStats st = hosts_[n].replication->Stats();
      if (st.held != 1 || st.pruned != 1) return false;
    }
    return true;
  }));
  for (const char* n : {"h1", "h2", "h3"}) {
    auto store = workflow::WorkflowStore::Open(hosts_[n].dir + "/workflows.db");
    ASSERT_TRUE(store) << store.error().ToString();
    auto rows = (*store)->Replicas();
    ASSERT_TRUE(rows) << rows.error().ToString();
    ASSERT_EQ(rows->size(), 1u) << n;
    EXPECT_EQ(EngineIdOf(rows->front().first), *running) << n;
  }
  EXPECT_EQ(Status(h1, *running).value("state", ""), "running");
}

// --- Outputs over 16 KiB after a takeover: fetched from the host that ran the shard ---------

// Each "work" shard prints 3,000 numbered lines (about 21 KB, over the 16 KiB a log record
// carries) and notes each run in <dir>/ran.<index>; "tail" keeps the workflow running after.
std::string BigWorkflow(const std::string& dir) {
  return fmt::format(R"(workflow: big
stages:
  - name: gate
    resources: {{cpu: 0.25, memory: 32Mi}}
    run: [sh, -c, "sleep 1.5; echo gate"]
  - name: work
    needs: [gate]
    resources: {{cpu: 0.25, memory: 32Mi}}
    shards: {{range: [0, 4], count: 4}}
    canary: false
    run: [sh, -c, "echo x >> {0}/ran.{{shard.index}}; sleep 1; seq 1 3000 | sed s/^/{{shard.index}}:/"]
  - name: tail
    needs: [work]
    resources: {{cpu: 0.25, memory: 32Mi}}
    run: [sh, -c, "sleep 2; wc -l < {{input}}"]
)",
                     dir);
}

std::string BigMerged() {
  std::string s;
  for (int k = 0; k < 4; ++k) {
    for (int i = 1; i <= 3000; ++i) s += fmt::format("{}:{}\n", k, i);
  }
  return s;
}

int Runs(const std::string& dir, int shard) {
  std::ifstream f(fmt::format("{}/ran.{}", dir, shard));
  int n = 0;
  for (std::string line; std::getline(f, line);) ++n;
  return n;
}

class OutputFetchTest : public WorkflowReplicationTest {
 protected:
  // h1 (room for one shard) owns the workflow; of h2 and h3, the one that will take it over
  // (heir_) is kept busy by a workflow of its own (hog_, cancelled after the kill) and the
  // other (holder_) shows room, so the work shards h1 cannot run go to holder_, their
  // outputs sent to h1 by transfer and kept on holder_ when the lease ends. Returns once
  // the work stage is done and tail runs (on h1), with ran_on_[shard] = the host that ran it.
  void RunUntilWorkIsDone() {
    for (const char* n : {"h1", "h2", "h3"}) {
      Start(n,
            n == std::string("h1") ? Resources{0.25, 256ULL << 20} : Resources{0.5, 256ULL << 20},
            /*with_placer=*/true);
      if (!skip_.empty()) return;
      ASSERT_NE(hosts_[n].executor, nullptr);
    }
    Executor& h1 = *hosts_["h1"].executor;
    auto id = h1.Submit(BigWorkflow(dir_), "test");
    ASSERT_TRUE(id) << id.error().ToString();
    id_ = *id;
    // The replica id h1 chose, hence who takes over when h1 dies (as the replicator says).
    const std::string rid = ChooseReplicaId(id_, "h1", {"h1", "h2", "h3"});
    heir_ = RendezvousOrder(rid, {"h2", "h3"}).front();
    holder_ = heir_ == "h2" ? "h3" : "h2";
    // While gate runs: the heir's bidder has no room to offer, the holder shows room.
    Executor& heir = *hosts_[heir_].executor;
    auto hog = heir.Submit(R"(workflow: hog
stages:
  - name: hog
    resources: {cpu: 0.5, memory: 32Mi}
    run: [sleep, "60"]
)",
                           "test");
    ASSERT_TRUE(hog) << hog.error().ToString();
    hog_ = *hog;
    ASSERT_TRUE(WaitFor([&] {
      const auto w = Status(heir, hog_);
      return w.contains("stages") && w["stages"][0]["counts"].value("running", 0) == 1;
    })) << Status(heir, hog_).dump(2);
    net_.SetRoom(holder_, {1.0, 256ULL << 20});
    ASSERT_TRUE(WaitFor([&] { return Succeeded(Status(h1, id_)) >= 5; }))
        << Status(h1, id_).dump(2);
    auto hist = h1.HistoryJson(id_, 100);
    ASSERT_TRUE(hist) << hist.error().ToString();
    for (const auto& r : nlohmann::json::parse(*hist)) {
      if (r["stage"] == "work" && r["state"] == "succeeded")
        ran_on_[r["shard"].get<int>()] = r["host"];
    }
    ASSERT_EQ(ran_on_.size(), 4u) << *hist;
    for (int k = 0; k < 4; ++k) ASSERT_EQ(Runs(dir_, k), 1) << "shard " << k;
    // The leases of the shards on holder_ end (h1 released them with their results).
    ASSERT_TRUE(WaitFor([&] {
      auto j = nlohmann::json::parse(hosts_[holder_].executor->MeshStatsJson());
      return j["leased_here"].get<int>() == 0;
    }));
  }
  int RanOn(const std::string& host) const {
    int n = 0;
    for (const auto& [k, h] : ran_on_) n += h == host;
    return n;
  }
  // Waits for the heir to finish the workflow; checks the merged work output and tail's.
  void ExpectFinishedWhole() {
    Executor& e = *hosts_[heir_].executor;
    ASSERT_TRUE(e.Cancel(hog_).ok());  // room for what runs again
    ASSERT_TRUE(WaitFor([&] { return Status(e, id_).value("state", "") == "succeeded"; }))
        << Status(e, id_).dump(2);
    auto work = e.Output(id_, "work");
    ASSERT_TRUE(work) << work.error().ToString();
    EXPECT_EQ(work->size(), BigMerged().size());
    EXPECT_TRUE(*work == BigMerged()) << "the merged work output differs";
    auto tail = e.Output(id_, "tail");
    ASSERT_TRUE(tail) << tail.error().ToString();
    EXPECT_EQ(*tail, "12000\n");
  }
  std::string id_, heir_, holder_, hog_;
  std::map<int, std::string> ran_on_;
};

TEST_F(OutputFetchTest,
       TheNewOwnerFetchesLargeOutputsFromTheHostThatRanThemInsteadOfRunningThemAgain) {
  RunUntilWorkIsDone();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  const int on_holder = RanOn(holder_), on_h1 = RanOn("h1");
  ASSERT_GE(on_holder, 1) << "no work shard ran on " << holder_;
  Kill("h1");
  ExpectFinishedWhole();
  if (HasFatalFailure()) return;
  // What ran on the holder came over by transfer and did not run again; what ran on h1
  // (dead, its outputs with it) ran again, once.
  const WorkflowReplicationStats st = hosts_[heir_].replication->Stats();
  EXPECT_EQ(st.adopted, 1u);
  EXPECT_EQ(st.outputs_fetched, uint64_t(on_holder));
  EXPECT_EQ(st.outputs_rerun, uint64_t(on_h1));
  for (const auto& [k, host] : ran_on_) {
    EXPECT_EQ(Runs(dir_, k), host == holder_ ? 1 : 2) << "shard " << k << " first ran on " << host;
  }
  auto heir = nlohmann::json::parse(hosts_[heir_].executor->MeshStatsJson());
  auto holder = nlohmann::json::parse(hosts_[holder_].executor->MeshStatsJson());
  EXPECT_EQ(heir["kept_outputs"]["fetched"].get<int>(), on_holder) << heir.dump();
  EXPECT_EQ(holder["kept_outputs"]["served"].get<int>(), on_holder) << holder.dump();
  EXPECT_GE(holder["kept_outputs"]["kept"].get<int>(), on_holder) << holder.dump();
  // `augurctl result` on the holder: asked of the new owner; the work stage's 80 KB do not
  // fit one mesh message and come after the reply as a transfer on the status channel.
  workflow::RemoteAnswer from;
  auto tail = hosts_[holder_].executor->Output(id_, "tail", &from);
  ASSERT_TRUE(tail) << tail.error().ToString();
  EXPECT_EQ(*tail, "12000\n");
  EXPECT_EQ(from.answered_by, heir_);
  workflow::RemoteAnswer work_from;
  auto work = hosts_[holder_].executor->Output(id_, "work", &work_from);
  ASSERT_TRUE(work) << work.error().ToString();
  EXPECT_EQ(*work, BigMerged());
  EXPECT_EQ(work_from.answered_by, heir_);
  EXPECT_EQ(work_from.owner, heir_);
  EXPECT_EQ(hosts_[heir_].replication->Stats().answers_sent_by_transfer, 1u);
  EXPECT_EQ(hosts_[holder_].replication->Stats().answers_received_by_transfer, 1u);
  // The workflow finished: the holder was told, and its kept outputs are gone.
  ASSERT_TRUE(WaitFor([&] {
    return nlohmann::json::parse(
               hosts_[holder_].executor->MeshStatsJson())["kept_outputs"]["forgotten"]
               .get<int>() >= on_holder;
  }));
  EXPECT_FALSE(fs::exists(fs::path(hosts_[holder_].placer->KeptPath(id_ + "/x")).parent_path()));
}

TEST_F(OutputFetchTest, WhenTheHostThatKeptAnOutputIsGoneTooTheShardRunsAgain) {
  RunUntilWorkIsDone();
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  if (HasFatalFailure()) return;
  // The owner and the host that kept the outputs die together.
  Kill({"h1", holder_});
  ExpectFinishedWhole();
  if (HasFatalFailure()) return;
  const WorkflowReplicationStats st = hosts_[heir_].replication->Stats();
  EXPECT_EQ(st.outputs_fetched, 0u);
  EXPECT_EQ(st.outputs_rerun, 4u);  // none could be fetched: all ran again, once
  for (int k = 0; k < 4; ++k) EXPECT_EQ(Runs(dir_, k), 2) << "shard " << k;
}

}  // namespace
}  // namespace augur::mesh
