// The peer mesh between real augurd processes, each in its own network namespace on the test
// bed (tests/testing/netns.h): joining through a seed, kill -9 of a host, a partition that
// heals, packet loss, a restart, and a key that is not authorized. Needs root; skips with the
// reason otherwise. Timeouts are generous (this machine is shared); the membership's own
// timing is measured by bench/mesh/membership_bench.sh, not here.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/temp_segment.h"
#include "testing/netns.h"
#include "testing/workflow_json.h"

namespace augur {
namespace {

using namespace std::chrono_literals;
using testing::NetnsBed;
using testing::Run;
using testing::Subprocess;
using testing::WaitFor;
namespace fs = std::filesystem;

const std::string kAugurd = std::string(AUGUR_BUILD_DIR) + "/agent/augurd";
const std::string kAugurctl = std::string(AUGUR_BUILD_DIR) + "/agent/augurctl";

class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string& why = NetnsBed::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    dir_ = fs::path("/tmp") / fmt::format("augur-mesh-{}-{}", getpid(), counter_++);
    fs::create_directories(dir_ / "keys");
  }
  void TearDown() override {
    agents_.clear();
    bed_.reset();
    // The process backends' parent cgroups (their instances are gone with the agents' tasks).
    for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec_)) {
      for (int k = 1; k <= 8; ++k) rmdir((e.path() / CgroupParent(k)).c_str());
    }
    // Telemetry segments: agents killed by a test leave theirs behind.
    for (int k = 1; k <= 8; ++k) {
      testing::TempSegmentName::Remove(fmt::format("augur-mesh-{}-{}", getpid(), Name(k)));
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A bed of n hosts, each with a key pair in one shared authorized_keys file.
  void MakeBed(int n) {
    bed_ = std::make_unique<NetnsBed>(n);
    ASSERT_TRUE(bed_->ok()) << bed_->error();
    for (int k = 1; k <= n; ++k) {
      auto r = testing::Run({kAugurctl, "keygen", "--out", KeyDir(k), "--name", Name(k)});
      ASSERT_EQ(r.code, 0) << r.err;
      Authorize(k);
    }
  }
  void Authorize(int k) {
    std::ifstream pub(KeyDir(k) + "/host.pub");
    std::string line;
    std::getline(pub, line);
    std::ofstream(dir_ / "keys/authorized_keys", std::ios::app) << line << "\n";
  }

  static std::string Name(int k) { return "h" + std::to_string(k); }
  static std::string CgroupParent(int k) {
    return fmt::format("augur-mesh-{}-h{}", getpid(), k);
  }
  std::string KeyDir(int k) const { return (dir_ / "keys" / Name(k)).string(); }
  std::string Socket(int k) const { return (dir_ / (Name(k) + ".sock")).string(); }

  // Starts (or restarts) augurd on host k, joining through host 1. With `max_cpu` > 0 it
  // runs the workflow engine on the process backend, its shards limited to that many cores.
  void Start(int k, double max_cpu = 0) {
    const std::string config = (dir_ / (Name(k) + ".yaml")).string();
    std::string engine = "plugins: {enabled: []}\nworkflows: {enabled: false}\n";
    if (max_cpu > 0) {
      engine = fmt::format(
          "plugins: {{dir: {}/plugins, enabled: [process], state_dir: {}/{}/plugins, config: "
          "{{process: {{cgroup_parent: {}}}}}}}\nworkflows: {{state_dir: {}/{}/wf, max_cpu: {}}}\n",
          AUGUR_BUILD_DIR, dir_.string(), Name(k), CgroupParent(k), dir_.string(), Name(k),
          max_cpu);
    }
    std::ofstream(config) << fmt::format(R"(telemetry: {{interval: 5s, ebpf: "off", shm_name: {shm}, capacity: 16, max_series: 256, max_cgroups: 0}}
metrics: {{enabled: false}}
forecast: {{enabled: false}}
{engine}control: {{socket: {sock}}}
mesh:
  enabled: true
  name: {name}
  listen: {addr}:7946
  zone: zone-{zone}
  seeds: [h1@{seed}:7946]
  key_file: {keys}/host.key
  authorized_keys: {dir}/keys/authorized_keys
)",
        fmt::arg("shm", fmt::format("augur-mesh-{}-{}", getpid(), Name(k))),
        fmt::arg("sock", Socket(k)), fmt::arg("name", Name(k)),
        fmt::arg("addr", NetnsBed::Addr(k)), fmt::arg("zone", k % 2),
        fmt::arg("seed", NetnsBed::Addr(1)), fmt::arg("keys", KeyDir(k)),
        fmt::arg("dir", dir_.string()), fmt::arg("engine", engine));
    agents_[k] = max_cpu > 0 ? &bed_->SpawnKeepingMounts(k, {kAugurd, "--config", config})
                             : &bed_->Spawn(k, {kAugurd, "--config", config});
  }

  // Host k's view: member name -> state ("" when augurctl could not ask).
  std::map<std::string, std::string> View(int k) {
    std::map<std::string, std::string> out;
    auto r = testing::Run({kAugurctl, "--socket", Socket(k), "peers", "--json"});
    if (r.code != 0) return out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& m : j) out[m.value("name", "")] = m.value("state", "");
    return out;
  }
  // Every host in `observers` holds every host in `members` in `state`.
  bool AllSee(const std::vector<int>& observers, const std::vector<int>& members,
              const std::string& state) {
    for (int o : observers) {
      auto v = View(o);
      for (int m : members) {
        if (v[Name(m)] != state) return false;
      }
    }
    return true;
  }
  std::string Views(const std::vector<int>& hosts) {
    std::string s;
    for (int k : hosts) {
      s += Name(k) + ":";
      for (const auto& [n, st] : View(k)) s += " " + n + "=" + st;
      s += "\n";
    }
    return s;
  }
  // Each agent's log lines that contain `what` (a whole log is too long to print).
  std::string LogLines(const std::string& what) {
    std::string s;
    for (auto& [k, a] : agents_) {
      s += "--- " + Name(k) + "\n";
      std::istringstream in(a->err());
      for (std::string line; std::getline(in, line);) {
        if (line.find(what) != std::string::npos) s += line + "\n";
      }
    }
    return s;
  }
  std::string Logs() {
    std::string s;
    for (auto& [k, a] : agents_) s += "--- " + Name(k) + "\n" + a->err().substr(0, 4000);
    return s;
  }

  testing::RunResult Ctl(int k, std::vector<std::string> args) {
    std::vector<std::string> argv = {kAugurctl, "--socket", Socket(k)};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, 60s);
  }

  // Three hosts running the engine: h1 with room for one shard at a time, h2 and h3 for six;
  // all alive, and each one's headroom (its process backend) known at h1.
  void StartThreeWithRoomOnThePeers() {
    MakeBed(3);
    if (HasFatalFailure()) return;
    const std::vector<int> all = {1, 2, 3};
    Start(1, 0.3);
    Start(2, 1.5);
    Start(3, 1.5);
    ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();
    ASSERT_TRUE(HeadroomOfAll(1, 3)) << Ctl(1, {"peers", "--json"}).out << Logs();
  }
  // Host k has every one of the n hosts' process backend in its view (their headroom came).
  bool HeadroomOfAll(int k, int n) {
    return WaitFor([&] {
      auto j = nlohmann::json::parse(Ctl(k, {"peers", "--json"}).out, nullptr, false);
      int with_backend = 0;
      for (const auto& m : j.is_array() ? j : nlohmann::json::array()) {
        with_backend += m.contains("headroom") && !m["headroom"]["backends"].empty();
      }
      return with_backend == n;
    }, 30s);
  }
  // The latest value of series `name` (no labels) in host k's segment; -1 when it has none.
  double Latest(int k, const std::string& name) {
    auto r = testing::Run({kAugurctl, "--shm", fmt::format("augur-mesh-{}-{}", getpid(), Name(k)),
                           "series", "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    for (const auto& e : j.is_array() ? j : nlohmann::json::array()) {
      if (e.value("series", "") == name && e.contains("latest")) return e["latest"].value("value", -1.0);
    }
    return -1;
  }
  // Writes `yaml` to dir/<file> and submits it to host k: the workflow id ("" if refused).
  std::string Submit(int k, const std::string& file, const std::string& yaml) {
    const std::string path = (dir_ / file).string();
    std::ofstream(path) << yaml;
    auto sub = Ctl(k, {"submit", path});
    EXPECT_EQ(sub.code, 0) << sub.err;
    std::string id = sub.code == 0 ? sub.out : "";
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }
  // Waits up to `limit` for the workflow to end on host k (by its status there): its state,
  // "running" (or "") when it did not end in time.
  std::string WaitEnded(int k, const std::string& id, std::chrono::seconds limit) {
    std::string state;
    WaitFor([&] {
      state = StatusOf(k, id).value("state", "");
      return state != "" && state != "running";
    }, limit);
    return state;
  }
  // `augurctl status <id> --json` on host k: the workflow's object (empty when none).
  nlohmann::json StatusOf(int k, const std::string& id) {
    auto j = nlohmann::json::parse(Ctl(k, {"status", id, "--json"}).out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : nlohmann::json::object();
  }
  // Host k owns the workflow: its own engine answers (no "source"), naming itself.
  bool Owns(int k, const std::string& id) {
    const nlohmann::json w = StatusOf(k, id);
    return w.value("owner", "") == Name(k) && !w.contains("source");
  }
  // Workflow `name`: n quarter-core shards of the range [0, n), each sleeping `seconds` and
  // printing its begin; Counted(n) is its merged output.
  static std::string EchoShards(const std::string& name, int n, int seconds) {
    return fmt::format(R"(workflow: {0}
stages:
  - name: work
    resources: {{cpu: 0.25, memory: 32Mi}}
    shards: {{range: [0, {1}], count: {1}}}
    canary: false
    expected: {2}s
    run: [sh, -c, "sleep {2}; echo {{shard.begin}}"]
)", name, n, seconds);
  }
  // The lines "0\n" .. "<n-1>\n": what `echo {shard.begin}` of n one-item shards merges to.
  static std::string Counted(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += std::to_string(i) + "\n";
    return s;
  }
  // Workflow `name`: n quarter-core shards, shard I printing "I:1\n" .. "I:<lines>\n" after
  // `before` (a shell command, or ""); Numbered(n, lines) is its merged output.
  static std::string NumberedShards(const std::string& name, int n, int lines,
                                    const std::string& before) {
    return fmt::format(R"(workflow: {0}
stages:
  - name: work
    resources: {{cpu: 0.25, memory: 32Mi}}
    shards: {{range: [0, {1}], count: {1}}}
    canary: false
    expected: 2s
    run: [sh, -c, "{2}seq 1 {3} | sed s/^/{{shard.index}}:/"]
)", name, n, before, lines);
  }
  // Starts three hosts with room on the peers (StartThreeWithRoomOnThePeers) and runs
  // NumberedShards(name, ...) on h1 to its end: the workflow's id, or "" with the failure
  // recorded.
  std::string RunNumberedOnThree(const std::string& name, int shards, int lines,
                                 const std::string& before) {
    StartThreeWithRoomOnThePeers();
    if (HasFatalFailure()) return "";
    const std::string id = Submit(1, name + ".yaml", NumberedShards(name, shards, lines, before));
    EXPECT_FALSE(id.empty());
    if (id.empty()) return "";
    const std::string state = WaitEnded(1, id, 120s);
    EXPECT_EQ(state, "succeeded") << Ctl(1, {"status", id, "--explain"}).out << Logs();
    return state == "succeeded" ? id : "";
  }
  static std::string Numbered(int n, int lines) {
    std::string s;
    for (int k = 0; k < n; ++k) {
      for (int i = 1; i <= lines; ++i) s += fmt::format("{}:{}\n", k, i);
    }
    return s;
  }

  static inline int counter_ = 0;
  std::error_code ec_;
  fs::path dir_;
  std::unique_ptr<NetnsBed> bed_;
  std::map<int, Subprocess*> agents_;
};

TEST_F(MeshTest, HostsJoinThroughASeedAndAKilledHostIsDeclaredDeadEverywhere) {
  MakeBed(5);
  const std::vector<int> all = {1, 2, 3, 4, 5};
  for (int k : all) Start(k);
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();

  agents_[5]->Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return AllSee({1, 2, 3, 4}, {5}, "dead"); }, 30s))
      << Views(all) << Logs();
  std::cout << "kill -9 to dead at all 4 survivors: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count()
            << " s\n";
  EXPECT_TRUE(AllSee({1, 2, 3, 4}, {1, 2, 3, 4}, "alive")) << Views(all);

  // Restarted, it comes back under a higher incarnation.
  Start(5);
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();

  // A graceful stop is a leave, not a death.
  agents_[4]->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] { return AllSee({1, 2, 3, 5}, {4}, "left"); }, 30s))
      << Views(all) << Logs();
}

TEST_F(MeshTest, APartitionIsDetectedOnBothSidesAndHeals) {
  MakeBed(4);
  const std::vector<int> all = {1, 2, 3, 4};
  for (int k : all) Start(k);
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();

  ASSERT_TRUE(bed_->Partition({1, 2}, {3, 4}));
  ASSERT_TRUE(WaitFor([&] { return AllSee({1, 2}, {3, 4}, "dead") && AllSee({3, 4}, {1, 2}, "dead"); },
                      30s))
      << Views(all) << Logs();
  EXPECT_TRUE(AllSee({1, 2}, {1, 2}, "alive") && AllSee({3, 4}, {3, 4}, "alive")) << Views(all);

  ASSERT_TRUE(bed_->Heal());
  const auto healed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 60s)) << Views(all) << Logs();
  std::cout << "heal to one cluster again: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count()
            << " s\n";
}

TEST_F(MeshTest, NoLiveHostIsDeclaredDeadUnderPacketLoss) {
  MakeBed(4);
  const std::vector<int> all = {1, 2, 3, 4};
  for (int k : all) Start(k);
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();
  for (int k : all) ASSERT_TRUE(bed_->Loss(k, 5, "in"));
  // 20 s at 5 % loss in every direction: 80 host-seconds without a false death.
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until) {
    for (int k : all) {
      for (const auto& [name, state] : View(k)) {
        ASSERT_NE(state, "dead") << Name(k) << " holds " << name << " dead\n" << Logs();
      }
    }
    std::this_thread::sleep_for(500ms);
  }
}

TEST_F(MeshTest, AHostWhoseKeyIsNotAuthorizedStaysOutUntilItIsAdded) {
  bed_ = std::make_unique<NetnsBed>(3);
  ASSERT_TRUE(bed_->ok()) << bed_->error();
  for (int k = 1; k <= 3; ++k) {
    ASSERT_EQ(testing::Run({kAugurctl, "keygen", "--out", KeyDir(k), "--name", Name(k)}).code, 0);
  }
  Authorize(1);
  Authorize(2);
  for (int k = 1; k <= 3; ++k) Start(k);
  ASSERT_TRUE(WaitFor([&] { return AllSee({1, 2}, {1, 2}, "alive"); }, 30s)) << Views({1, 2, 3});
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(View(1).count("h3"), 0u) << Views({1, 2, 3});
  EXPECT_EQ(View(3).count("h1"), 0u) << "h3 holds h1's key but h1 refuses it\n" << Views({1, 2, 3});
  // Authorized while everything runs: no restart.
  Authorize(3);
  ASSERT_TRUE(WaitFor([&] { return AllSee({1, 2, 3}, {1, 2, 3}, "alive"); }, 30s))
      << Views({1, 2, 3}) << Logs();
}

// The point of the mesh: a workflow submitted to a host that has room for one shard at a
// time runs its other shards on its peers, and the merged result is the same.
TEST_F(MeshTest, AWorkflowSubmittedToOneHostRunsShardsOnItsPeers) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  StartThreeWithRoomOnThePeers();
  if (HasFatalFailure()) return;

  const std::string id = Submit(1, "spread.yaml", EchoShards("spread", 6, 2));
  ASSERT_FALSE(id.empty());
  const std::string state = WaitEnded(1, id, 120s);
  ASSERT_EQ(state, "succeeded") << Ctl(1, {"status", id, "--explain"}).out << Logs();
  EXPECT_EQ(Ctl(1, {"result", id}).out, Counted(6));
  auto h = nlohmann::json::parse(Ctl(1, {"history", id, "--json"}).out, nullptr, false);
  ASSERT_TRUE(h.is_array()) << Ctl(1, {"history", id}).out;
  std::set<std::string> hosts;
  for (const auto& a : h) {
    if (a.value("state", "") == "succeeded") hosts.insert(a.value("host", ""));
  }
  EXPECT_GE(hosts.size(), 2u) << "every shard ran on one host: " << h.dump(2);
  std::cout << "shards ran on " << hosts.size() << " hosts\n";
}

// Replication and failover (docs/MESH.md, "Replication and failover"): a workflow submitted
// to h1, with shards on every host, outlives h1's kill -9: the next host of its order takes it
// over and finishes it with every shard's output merged once; a third host answers its status
// naming the new owner.
TEST_F(MeshTest, AWorkflowOutlivesItsOwnersKillAndAnyHostAnswersItsStatus) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  StartThreeWithRoomOnThePeers();
  if (HasFatalFailure()) return;

  const std::string id = Submit(1, "failover.yaml", EchoShards("failover", 16, 3));
  ASSERT_FALSE(id.empty());
  auto status = [&](int k) { return StatusOf(k, id); };
  const auto succeeded = testing::SucceededShards;
  EXPECT_EQ(status(1).value("owner", ""), "h1") << status(1).dump(2);
  // Mid-run: some shards done, one of them on a peer, others running (16 shards: a first
  // wave of 13 on the three hosts, then 3).
  auto ran_on_peer = [&] {
    auto h = nlohmann::json::parse(Ctl(1, {"history", id, "--json"}).out, nullptr, false);
    for (const auto& a : h.is_array() ? h : nlohmann::json::array()) {
      if (a.value("state", "") == "succeeded" && a.value("host", "") != "" &&
          a.value("host", "") != "h1") {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return succeeded(status(1)) >= 2 && ran_on_peer(); }, 120s))
      << Ctl(1, {"status", id, "--explain"}).out << Ctl(1, {"history", id}).out
      << LogLines("replication") << LogLines("mesh: member");
  const int done_before = succeeded(status(1));
  agents_[1]->Signal(SIGKILL);

  // One of the others owns it now (its own engine answers: no "source"), and finishes it.
  int owner = 0;
  ASSERT_TRUE(WaitFor([&] {
    for (int k : {2, 3}) {
      if (Owns(k, id)) owner = k;
    }
    return owner != 0;
  }, 60s)) << status(2).dump(2) << status(3).dump(2) << LogLines("replication");
  const int third = owner == 2 ? 3 : 2;
  const std::string state = WaitEnded(owner, id, 180s);
  ASSERT_EQ(state, "succeeded") << Ctl(owner, {"status", id, "--explain"}).out << LogLines("workflow");
  // Every shard's output merged once, in order.
  EXPECT_EQ(Ctl(owner, {"result", id}).out, Counted(16));

  // The third host answers, naming the owner (it asked the owner over the mesh).
  const nlohmann::json w = status(third);
  EXPECT_EQ(w.value("owner", ""), Name(owner)) << w.dump(2);
  EXPECT_EQ(w.value("state", ""), "succeeded") << w.dump(2);
  EXPECT_EQ(w.value("answered_by", ""), Name(owner)) << w.dump(2);
  // So do `augurctl result` and `history` there (asked of the owner, said on stderr).
  const testing::RunResult third_result = Ctl(third, {"result", id});
  EXPECT_EQ(third_result.out, Counted(16)) << third_result.err;
  EXPECT_NE(third_result.err.find("answered by " + Name(owner)), std::string::npos)
      << third_result.err;
  auto third_history =
      nlohmann::json::parse(Ctl(third, {"history", id, "--json"}).out, nullptr, false);
  ASSERT_TRUE(third_history.is_array() && !third_history.empty()) << third_history.dump(2);
  EXPECT_EQ(third_history[0].value("answered_by", ""), Name(owner)) << third_history.dump(2);
  // What h1 had finished was not run again (its outputs came with the log).
  auto h = nlohmann::json::parse(Ctl(owner, {"history", id, "--json"}).out, nullptr, false);
  int rerun = 0;
  for (const auto& a : h.is_array() ? h : nlohmann::json::array()) {
    rerun += a.value("state", "") == "succeeded";
  }
  EXPECT_LE(rerun, 16 - done_before) << h.dump(2);
  // /metrics (the same series, from the segment): the takeover is counted on the new owner.
  EXPECT_TRUE(WaitFor([&] {
    return Latest(owner, "augur_mesh_replication_adopted_total") >= 1 &&
           Latest(owner, "augur_mesh_replication_takeovers_total") >= 1 &&
           Latest(owner, "augur_mesh_replication_owned_workflows") >= 1;
  }, 30s)) << testing::Run({kAugurctl, "--shm", fmt::format("augur-mesh-{}-{}", getpid(), Name(owner)),
                            "series"}).out;
  std::cout << "taken over by " << Name(owner) << " with " << done_before
            << " shards done, it ran " << rerun << "; status answered on " << Name(third) << "\n";
}

// Shard outputs of several MiB come back from the hosts that ran them as chunked,
// checksummed transfers (docs/MESH.md, "Moving shard data"), and the merged output is whole.
TEST_F(MeshTest, ShardOutputsOfSeveralMiBOnPeersAreMergedWhole) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  // Each shard prints about 2.1 MiB: "I:1\n" .. "I:260000\n" for shard I.
  constexpr int kShards = 4, kLines = 260'000;
  const std::string id = RunNumberedOnThree("big", kShards, kLines, "sleep 1; ");
  if (id.empty()) return;

  const std::string want = Numbered(kShards, kLines);
  // More than `augurctl result` carries: read where the owner merged it.
  std::ifstream f(dir_ / "h1/wf/work" / id / "work.out", std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(std::hash<std::string>{}(got), std::hash<std::string>{}(want))
      << "the merged output differs from what the shards printed";

  auto h = nlohmann::json::parse(Ctl(1, {"history", id, "--json"}).out, nullptr, false);
  ASSERT_TRUE(h.is_array()) << Ctl(1, {"history", id}).out;
  int remote = 0;
  for (const auto& a : h) {
    remote += a.value("state", "") == "succeeded" && a.value("host", "") != Name(1);
  }
  EXPECT_GE(remote, 1) << "no shard's output came from a peer: " << h.dump(2);
  std::cout << remote << " of " << kShards << " outputs (" << want.size() / kShards
            << " bytes each) came from peers\n";
}

// `augurctl result` on a host that does not run the workflow, for a result larger than one
// mesh message (docs/MESH.md, "Replication and failover"): the owner's reply announces it and
// the bytes follow as a chunked, checksummed transfer on the status channel, over the hosts'
// real (CURVE) sockets; the answer is whole.
TEST_F(MeshTest, AResultLargerThanOneMeshMessageReachesAnyHostByTransfer) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  // Each shard prints 68,894 bytes ("I:1\n" .. "I:10000\n"): 275,576 merged, four times what
  // one mesh message (64 KiB) carries.
  constexpr int kShards = 4, kLines = 10'000;
  const std::string id = RunNumberedOnThree("answer", kShards, kLines, "");
  if (id.empty()) return;
  const std::string want = Numbered(kShards, kLines);
  ASSERT_EQ(Ctl(1, {"result", id}).out, want);
  for (int k : {2, 3}) {
    const testing::RunResult r = Ctl(k, {"result", id});
    EXPECT_EQ(r.out.size(), want.size()) << r.err;
    EXPECT_TRUE(r.out == want) << "the result on " << Name(k) << " differs: " << r.err;
    EXPECT_NE(r.err.find("answered by h1"), std::string::npos) << r.err;
  }
  std::cout << "a " << want.size() << "-byte result answered on h2 and h3 by h1\n";
}

// A partition that cuts the owner off and heals: the other side takes the workflow over while
// the owner keeps running it; once healed there is one owner, every host names it, and the
// workflow finishes there with every shard's output merged once.
TEST_F(MeshTest, APartitionThatCutsOffTheOwnerHealsWithOneOwnerAndNoDuplicateResult) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  MakeBed(3);
  const std::vector<int> all = {1, 2, 3};
  for (int k : all) Start(k, 1.0);
  ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();
  // 24 quarter-core shards of 6 s on three 1-core hosts run in two waves: the cut falls in the
  // second, with shards running on both sides.
  constexpr int kShards = 24;
  const std::string id = Submit(1, "partition.yaml", EchoShards("partition", kShards, 6));
  ASSERT_FALSE(id.empty());
  auto status = [&](int k) { return StatusOf(k, id); };
  auto owns = [&](int k) { return Owns(k, id); };
  ASSERT_TRUE(WaitFor([&] { return testing::SucceededShards(status(1)) >= 1; }, 60s))
      << Ctl(1, {"status", id}).out << LogLines("workflow");
  EXPECT_LT(testing::SucceededShards(status(1)), kShards) << "the workflow ended before the cut";

  ASSERT_TRUE(bed_->Partition({1}, {2, 3}));
  // The other side takes it over; h1, cut off, still owns it as far as it knows.
  ASSERT_TRUE(WaitFor([&] { return owns(2) || owns(3); }, 60s))
      << status(2).dump(2) << status(3).dump(2) << LogLines("replication");
  EXPECT_TRUE(owns(1)) << status(1).dump(2);
  ASSERT_TRUE(bed_->Heal());

  // Once healed the owners meet: the cut-off one steps down to the newer epoch and, if it ranks
  // first for the workflow, takes it back at a higher one (docs/MESH.md, "Partitions"), so
  // ownership may move twice. Wait for the end: one host owns it and has finished it, every
  // other host names that owner (a replica's copy follows the owner's log), and so it stays.
  auto agreed = [&]() -> int {
    std::vector<int> owners;
    for (int k : all) {
      if (owns(k)) owners.push_back(k);
    }
    if (owners.size() != 1 || status(owners[0]).value("state", "") != "succeeded") return 0;
    for (int k : all) {
      if (status(k).value("owner", "") != Name(owners[0])) return 0;
    }
    return owners[0];
  };
  int owner = 0;
  ASSERT_TRUE(WaitFor([&] {
    if ((owner = agreed()) == 0) return false;
    std::this_thread::sleep_for(1s);
    return agreed() == owner;
  }, 180s)) << status(1).dump(2) << status(2).dump(2) << status(3).dump(2)
            << LogLines("replication");
  EXPECT_EQ(Ctl(owner, {"result", id}).out, Counted(kShards));
  std::cout << "after the heal " << Name(owner) << " owns the workflow ("
            << LogLines("owns it now") << ")\n";
}

}  // namespace
}  // namespace augur

namespace augur {
namespace {

using namespace std::chrono_literals;
using testing::WaitFor;

// augurd restarted on a peer while it runs shards of another host's workflow (an upgrade,
// docs/MESH.md "Running shards on other hosts", Restarts): the peer keeps its leases and
// re-attaches their tasks, sends their results, and nothing runs twice.
TEST_F(MeshTest, APeerRestartedMidRunReattachesItsLeasedShards) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  StartThreeWithRoomOnThePeers();
  if (HasFatalFailure()) return;
  const std::string id = Submit(1, "restart.yaml", R"(workflow: restart
stages:
  - name: work
    resources: {cpu: 0.25, memory: 32Mi}
    shards: {range: [0, 6], count: 6}
    canary: false
    expected: 6s
    run: [sh, -c, "sleep 6; echo {shard.begin}"]
)");
  ASSERT_FALSE(id.empty());
  // The peer that runs the most of its shards (the hosts named by the owner's placed
  // attempts; which peer takes them is the negotiation's choice: the quicker to answer).
  auto busiest = [&] {
    auto j = nlohmann::json::parse(Ctl(1, {"status", id, "--explain", "--json"}).out, nullptr,
                                   false);
    std::map<int, int> on;
    if (j.is_array() && !j.empty()) {
      for (const auto& r : j[0].value("remote", nlohmann::json::array())) {
        const std::string host = r.value("host", "");
        if (host == "h2" || host == "h3") ++on[host[1] - '0'];
      }
    }
    int peer = 0;
    for (const auto& [k, n] : on) {
      if (peer == 0 || n > on[peer]) peer = k;
    }
    return peer;
  };
  int peer = 0;
  ASSERT_TRUE(WaitFor([&] { return (peer = busiest()) != 0; }, 60s))
      << Ctl(1, {"status", id, "--explain"}).out << Logs();
  agents_[peer]->Signal(SIGTERM);
  agents_[peer]->Wait(30s);
  Start(peer, 1.5);
  ASSERT_EQ(WaitEnded(1, id, 120s), "succeeded") << Ctl(1, {"status", id, "--explain"}).out
                                                 << LogLines("mesh");
  EXPECT_EQ(Ctl(1, {"result", id}).out, "0\n1\n2\n3\n4\n5\n");
  // Each shard ran once: six successes, nothing lost, and the peer said it took its leases up
  // again.
  auto h = nlohmann::json::parse(Ctl(1, {"history", id, "--json"}).out, nullptr, false);
  ASSERT_TRUE(h.is_array()) << Ctl(1, {"history", id}).out;
  int succeeded = 0, other = 0;
  for (const auto& a : h) (a.value("state", "") == "succeeded" ? succeeded : other)++;
  EXPECT_EQ(succeeded, 6) << h.dump(2);
  EXPECT_EQ(other, 0) << h.dump(2);
  EXPECT_NE(LogLines("held again after the restart (its task re-attached)").find("mesh: lease"),
            std::string::npos)
      << LogLines("mesh");
}

}  // namespace
}  // namespace augur
