// Real executors side by side in one process, for the mesh's tests (tests/mesh/): each host
// with its own state directory, SQLite store, engine thread and process backend (the real
// plugin, loaded in-process, with its own cgroup parent), joined by an in-process link to a
// stand-in for the mesh node (transport and membership) that the test brings as `Net`:
//
//   Status Deliver(const std::string& from, const std::string& to, mesh::Channel ch,
//                  std::string payload);   // what a host sends; the net hands it on (or not)
//   std::vector<mesh::PlacementPeer> Peers(const std::string& self) const;  // membership's
//                                           // view from host `self`, with headroom
//   void Attach(const std::string& name, workflow::Executor* e);  // deliver to e from now
//   void DetachAll();                       // deliver to no one (before executors go)
//
// MeshHostsTest<Net> makes and removes the temporary directory and the cgroups; SetUp skips,
// with the reason, where cgroups cannot be made. A test gives each host's executor its mesh
// pieces (a placer, a replication) over the host's link as it starts it (StartHost).
//
// Thread safety: the fixture runs on the test's thread; the link and the net are called from
// the executors' engine threads as well, so a Net locks.
#ifndef AUGUR_TESTS_TESTING_MESH_HOSTS_H_
#define AUGUR_TESTS_TESTING_MESH_HOSTS_H_

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mesh/mesh_link.h"
#include "mesh/mesh_placer.h"
#include "mesh/workflow_replication.h"
#include "testing/gated_backend.h"
#include "testing/process_backend.h"
#include "workflow/executor.h"

namespace augur::testing {

// A host's link: what it sends goes to `net`, which also gives membership's view.
template <typename Net>
class InProcessLink : public mesh::MeshLink {
 public:
  InProcessLink(Net* net, std::string self) : net_(net), self_(std::move(self)) {}
  const std::string& self() const override { return self_; }
  Status Send(const std::string& host, mesh::Channel ch, std::string payload) override {
    return net_->Deliver(self_, host, ch, std::move(payload));
  }
  mesh::PeerView Peers() const override {
    return std::make_shared<const std::vector<mesh::PlacementPeer>>(net_->Peers(self_));
  }

 private:
  Net* net_;
  std::string self_;
};

template <typename Net>
class MeshHostsTest : public ::testing::Test {
 protected:
  struct Host {
    std::string name, dir, cgroup;
    std::unique_ptr<plugin::AbiBackend> backend;
    std::unique_ptr<GatedBackend> gated;  // with gate_: in front of `backend`
    std::unique_ptr<InProcessLink<Net>> link;
    std::shared_ptr<mesh::MeshPlacer> placer;              // when the test gave it one
    std::shared_ptr<mesh::WorkflowReplication> replication;  // likewise
    std::unique_ptr<workflow::Executor> executor;
  };

  // `prefix` names the temporary directory (/tmp/<prefix>.XXXXXX) and the hosts' cgroup
  // parents (<prefix>-<pid>-<host>).
  explicit MeshHostsTest(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups for the process backend";
    for (const std::string& m : CgroupMounts()) {
      if (access(m.c_str(), W_OK) != 0) GTEST_SKIP() << m << " is not writable";
    }
    std::string t = "/tmp/" + prefix_ + ".XXXXXX";
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }

  void TearDown() override {
    net_.DetachAll();
    for (auto& [name, h] : hosts_) {
      if (h.gated) h.gated->Open();  // a stopping executor waits for its starts
      h.executor.reset();
    }
    for (auto& [name, h] : hosts_) {
      h.backend.reset();
      RemoveCgroupParent(h.cgroup);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Starts (or restarts, on the same state directory and backend) host `name`, with
  // `capacity` for shards; `mesh` gives its executor's options the mesh pieces, made over
  // h.link (and keeps them in h). Null when the process backend cannot be loaded (skip_
  // says why: cgroups) or the executor does not start (a test failure).
  Host* StartHost(const std::string& name, workflow::Resources capacity,
                  const std::function<void(Host& h, workflow::ExecutorOptions& o)>& mesh) {
    Host& h = hosts_[name];
    h.name = name;
    h.dir = dir_ + "/" + name;
    std::filesystem::create_directories(h.dir);
    h.cgroup = fmt::format("{}-{}-{}", prefix_, getpid(), name);
    if (!h.backend) {
      auto b = LoadProcessBackend(h.cgroup, h.dir + "/plugin");
      if (!b) {
        skip_ = b.error().ToString();
        return nullptr;
      }
      h.backend = std::move(*b);
    }
    h.link = std::make_unique<InProcessLink<Net>>(&net_, name);
    workflow::ExecutorOptions o = TestExecutorOptions(h.dir, name, capacity);
    mesh(h, o);
    plugin::Backend* backend = h.backend.get();
    if (gate_) {
      h.gated = std::make_unique<GatedBackend>(backend);
      backend = h.gated.get();
    }
    auto e = workflow::Executor::Start(std::move(o), ProcessOnly(backend));
    EXPECT_TRUE(e) << e.error().ToString();
    if (!e) return nullptr;
    h.executor = std::move(*e);
    net_.Attach(name, h.executor.get());
    return &h;
  }

  // The workflow's status object on `e` (by id or name): {"error": ...} when it has none.
  static nlohmann::json StatusOf(workflow::Executor& e, const std::string& id) {
    auto s = e.StatusJson(id, false);
    if (!s) return nlohmann::json::object({{"error", s.error().ToString()}});
    auto j = nlohmann::json::parse(*s, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : nlohmann::json::object();
  }

  // Polls `pred` every `every` until it holds or `limit` has passed; whether it held.
  template <typename Pred>
  static bool WaitFor(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(60),
                      std::chrono::milliseconds every = std::chrono::milliseconds(20)) {
    for (auto waited = std::chrono::milliseconds(0); waited < limit; waited += every) {
      if (pred()) return true;
      std::this_thread::sleep_for(every);
    }
    return pred();
  }

  const std::string prefix_;
  std::string dir_;
  std::string skip_;
  bool gate_ = false;  // the hosts started next run tasks through a GatedBackend
  Net net_;
  std::map<std::string, Host> hosts_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_MESH_HOSTS_H_
