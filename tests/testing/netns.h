// NetnsBed: N hosts in network namespaces on one bridge, for multi-host integration tests. It
// drives bench/mesh/netns.sh (one implementation of the bed for tests and benchmarks; the
// script's header states the safety rules: addresses 198.18.0.K/16 only inside the bed, the
// bridge in a switch namespace of its own, leftovers of crashed runs removed). The bed is torn
// down, and every process started in it killed, in the destructor.
//
//   if (auto why = NetnsBed::Unavailable(); !why.empty()) GTEST_SKIP() << why;
//   NetnsBed bed(3);
//   ASSERT_TRUE(bed.ok()) << bed.error();
//   Subprocess& agent = bed.Spawn(1, {"augurd", "--config", path});
//   bed.Loss(2, 100); bed.Partition({1}, {2, 3}); bed.Heal();
//
// Thread-safety: none; use a bed from one thread. Socket() starts and joins a short-lived
// thread of its own.
#ifndef AUGUR_TESTS_TESTING_NETNS_H_
#define AUGUR_TESTS_TESTING_NETNS_H_

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/subprocess.h"

namespace augur::testing {

class NetnsBed {
 public:
  // Ethernet-frame counters of a host's eth0 (what netns.sh `counters` prints).
  struct Counters {
    uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0;
  };

  // Why a bed cannot be made here ("" when it can): not root, no ip or nft, namespaces, veth,
  // bridge or nftables refused. Probed once per process.
  static const std::string& Unavailable() {
    static const std::string why = [] {
      if (geteuid() != 0) return std::string("needs root (network namespaces, veth, nftables)");
      if (access(ScriptPath().c_str(), R_OK) != 0) return "missing " + ScriptPath();
      RunResult r = Run({"/bin/bash", ScriptPath(), "check"});
      if (r.code == 0) return std::string();
      std::string reason = r.out.empty() ? r.err : r.out;
      while (!reason.empty() && reason.back() == '\n') reason.pop_back();
      return "netns test bed unavailable: " + reason;
    }();
    return why;
  }

  // Makes hosts 1..`hosts` (198.18.0.1 ..). Check ok() before using the bed.
  explicit NetnsBed(int hosts) : hosts_(hosts) {
    static int beds = 0;
    id_ = std::to_string(getpid()) + "." + std::to_string(beds++);
    RunResult r = Script({"up", std::to_string(hosts)});
    if (r.code != 0) error_ = "netns.sh up " + std::to_string(hosts) + " failed: " + r.err;
  }
  ~NetnsBed() {
    processes_.clear();  // SIGKILLs and reaps what Spawn started.
    Script({"down"});
  }
  NetnsBed(const NetnsBed&) = delete;
  NetnsBed& operator=(const NetnsBed&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  int hosts() const { return hosts_; }
  // The owner part of the namespace names: augur-<id>-h<K>.
  const std::string& id() const { return id_; }
  std::string Name(int k) const { return "augur-" + id_ + "-h" + std::to_string(k); }
  std::string SwitchName() const { return "augur-" + id_ + "-sw"; }
  static std::string Addr(int k) { return "198.18.0." + std::to_string(k); }

  // Starts argv inside host k (`ip netns exec`, which execs: the pid is the command's). argv[0]
  // is looked up in PATH. The bed owns the process; stdout and stderr are captured.
  // `ip netns exec` also gives the process a mount namespace with /sys remounted for the
  // network namespace, which hides /sys/fs/cgroup: SpawnKeepingMounts enters only the
  // network namespace (nsenter --net), for agents that make cgroups.
  Subprocess& SpawnKeepingMounts(int k, const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"/usr/bin/env", "nsenter", "--net=/run/netns/" + Name(k),
                                      "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    processes_.push_back(std::make_unique<Subprocess>(std::move(full)));
    return *processes_.back();
  }
  Subprocess& Spawn(int k, const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"/usr/bin/env", "ip", "netns", "exec", Name(k)};
    full.insert(full.end(), argv.begin(), argv.end());
    processes_.push_back(std::make_unique<Subprocess>(std::move(full)));
    return *processes_.back();
  }
  // Runs argv inside host k to completion.
  RunResult RunIn(int k, const std::vector<std::string>& argv) {
    std::vector<std::string> full = {"/usr/bin/env", "ip", "netns", "exec", Name(k)};
    full.insert(full.end(), argv.begin(), argv.end());
    return Run(std::move(full));
  }

  // A socket (AF_INET, `type`) of host k's network stack, or -1. A thread enters the namespace
  // just to create it; the socket stays in that namespace, usable from any thread.
  int Socket(int k, int type) const {
    int fd = -1;
    std::thread([&] {
      int ns = open(("/run/netns/" + Name(k)).c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0) return;
      if (setns(ns, CLONE_NEWNET) == 0) fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
      close(ns);
    }).join();
    return fd;
  }

  // Drops pct % of host k's IP packets on eth0; `direction` "in", "out" or "both". 0 removes.
  bool Loss(int k, int pct, const std::string& direction = "both") {
    return Script({"loss", std::to_string(k), std::to_string(pct), direction}).code == 0;
  }
  // Drops all traffic between group a and group b; Heal() removes every partition.
  bool Partition(const std::vector<int>& a, const std::vector<int>& b) {
    return Script({"partition", Join(a), Join(b)}).code == 0;
  }
  bool Heal() { return Script({"heal"}).code == 0; }

  std::optional<Counters> CountersOf(int k) {
    RunResult r = Script({"counters", std::to_string(k)});
    Counters c;
    std::istringstream in(r.out);
    if (r.code != 0 || !(in >> c.tx_packets >> c.tx_bytes >> c.rx_packets >> c.rx_bytes)) {
      return std::nullopt;
    }
    return c;
  }

 private:
  static std::string ScriptPath() { return std::string(AUGUR_SOURCE_DIR) + "/bench/mesh/netns.sh"; }
  RunResult Script(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"/usr/bin/env", "MESH_ID=" + id_, "/bin/bash", ScriptPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(std::move(argv));
  }
  static std::string Join(const std::vector<int>& ks) {
    std::string s;
    for (int k : ks) s += (s.empty() ? "" : " ") + std::to_string(k);
    return s;
  }

  int hosts_;
  std::string id_;
  std::string error_;
  std::vector<std::unique_ptr<Subprocess>> processes_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_NETNS_H_
