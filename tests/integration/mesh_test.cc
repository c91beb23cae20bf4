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
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "testing/netns.h"

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
    std::ofstream(config) << fmt::format(R"(telemetry: {{interval: 5s, ebpf: "off", shm_name: {shm}, capacity: 16, max_series: 64}}
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

  // Hosts 1 to 3 with the workflow engine (host 1 with room for one quarter-core shard at a
  // time, 2 and 3 for six), once they see each other and host 1 has every host's headroom
  // with its process backend.
  void StartEngines() {
    MakeBed(3);
    const std::vector<int> all = {1, 2, 3};
    Start(1, 0.3);
    Start(2, 1.5);
    Start(3, 1.5);
    ASSERT_TRUE(WaitFor([&] { return AllSee(all, all, "alive"); }, 30s)) << Views(all) << Logs();
    ASSERT_TRUE(WaitFor([&] {
      auto j = nlohmann::json::parse(Ctl(1, {"peers", "--json"}).out, nullptr, false);
      if (!j.is_array()) return false;
      int with_backend = 0;
      for (const auto& m : j) {
        with_backend += m.contains("headroom") && !m["headroom"]["backends"].empty();
      }
      return with_backend == 3;
    }, 30s)) << Ctl(1, {"peers", "--json"}).out << Logs();
  }
  // Submits the workflow in `file` to host 1 and waits (up to 120 s) until it ends: its id.
  std::string SubmitAndWait(const std::string& file, std::string* state) {
    auto sub = Ctl(1, {"submit", file});
    EXPECT_EQ(sub.code, 0) << sub.err;
    std::string id = sub.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    EXPECT_TRUE(WaitFor([&] {
      auto j = nlohmann::json::parse(Ctl(1, {"status", id, "--json"}).out, nullptr, false);
      *state = j.is_array() && !j.empty() ? j[0].value("state", "") : "";
      return *state != "" && *state != "running";
    }, 120s)) << Ctl(1, {"status", id, "--explain"}).out << Logs();
    return id;
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
  ASSERT_NO_FATAL_FAILURE(StartEngines());
  const std::string wf = (dir_ / "spread.yaml").string();
  std::ofstream(wf) << R"(workflow: spread
stages:
  - name: work
    resources: {cpu: 0.25, memory: 32Mi}
    shards: {range: [0, 6], count: 6}
    canary: false
    expected: 2s
    run: [sh, -c, "sleep 2; echo {shard.begin}"]
)";
  std::string state;
  const std::string id = SubmitAndWait(wf, &state);
  ASSERT_EQ(state, "succeeded") << Ctl(1, {"status", id, "--explain"}).out << Logs();
  EXPECT_EQ(Ctl(1, {"result", id}).out, "0\n1\n2\n3\n4\n5\n");
  auto h = nlohmann::json::parse(Ctl(1, {"history", id, "--json"}).out, nullptr, false);
  ASSERT_TRUE(h.is_array()) << Ctl(1, {"history", id}).out;
  std::set<std::string> hosts;
  for (const auto& a : h) {
    if (a.value("state", "") == "succeeded") hosts.insert(a.value("host", ""));
  }
  EXPECT_GE(hosts.size(), 2u) << "every shard ran on one host: " << h.dump(2);
  std::cout << "shards ran on " << hosts.size() << " hosts\n";
}

// Shard outputs of several MiB come back from the hosts that ran them as chunked,
// checksummed transfers (docs/MESH.md, "Moving shard data"), and the merged output is whole.
TEST_F(MeshTest, ShardOutputsOfSeveralMiBOnPeersAreMergedWhole) {
  if (access("/sys/fs/cgroup", W_OK) != 0) GTEST_SKIP() << "cgroups are not writable here";
  ASSERT_NO_FATAL_FAILURE(StartEngines());

  // Each shard prints about 2.1 MiB: "I:1\n" .. "I:260000\n" for shard I.
  constexpr int kShards = 4, kLines = 260'000;
  const std::string wf = (dir_ / "big.yaml").string();
  std::ofstream(wf) << fmt::format(R"(workflow: big
stages:
  - name: work
    resources: {{cpu: 0.25, memory: 32Mi}}
    shards: {{range: [0, {}], count: {}}}
    canary: false
    expected: 2s
    run: [sh, -c, "sleep 1; seq 1 {} | sed s/^/{{shard.index}}:/"]
)", kShards, kShards, kLines);
  std::string state;
  const std::string id = SubmitAndWait(wf, &state);
  ASSERT_EQ(state, "succeeded") << Ctl(1, {"status", id, "--explain"}).out << Logs();

  std::string want;
  for (int k = 0; k < kShards; ++k) {
    for (int i = 1; i <= kLines; ++i) want += fmt::format("{}:{}\n", k, i);
  }
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

}  // namespace
}  // namespace augur
